/**
 * The one DNS resolver every check uses, over `Deno.resolveDns` with a
 * configurable server (`dns_server`) and timeout (`dns_timeout`). Answers
 * have three outcomes: records, no such name/record, temporary failure. A
 * timeout or SERVFAIL is a temporary failure, never a "not found" (Deno
 * reports SERVFAIL as not found: {@linkcode denoResolver} checks).
 *
 * @module
 */

import { isValidHostname } from "../protocol/hostname.ts";
import { parseIpAddress } from "../protocol/ip.ts";
import { asciiDomain } from "./hostname.ts";

/** Record types the checks query. */
export type DnsType = "A" | "AAAA" | "MX" | "NS" | "PTR" | "TXT";

/** The outcome of one query. */
export type DnsAnswer =
  | { kind: "ok"; records: string[] }
  | { kind: "notFound" }
  | { kind: "tempfail"; reason: string }
  /** smtpd_dns_reply_filter dropped every record of an answer (Postfix's DNS_POLICY). */
  | { kind: "filtered" };

/** Looks names up. */
export interface DnsResolver {
  /**
   * Queries one name and type.
   * @param name the query name
   * @param type the record type
   * @param confirm a "not found" refuses mail here (the reject_unknown_*
   *   checks and the client's name): tell a broken zone (SERVFAIL, a
   *   temporary failure) apart from a name that does not exist, at the cost
   *   of a second query for a negative answer ({@linkcode denoResolver})
   * @param all every record of the answer, as getaddrinfo() gives them
   *   (the client name's forward confirmation in Postfix's smtpd), not
   *   only the first {@linkcode DNS_RR_LIST_LIMIT} of its dns_lookup()
   * @param gone aborted when whoever asked is gone: a temporary failure then
   * @returns the answer (MX records as "preference host")
   */
  query(
    name: string,
    type: DnsType,
    confirm?: boolean,
    all?: boolean,
    gone?: AbortSignal,
  ): Promise<DnsAnswer>;
}

/**
 * Parses "host:port" for the name server.
 * @param server e.g. "127.0.0.1:5353" or "[::1]:53"
 * @returns the address, or undefined
 */
export function parseDnsServer(server: string): { ipAddr: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d{1,5}))?$/.exec(server.trim());
  if (!m) return undefined;
  const port = m[3] ? Number(m[3]) : 53;
  if (port < 1 || port > 65535) return undefined;
  return { ipAddr: (m[1] ?? m[2]) as string, port };
}

/**
 * A query name as an absolute name (a trailing dot), so the resolver never
 * appends the search domains of resolv.conf: Postfix's dns_lookup turns
 * RES_DEFNAMES and RES_DNSRCH off, and a name that does not exist must not
 * be found as `name.<search domain>` (where a wildcard would answer for
 * any sender domain, HELO name or DNS list query).
 * @param name the query name
 * @returns the name with one trailing dot
 */
export function absoluteName(name: string): string {
  return name.endsWith(".") ? name : `${name}.`;
}

const TYPE_CODES: Record<DnsType, number> = { A: 1, NS: 2, PTR: 12, MX: 15, TXT: 16, AAAA: 28 };

/**
 * Asks a name server over TCP for one name and type and returns only the
 * RCODE of its answer (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ...). TCP needs
 * no local port of our own (no --allow-net beyond the server's).
 * @param server the name server
 * @param name the query name (ASCII)
 * @param type the record type
 * @param ms how long to wait
 * @returns the RCODE, or undefined when there is no usable answer in time
 */
export async function rcodeOverTcp(
  server: { ipAddr: string; port: number },
  name: string,
  type: DnsType,
  ms: number,
): Promise<number | undefined> {
  const qname: number[] = [];
  for (const label of name.replace(/\.$/, "").split(".")) {
    const b = new TextEncoder().encode(label);
    if (b.length === 0 || b.length > 63) return undefined;
    qname.push(b.length, ...b);
  }
  qname.push(0);
  if (qname.length > 255 || ms <= 0) return undefined;
  const id = Math.floor(Math.random() * 0x10000);
  const code = TYPE_CODES[type];
  // Header: ID, RD, one question; then QNAME, QTYPE, QCLASS IN.
  const msg = [id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...qname, 0, code, 0, 1];
  const packet = new Uint8Array([msg.length >> 8, msg.length & 255, ...msg]);
  let conn: Deno.TcpConn | undefined;
  let late = false;
  // The connect is aborted too: a server whose TCP port drops SYNs would
  // otherwise hold it for the kernel's connect timeout (two minutes).
  const abort = new AbortController();
  const timer = setTimeout(() => {
    late = true;
    abort.abort();
    try {
      conn?.close();
    } catch { /* closed */ }
  }, ms);
  try {
    conn = await Deno.connect({
      hostname: server.ipAddr,
      port: server.port,
      signal: abort.signal,
    });
    if (late) {
      conn.close();
      return undefined;
    }
    await conn.write(packet);
    // The length prefix, the ID and the flags.
    const head = new Uint8Array(6);
    for (let got = 0; got < head.length;) {
      const n = await conn.read(head.subarray(got));
      if (n === null) return undefined;
      got += n;
    }
    if ((((head[2] as number) << 8) | (head[3] as number)) !== id) return undefined;
    return (head[5] as number) & 0x0f;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    if (!late) {
      try {
        conn?.close();
      } catch { /* closed */ }
    }
  }
}

/**
 * Records kept from one answer, as Postfix's dns_rr_list_limit: a domain
 * with thousands of MX or NS hosts must not cost a lookup of each.
 */
export const DNS_RR_LIST_LIMIT = 100;

/**
 * Lookups asked without Deno's signal that Deno has not ended yet, in this
 * thread: each holds a socket for up to 15 s, whatever dns_timeout says and
 * whether or not its session is still there; see {@linkcode denoResolver}.
 */
const MOST_UNSIGNALLED = 100;
let unsignalled = 0;
const unsignalledDone = () => void unsignalled--;

/** The time of one query ran out. */
class DnsTimeout extends Error {}

/**
 * The real resolver. Deno.resolveDns reports a SERVFAIL answer as "not
 * found", as it does NXDOMAIN and "no such record"; so a "not found" is
 * asked again over TCP ({@linkcode rcodeOverTcp}) of the name server
 * (dns_server, else `systemServer`, the first of resolv.conf) within what
 * is left of the timeout, and SERVFAIL there is a temporary failure, as in
 * Postfix (TRY_AGAIN: 450, never 5xx). When that server cannot be asked,
 * "not found" stands.
 * Past {@linkcode DNS_RR_LIST_LIMIT} records the rest of an answer is
 * dropped, with Postfix's warning.
 * The wait is ours, not Deno's: given an AbortSignal, Deno.resolveDns
 * gives each query 1 s (one try and one resend) whatever the signal's own
 * time, so an answer that took longer than that was lost and a slow but
 * working name server looked down, whatever dns_timeout said. Without a
 * signal Deno waits up to 5 s a try (three tries), and such a lookup
 * cannot be stopped: one whose dns_timeout has passed, or whose client has
 * hung up, is left to end by itself. So at most
 * {@linkcode MOST_UNSIGNALLED} of them run at once; past that, lookups are
 * given the signal again (cut at dns_timeout, at most 1 s a try). Counting
 * only those past their dns_timeout let clients that connect and hang up
 * at once (their PTR lookups still running) start thousands within one
 * dns_timeout, a socket and some 50 KB each.
 * @param options name server (host:port; empty for the system's), timeout in
 * ms, the system's first name server (host:port), where warnings go, and
 * (for tests) the function that asks, Deno.resolveDns by default
 * @returns a resolver
 */
export function denoResolver(
  options: {
    server: string;
    timeoutMs: number;
    systemServer?: string;
    warn?: (text: string) => void;
    resolveDns?: typeof Deno.resolveDns;
  },
): DnsResolver {
  const nameServer = options.server ? parseDnsServer(options.server) : undefined;
  const confirmWith = nameServer ??
    (options.systemServer ? parseDnsServer(options.systemServer) : undefined);
  const resolveDns = options.resolveDns ?? Deno.resolveDns;
  // A query the permissions refuse is a configuration fault, not an outage:
  // said once (it would otherwise pass for a silent temporary failure).
  let refusedSaid = false;
  return {
    async query(
      name: string,
      type: DnsType,
      confirm?: boolean,
      all?: boolean,
      gone?: AbortSignal,
    ): Promise<DnsAnswer> {
      // As Postfix's dns_lookup(): a name that is no valid host name (a
      // label over 63 characters, a name over 255, a character outside
      // letters, digits, "-" and "_", all-numeric) does not exist, and is
      // not asked (a long HELO name under a DNS list zone was a lookup
      // error, logged for each command).
      const ascii = asciiDomain(name.replace(/\.$/, ""));
      if (ascii === "" || !isValidHostname(ascii)) return { kind: "notFound" };
      const controller = new AbortController();
      const started = Date.now();
      let end: () => void = () => {};
      const expired = new Promise<never>((_, reject) => {
        end = () => {
          controller.abort();
          reject(new DnsTimeout());
        };
      });
      expired.catch(() => {}); // awaited only while a lookup runs
      const timer = setTimeout(end, options.timeoutMs);
      // Whoever asked is gone (a client that hung up): a lookup with Deno's
      // signal ends at once, its socket with it.
      if (gone?.aborted) end();
      gone?.addEventListener("abort", end);
      const q = absoluteName(name);
      // Deno's signal only when too many lookups without it run already.
      const signalled = unsignalled >= MOST_UNSIGNALLED;
      const opts = {
        ...(signalled ? { signal: controller.signal } : {}),
        ...(nameServer ? { nameServer } : {}),
      };
      const ask = <T>(lookup: Promise<T>): Promise<T> => {
        if (!signalled) {
          unsignalled++;
          lookup.then(unsignalledDone, unsignalledDone);
        }
        return Promise.race([lookup, expired]);
      };
      try {
        let records: string[];
        switch (type) {
          case "A":
          case "AAAA":
          case "NS":
          case "PTR":
            records = await ask(resolveDns(q, type, opts));
            break;
          case "MX":
            records = (await ask(resolveDns(q, "MX", opts)))
              .map((r) => `${r.preference} ${r.exchange}`);
            break;
          case "TXT":
            records = (await ask(resolveDns(q, "TXT", opts))).map((r) => r.join(""));
            break;
        }
        if (!all && records.length > DNS_RR_LIST_LIMIT) {
          options.warn?.(
            `DNS record count limit (${DNS_RR_LIST_LIMIT}) exceeded -- dropping excess` +
              ` record(s) after qname=${name} qtype=${type}`,
          );
          records = records.slice(0, DNS_RR_LIST_LIMIT);
        }
        return records.length ? { kind: "ok", records } : { kind: "notFound" };
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) {
          if (!confirm || !confirmWith) return { kind: "notFound" };
          const left = options.timeoutMs - (Date.now() - started);
          const rcode = await rcodeOverTcp(confirmWith, q, type, left);
          return rcode === 2 ? { kind: "tempfail", reason: "SERVFAIL" } : { kind: "notFound" };
        }
        if (controller.signal.aborted) return { kind: "tempfail", reason: "timeout" };
        if (err instanceof Deno.errors.NotCapable && !refusedSaid) {
          refusedSaid = true;
          options.warn?.(
            `DNS lookup of ${name} (${type}) refused: ${(err as Error).message}; ` +
              "smtpd permissions -c FILE prints the flags this configuration needs",
          );
        }
        return { kind: "tempfail", reason: (err as Error).message };
      } finally {
        clearTimeout(timer);
        gone?.removeEventListener("abort", end);
      }
    },
  };
}

/** Bounds of a per-session DNS cache. */
export interface DnsCacheLimits {
  /** Most answers kept. @default {100} */
  maxEntries?: number;
  /** Most bytes of names and records kept (answers are counted once they arrive). @default {65536} */
  maxBytes?: number;
}

/**
 * A per-session cache in front of a resolver (one answer per name and
 * type), bounded: past `maxEntries` answers or `maxBytes` of names and
 * records, the least recently used answers are dropped, so a client that
 * makes the checks look up many distinct names (RCPT domains, HELO names)
 * costs a bounded amount of memory; a dropped answer is asked again.
 * @param inner the resolver
 * @param limits the bounds
 * @param gone aborted when the session's client is gone: its lookups end
 *   (those with Deno's signal at once, see {@linkcode denoResolver})
 * @param waiting told true when a lookup starts with none under way, and
 *   false when the last one under way ends: how long the session waits on
 *   DNS (a client's sender domain whose hundred MX hosts never answer held
 *   its session for minutes), for the listener to close it to make room
 * @returns the caching resolver
 */
export function cachingResolver(
  inner: DnsResolver,
  limits: DnsCacheLimits = {},
  gone?: AbortSignal,
  waiting?: (on: boolean) => void,
): DnsResolver {
  const maxEntries = limits.maxEntries ?? 100;
  const maxBytes = limits.maxBytes ?? 65536;
  // Map order is use order: a hit moves its answer to the end.
  const cache = new Map<string, { answer: Promise<DnsAnswer>; bytes: number }>();
  let bytes = 0;
  // Lookups under way (asked of `inner`, not yet answered).
  let pending = 0;
  const settled = () => {
    if (--pending === 0) waiting?.(false);
  };
  const trim = () => {
    for (const [key, entry] of cache) {
      if (cache.size <= maxEntries && bytes <= maxBytes) break;
      cache.delete(key);
      bytes -= entry.bytes;
    }
  };
  return {
    query(name, type, confirm, all) {
      // A confirmed "not found" is not an unconfirmed one, nor a whole
      // answer a capped one: cached apart.
      const key = `${type}${confirm ? "!" : ""}${all ? "*" : ""} ${name.toLowerCase()}`;
      const hit = cache.get(key);
      if (hit) {
        cache.delete(key);
        cache.set(key, hit);
        return hit.answer;
      }
      const entry = { answer: inner.query(name, type, confirm, all, gone), bytes: 0 };
      if (pending++ === 0) waiting?.(true);
      cache.set(key, entry);
      trim();
      void entry.answer.then((a) => {
        settled();
        if (cache.get(key) !== entry) return; // dropped meanwhile
        let size = key.length;
        if (a.kind === "ok") { for (const r of a.records) size += r.length; }
        entry.bytes = size;
        bytes += size;
        trim();
      }, settled);
      return entry.answer;
    },
  };
}

/**
 * The PTR query name of an address: reversed octets under in-addr.arpa, or nibbles under ip6.arpa.
 * @param address IPv4 or IPv6 text
 * @param zone the suffix ("in-addr.arpa"/"ip6.arpa" by default, or a DNSBL zone)
 * @returns the query name, or undefined for a malformed address
 */
export function reverseName(address: string, zone?: string): string | undefined {
  const ip = parseIpAddress(address);
  if (ip === undefined) return undefined;
  if (ip.family === 4) {
    const octets = [0n, 8n, 16n, 24n].map((s) => String((ip.value >> s) & 0xffn));
    return `${octets.join(".")}.${zone ?? "in-addr.arpa"}`;
  }
  const nibbles: string[] = [];
  for (let i = 0n; i < 128n; i += 4n) nibbles.push(((ip.value >> i) & 0xfn).toString(16));
  return `${nibbles.join(".")}.${zone ?? "ip6.arpa"}`;
}
