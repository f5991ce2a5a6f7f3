/**
 * What a configuration needs from Deno's permissions, derived from the
 * configuration itself: read the configuration file and every file it names
 * (tables, also tables named inside tables; the STARTTLS certificate and
 * key), read and write the queue directory, reach its Postfix trigger
 * sockets, listen on each `smtpd_listen` address, reach the DNS servers
 * actually used (`dns_server`, else the `nameserver` lines of
 * /etc/resolv.conf) and the syslog server. Every path is absolute.
 *
 * @module
 */

import { parseEndpoint } from "../policy/service/endpoint.ts";
import {
  eachLine,
  LINES_PER_STEP,
  preparedResult,
  preparedText,
  runSteps,
  type Steps,
} from "../policy/tables/prepared.ts";
import { parseSaslPath } from "../sasl/sasl_path.ts";
import { dirname, isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { LoadedConfig } from "../config/mod.ts";
import { ConfigError, PARAMS } from "../config/mod.ts";
import { parseIpAddress } from "../protocol/ip.ts";
import { parseSyslogServer, udpBindAddress } from "../log/syslog_sink.ts";
import { parseDnsServer } from "../policy/resolver.ts";
import { parseListenAddress } from "../transport/tcp_listener.ts";
import { enginePorts, tlsNeededBy } from "../tls_context.ts";
import { chainFiles, readSniTable } from "../tls_sni.ts";

/** The kinds of Deno permission the program uses. */
export type NeedKind = "read" | "write" | "net" | "env" | "sys";

/** One permission the configuration needs, and why. */
export interface Need {
  readonly kind: NeedKind;
  /** An absolute path, `host:port`, `unix:/path`, a variable or a system call. */
  readonly value: string;
  /** The parameter or purpose that needs it. */
  readonly why: string;
}

/** Environment variables the program reads (stand-alone peer identity; src/transport/stdio.ts). */
export const ENV_VARS = [
  "REMOTE_ADDR",
  "REMOTE_PORT",
  "TCPREMOTEIP",
  "TCPREMOTEPORT",
  "REMOTE_HOST",
] as const;

/** The file Deno's resolver reads its name servers from when no dns_server is set. */
export const RESOLV_CONF = "/etc/resolv.conf";

/**
 * The DNS list restrictions: a list that cannot be asked lists nothing (a
 * warning, never a 4xx), as in Postfix.
 */
export const DNS_LIST_RESTRICTIONS: ReadonlySet<string> = new Set([
  "reject_rbl_client",
  "reject_maps_rbl",
  "reject_rhsbl_client",
  "reject_rhsbl_reverse_client",
  "reject_rhsbl_helo",
  "reject_rhsbl_sender",
  "reject_rhsbl_recipient",
  "permit_dnswl_client",
  "permit_rhswl_client",
  "reject_dnsbl_score",
]);

/**
 * Restrictions that ask the DNS (their old names included). A unit test
 * checks that each is a known restriction name.
 */
export const DNS_RESTRICTIONS: ReadonlySet<string> = new Set([
  "reject_unknown_client_hostname",
  "reject_unknown_client",
  "reject_unknown_reverse_client_hostname",
  "reject_unknown_helo_hostname",
  "reject_unknown_hostname",
  "reject_unknown_sender_domain",
  "reject_unknown_recipient_domain",
  "permit_mx_backup",
  ...DNS_LIST_RESTRICTIONS,
  ...["client", "reverse_client", "helo", "sender", "recipient"].flatMap((s) =>
    ["mx", "ns", "a"].map((t) => `check_${s}_${t}_access`)
  ),
]);

/** File-backed table types (the others are written inline). */
const FILE_TABLES = /^(texthash|cidr|regexp|pcre):([^{].*)$/;

/** Where facts outside the configuration come from (replaceable in tests). */
export interface NeedsOptions {
  /** Relative paths in the configuration are taken from here. */
  readonly cwd: string;
  /** The program's own code directory (listener threads load it at run time), if any. */
  readonly codeDir?: string;
  /** Reads a text file (tables, resolv.conf); undefined when it cannot be read. */
  readonly readText: (path: string) => string | undefined;
}

/**
 * The program's code directory (src/), which listener threads load at run
 * time, or undefined in a compiled binary (its code is inside it).
 * @returns the absolute path
 */
export function programCodeDir(): string | undefined {
  const here = new URL(import.meta.url);
  if (Deno.build.standalone || here.protocol !== "file:") return undefined;
  return dirname(dirname(fileURLToPath(here)));
}

/** `host:port` as Deno's --allow-net writes it (IPv6 in brackets). */
export function netTarget(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * Refuses a network target whose host is neither an IP address nor a host
 * name (`*:25`, as master.cf might suggest): Deno refuses such an
 * `--allow-net` flag with a stack trace before the program runs, so every
 * command (`permissions`, `config --check`) would end that way.
 * @param loaded the configuration, for file and line
 * @param value the target (`host:port`, `[v6]:port`, `host`, `unix:path`)
 * @param why what needs it; its first word is the parameter
 * @throws {ConfigError} at the parameter's line
 */
function checkNetHost(loaded: LoadedConfig, value: string, why: string): void {
  if (value.startsWith("unix:")) return;
  const v6 = /^\[([^\]]*)\](?::\d+)?$/.exec(value);
  const host = v6 ? v6[1] as string : value.replace(/:\d+$/, "");
  if (v6 ? parseIpAddress(host) !== undefined : /^[A-Za-z0-9._-]+$/.test(host)) return;
  const key = why.split(" ")[0] as string;
  throw new ConfigError(
    `${key}: "${host}" is neither an IP address nor a host name ` +
      "(for every address of the host, write 0.0.0.0 or [::])",
    { file: loaded.file, line: loaded.lineOf(key), key },
  );
}

/**
 * The name servers of a resolv.conf text.
 * @param text the file's text
 * @returns the addresses of its nameserver lines, in order
 */
export function resolvConfNameServers(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    // A link-local IPv6 server carries its interface: fe80::1%eth0.
    if (m) out.push((m[1] as string).replace(/%.*$/, ""));
  }
  return out;
}

/**
 * List parameters whose `/file` entries are read at start: the domain lists
 * (src/policy/domain_list.ts) and every network list compileNetworks() reads
 * (src/policy/relay.ts).
 */
const LIST_FILE_PARAMS = [
  "mynetworks",
  "mydestination",
  "relay_domains",
  "virtual_alias_domains",
  "virtual_mailbox_domains",
  "permit_mx_backup_networks",
  "smtpd_upstream_proxy_networks",
  "smtpd_client_event_limit_exceptions",
  "smtpd_forbid_bare_newline_exclusions",
] as const;

/**
 * Every word of every list parameter and restriction class (tables and
 * names hide there), the words of the `/file` entries of domain and
 * network lists included; restriction names in lower case, as compiled.
 */
function configWords(
  loaded: LoadedConfig,
  abs: (p: string) => string,
  readText: (path: string) => string | undefined,
): { words: string[]; files: string[] } {
  const words: string[] = [];
  const files: string[] = [];
  const add = (item: string) => words.push(...splitWords(item));
  for (const [name, spec] of Object.entries(PARAMS)) {
    if (spec.kind !== "list") continue;
    // Read only with TLS on (src/tls_context.ts): the chains hold private keys.
    if (name === "tls_server_sni_maps" && !tlsNeededBy(loaded.config)) continue;
    for (const item of loaded.config[name as keyof typeof PARAMS] as readonly string[]) add(item);
  }
  for (const items of loaded.classes.values()) for (const item of items) add(item);
  const pending = LIST_FILE_PARAMS.flatMap((k) =>
    loaded.config[k].filter((i) => i.startsWith("/"))
  );
  while (pending.length > 0 && files.length < 100) {
    const path = abs(pending.shift() as string);
    if (files.includes(path)) continue;
    files.push(path);
    for (const line of (readText(path) ?? "").split("\n")) {
      for (const w of splitWords(line.replace(/#.*$/, ""))) {
        if (w.startsWith("/")) pending.push(w);
        else words.push(w);
      }
    }
  }
  const lower = (w: string) => w.includes(":") || w.startsWith("/") ? w : w.toLowerCase();
  return { words: words.map(lower), files };
}

/**
 * The words of a list item or table line. An `inline:` table's entries are
 * `key=value` (`inline:{ a@b=reject_unknown_sender_domain }`), and a
 * value's first word may be a restriction that asks the DNS or names a
 * service: `key=value` is taken as its two words (not in a table spec or a
 * path, where `=` is part of the name).
 */
function splitWords(text: string): string[] {
  return text.split(/[\s,{}]+/).filter((w) => w !== "").flatMap((w) => {
    const eq = w.indexOf("=");
    if (eq <= 0 || w.startsWith("/") || isSpecWord(w)) return [w];
    return [w.slice(0, eq), w.slice(eq + 1)].filter((part) => part !== "");
  });
}

/**
 * Whether a word is a table spec or a service endpoint (`type:name`), not
 * an IPv6 key (`fe80::1=reject_unknown_client_hostname`): its first group
 * is hex digits, which no table type or endpoint kind this program reads is.
 */
function isSpecWord(w: string): boolean {
  return /^[a-z][a-z0-9_]*:/i.test(w) && !/^[0-9a-f]{1,4}:/i.test(w);
}

/**
 * The file-backed tables a configuration names, also those named in the
 * values of other tables, as absolute paths; and every word seen on the way.
 */
function tablesAndWords(
  loaded: LoadedConfig,
  abs: (p: string) => string,
  readText: (path: string) => string | undefined,
): { tables: Map<string, string>; words: string[]; files: string[] } {
  const { words, files } = configWords(loaded, abs, readText);
  const tables = new Map<string, string>(); // absolute path → spec
  for (let i = 0; i < words.length; i++) {
    const m = FILE_TABLES.exec(words[i] as string);
    if (!m) continue;
    const path = abs(m[2] as string);
    if (tables.has(path)) continue;
    tables.set(path, words[i] as string);
    // A table's values may be restriction lists naming more tables.
    for (const w of tableWords(path, readText)) words.push(w);
  }
  return { tables, words, files };
}

/** The words of a table file ({@linkcode tableWordsSteps}); none when it cannot be read. */
function tableWords(path: string, readText: (path: string) => string | undefined): string[] {
  if (preparedText(path) !== undefined) {
    return preparedResult(path, TABLE_WORDS, tableWordsSteps, () => "");
  }
  const text = readText(path);
  return text === undefined ? [] : runSteps(tableWordsSteps(text));
}

/** The kind of parse a reload prepares a table file's words under (tables/prepared.ts). */
export const TABLE_WORDS = "words";

/**
 * The words of a table file that the needs are derived from: those that
 * name a table or an endpoint (a ":"), those that may be a restriction (a
 * "_": every restriction that asks the DNS or names a service has one),
 * and the word after each of those (a DNS list's zone, a policy service's
 * endpoint). The other words (the keys of a million-line access table,
 * OK, REJECT) are left out: nothing looks at them. Comment lines have none.
 * As steps ({@linkcode Steps}), for a reload to walk a large table in slices.
 * @param text the table file's text
 * @returns the steps, whose result is the words in file order
 */
export function* tableWordsSteps(text: string): Steps<string[]> {
  const out: string[] = [];
  let follows = false; // the word before has a "_": this one is kept
  let i = -1;
  for (const line of eachLine(text)) {
    if (++i % LINES_PER_STEP === 0 && i > 0) yield;
    if (!follows && !line.includes(":") && !line.includes("_")) continue;
    if (/^\s*#/.test(line)) continue;
    for (const w of splitWords(line)) {
      if (follows || w.includes(":") || w.includes("_")) out.push(w);
      follows = w.includes("_");
    }
  }
  return out;
}

/**
 * The file-backed tables the configuration names itself (not those named
 * in a table's values), as `type:path` specs: those a reload parses ahead.
 * @param loaded the configuration
 * @param options where files are read
 * @returns the specs
 */
export function fileTableSpecs(loaded: LoadedConfig, options: NeedsOptions): string[] {
  const abs = (p: string) => isAbsolute(p) ? p : resolve(options.cwd, p);
  const { words } = configWords(loaded, abs, options.readText);
  return [...new Set(words.filter((w) => FILE_TABLES.test(w)))];
}

/**
 * Whether anything in the configuration asks the DNS: client name lookups
 * (`smtpd_peername_lookup`) or a restriction that queries it.
 * @param loaded the configuration
 * @param options where table files are read
 * @param seen the words of the configuration and its files, when walked already
 * @returns the DNS restrictions named, the DNSBL zones, and whether client names are looked up
 */
export function dnsUse(
  loaded: LoadedConfig,
  options: NeedsOptions,
  seen?: readonly string[],
): { restrictions: string[]; zones: string[]; peername: boolean } {
  const readText = options.readText;
  const abs = (p: string) => isAbsolute(p) ? p : resolve(options.cwd, p);
  const words = seen ?? tablesAndWords(loaded, abs, readText).words;
  const restrictions = [...new Set(words.filter((w) => DNS_RESTRICTIONS.has(w)))];
  const zones = new Set<string>();
  words.forEach((w, i) => {
    const next = words[i + 1];
    if (/^(reject_rbl_client|permit_dnswl_client)$/.test(w) && next) {
      zones.add(next.split("=")[0] as string);
    }
  });
  if (restrictions.includes("reject_maps_rbl")) {
    for (const z of loaded.config.maps_rbl_domains) zones.add(z);
  }
  return { restrictions, zones: [...zones], peername: loaded.config.smtpd_peername_lookup };
}

/**
 * The DNS servers this configuration's resolver talks to.
 * @param loaded the configuration
 * @param readText reads resolv.conf
 * @returns `host:port` targets (empty when resolv.conf names none)
 */
export function dnsServers(
  loaded: LoadedConfig,
  readText: (path: string) => string | undefined,
): string[] {
  const c = loaded.config;
  if (c.dns_server) {
    const s = parseDnsServer(c.dns_server);
    return s ? [netTarget(s.ipAddr, s.port)] : [];
  }
  return resolvConfNameServers(readText(RESOLV_CONF) ?? "").map((h) => netTarget(h, 53));
}

/**
 * Derives what the configuration needs.
 * @param loaded the loaded configuration
 * @param options the working directory and the program's code directory
 * @returns the needs, in a stable order, without duplicates
 */
export function deriveNeeds(loaded: LoadedConfig, options: NeedsOptions): Need[] {
  const c = loaded.config;
  const readText = options.readText;
  const abs = (p: string) => isAbsolute(p) ? p : resolve(options.cwd, p);
  const needs: Need[] = [];
  const add = (kind: NeedKind, value: string, why: string) => {
    if (kind === "net") checkNetHost(loaded, value, why);
    if (!needs.some((n) => n.kind === kind && n.value === value)) needs.push({ kind, value, why });
  };

  if (loaded.file) add("read", abs(loaded.file), "configuration file");
  if (options.codeDir) add("read", options.codeDir, "program code (listener threads)");
  // One walk over the configuration and its table files: the tables to
  // read, and every word (policy services and socket maps hide there too).
  const { tables, words, files } = tablesAndWords(loaded, abs, readText);
  for (const path of files) add("read", path, "a /file of a domain or network list");
  // Where a table is named, so a table added later (a reload refused for
  // want of its read permission) is found by file and line.
  const namedAt = (spec: string) => {
    const i = loaded.text.split("\n").findIndex((l) => !/^\s*#/.test(l) && l.includes(spec));
    return i >= 0 && loaded.file ? `, named at ${abs(loaded.file)}:${i + 1}` : "";
  };
  for (const [path, spec] of tables) {
    add("read", path, `table ${spec.split(":")[0]}:${namedAt(spec)}`);
  }
  if (tlsNeededBy(c)) {
    if (c.smtpd_tls_cert_file) add("read", abs(c.smtpd_tls_cert_file), "smtpd_tls_cert_file");
    if (c.smtpd_tls_key_file) add("read", abs(c.smtpd_tls_key_file), "smtpd_tls_key_file");
    for (const k of ["smtpd_tls_eccert_file", "smtpd_tls_eckey_file"] as const) {
      if (c[k]) add("read", abs(c[k]), k);
    }
  }
  // tls_server_sni_maps: the tables are among the tables above; the chain files they name.
  for (const spec of tlsNeededBy(c) ? c.tls_server_sni_maps : []) {
    let entries;
    try {
      entries = readSniTable(spec, (p) => readText(abs(p)) ?? "");
    } catch {
      continue; // the start refuses it, with file and line
    }
    for (const value of entries.values()) {
      for (const f of chainFiles(value)) add("read", abs(f), "tls_server_sni_maps");
    }
  }
  const owner = c.mail_owner.trim();
  if (owner && !/^\d+:\d+$/.test(owner)) add("read", "/etc/passwd", "mail_owner (user name)");
  const queue = abs(c.queue_directory);
  add("read", queue, "queue_directory");
  add("write", queue, "queue_directory");

  for (const key of ["smtpd_listen", "smtpd_tls_wrappermode_listen"] as const) {
    for (const a of c[key]) {
      const l = parseListenAddress(a);
      // Port 0 (any free port, as tests use) is known only after the first
      // bind, and listener threads bind that port again: every port of the host.
      const host = l?.hostname.includes(":") ? `[${l.hostname}]` : l?.hostname;
      if (l) add("net", l.port === 0 ? host as string : netTarget(l.hostname, l.port), key);
    }
  }
  // The TLS engine: its loopback port for each listener thread (port 0, as
  // tests use: any port of that address).
  const engine = tlsNeededBy(c) ? parseListenAddress(c.smtpd_tls_loopback_listen) : undefined;
  if (engine) {
    const why = "smtpd_tls_loopback_listen (the TLS engine, one port per listener thread)";
    if (engine.port === 0) {
      add("net", engine.hostname.includes(":") ? `[${engine.hostname}]` : engine.hostname, why);
    } else {
      // With an ECDSA chain (smtpd_tls_eccert_file), the next run of ports serves it.
      const { total } = enginePorts(c);
      for (let i = 0; i < total && engine.port + i <= 65535; i++) {
        add("net", netTarget(engine.hostname, engine.port + i), why);
      }
    }
  }
  // Policy servers and socket maps: their endpoints, wherever they are named.
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as string;
    const policy = words[i - 1] === "check_policy_service" ? w : undefined;
    const socketmap = /^socketmap:((?:inet|unix|local):.+):[^:]+$/.exec(w)?.[1];
    const target = policy ?? socketmap;
    if (!target) continue;
    try {
      const e = parseEndpoint(target, queue);
      const why = policy ? "check_policy_service" : "socketmap: table";
      if (e.kind === "inet") add("net", netTarget(e.hostname, e.port), why);
      else {
        // Deno checks a UNIX socket's path as a file too (read and write).
        add("net", `unix:${e.path}`, why);
        add("read", e.path, why);
        add("write", e.path, why);
      }
    } catch {
      // A bad endpoint: the program names it, with file and line, at start.
    }
  }
  // smtpd_sasl_path: the Dovecot auth socket, when AUTH is on.
  if (c.smtpd_sasl_auth_enable) {
    const sasl = parseSaslPath(c.smtpd_sasl_path, queue);
    const e = sasl.ok ? sasl.endpoint : undefined;
    if (e?.transport === "tcp") add("net", netTarget(e.hostname, e.port), "smtpd_sasl_path");
    else if (e?.transport === "unix") {
      add("net", `unix:${e.path}`, "smtpd_sasl_path");
      add("read", e.path, "smtpd_sasl_path");
      add("write", e.path, "smtpd_sasl_path");
    }
  }
  // The same walk: the list files and tables are read and split once.
  const dns = dnsUse(loaded, options, words);
  if (dns.peername || dns.restrictions.length > 0) {
    const why = c.dns_server ? "dns_server" : `name server in ${RESOLV_CONF}`;
    // Deno reads resolv.conf itself; the program reads it too, to check at
    // start that its name servers are granted.
    if (!c.dns_server) add("read", RESOLV_CONF, "system resolver (dns_server is empty)");
    for (const s of dnsServers(loaded, readText)) add("net", s, why);
  }
  const syslog = c.syslog_server ? parseSyslogServer(c.syslog_server) : undefined;
  if (syslog) {
    if (syslog.transport === "udp") {
      add("net", netTarget(udpBindAddress(syslog.host), 0), "syslog_server (local UDP port)");
    }
    add("net", netTarget(syslog.host, syslog.port), "syslog_server");
  }
  // Deno grants UNIX sockets by exact absolute path only.
  for (const s of ["qmgr", "pickup"]) {
    add("net", `unix:${resolve(queue, "public", s)}`, "Postfix trigger (ETRN, wakeups)");
  }
  for (const v of ENV_VARS) add("env", v, "stand-alone mode: the client's address");
  add("sys", "hostname", "myhostname default");
  add("sys", "statfs", "queue_minfree (free space)");
  add(
    "sys",
    "uid",
    owner
      ? "mail_owner (whether this process may give files to it); config --check (queue_directory)"
      : "config --check (whether queue_directory is writable)",
  );
  add("sys", "gid", "config --check (whether queue_directory is writable)");
  if (!loaded.explicit.has("mynetworks") && c.mynetworks_style !== "host") {
    add("sys", "networkInterfaces", `mynetworks_style = ${c.mynetworks_style}`);
  }
  return needs;
}
