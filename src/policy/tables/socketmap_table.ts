/**
 * `socketmap:inet:host:port:name` and `socketmap:unix:/path:name` tables
 * (Postfix socketmap_table(5), Sendmail's socket map protocol): the query
 * is the netstring `name key`, the reply the netstring `OK value`,
 * `NOTFOUND `, or `TEMP`/`TIMEOUT`/`PERM reason` (a temporary failure for
 * us, logged with the reason). Keys are lower-cased. A connection is reused
 * (closed after 10 s idle or 100 s of life, as Postfix does); a query that
 * finds its connection closed is tried once more, one that times out is
 * not (a hung server costs 100 s, not 200); replies are bounded to
 * 100,000 bytes and a query to 10,000; every exchange to 100 s.
 *
 * @module
 */

import { encodeWireText } from "../../io/wire_text.ts";
import { PolicyClient } from "../service/client.ts";
import { type Framing, mayConnect, socketConnector } from "../service/connection.ts";
import { parseEndpoint } from "../service/endpoint.ts";
import type { ParsedReply } from "../service/protocol.ts";
import type { LookupResult, LookupTable } from "./types.ts";

const MAX_REPLY = 100_000;
const MAX_QUERY = 10_000;

/**
 * Encodes a netstring.
 * @param text the payload
 * @returns `length:payload,`
 */
export function netstring(text: string): Uint8Array {
  // A client's byte that is not UTF-8 (smtputf8_enable off) goes as that byte, as in Postfix.
  const body = encodeWireText(text);
  const head = new TextEncoder().encode(`${body.length}:`);
  const out = new Uint8Array(head.length + body.length + 1);
  out.set(head);
  out.set(body, head.length);
  out[out.length - 1] = 44; // ","
  return out;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses one netstring from the bytes received so far.
 * @param bytes the bytes
 * @returns the payload (as "action"), incomplete, or an error
 */
export function parseNetstring(bytes: Uint8Array): ParsedReply & { trailing?: boolean } {
  let i = 0;
  let len = 0;
  while (i < bytes.length && bytes[i] !== 58) { // ":"
    const d = (bytes[i] as number) - 48;
    if (d < 0 || d > 9 || i >= 6) return { kind: "error", reason: "malformed netstring length" };
    len = len * 10 + d;
    i++;
  }
  if (i === bytes.length) return { kind: "incomplete" };
  if (i === 0) return { kind: "error", reason: "malformed netstring length" };
  if (len > MAX_REPLY) return { kind: "error", reason: `reply longer than ${MAX_REPLY} bytes` };
  const end = i + 1 + len;
  if (bytes.length <= end) return { kind: "incomplete" };
  if (bytes[end] !== 44) return { kind: "error", reason: "netstring without its final comma" };
  try {
    const action = decoder.decode(bytes.subarray(i + 1, end));
    return { kind: "action", action, trailing: bytes.length > end + 1 };
  } catch {
    return { kind: "error", reason: "malformed UTF-8 in reply" };
  }
}

const FRAMING: Framing = { parse: parseNetstring, limit: MAX_REPLY + 16 };

/**
 * Opens a socketmap table (no connection is made until the first lookup).
 * @param spec the full spec, for logs
 * @param arg "inet:host:port:name" or "unix:/path:name"
 * @param queueDirectory the base of relative UNIX socket paths
 * @param timeout seconds per exchange (Postfix's 100; shorter in tests)
 * @returns the table
 * @throws {SyntaxError} for a malformed argument
 */
export function socketmapTable(
  spec: string,
  arg: string,
  queueDirectory: string,
  timeout = 100,
): LookupTable {
  const at = arg.lastIndexOf(":");
  const mapName = arg.slice(at + 1);
  const where = arg.slice(0, at);
  if (at <= 0 || !mapName || /\s/.test(mapName)) {
    throw new SyntaxError(`expected socketmap:inet:host:port:name or socketmap:unix:/path:name`);
  }
  const endpoint = parseEndpoint(where, queueDirectory);
  if (!mayConnect(endpoint)) {
    throw new SyntaxError(
      `"${where}" is outside the hosts and sockets this program may connect to ` +
        "(smtpd permissions -c FILE prints the flags this configuration needs)",
    );
  }
  const client = new PolicyClient({
    endpoint,
    name: where,
    timeout,
    maxIdle: 10,
    maxTtl: 100,
    requestLimit: 0,
    tryLimit: 2,
    retryDelay: 0,
    defaultAction: "",
    policyContext: "",
  }, {
    connect: socketConnector,
    now: Date.now,
    sleep: () => Promise.resolve(),
    warn: () => {},
    framing: FRAMING,
    retryTimeout: false,
  });
  return {
    name: spec,
    values: undefined,
    retire: () => client.retire(),
    async lookup(key: string): Promise<LookupResult> {
      const query = `${mapName} ${key.toLowerCase()}`;
      if (query.length > MAX_QUERY) return { kind: "tempfail", reason: "query too long" };
      const answer = await client.exchange(netstring(query));
      if (answer.kind === "failed") return { kind: "tempfail", reason: answer.reason };
      const text = answer.action;
      const sp = text.indexOf(" ");
      const status = sp < 0 ? text : text.slice(0, sp);
      const payload = sp < 0 ? "" : text.slice(sp + 1);
      if (status === "OK") return { kind: "found", value: payload };
      if (status === "NOTFOUND") return { kind: "notFound" };
      const cls = { TEMP: "temporary", TIMEOUT: "timeout", PERM: "permanent" }[status] ??
        "unknown";
      return {
        kind: "tempfail",
        reason: `socketmap server ${cls} error${
          payload.trim() ? `: ${payload.trim().slice(0, 200)}` : ""
        }`,
      };
    },
  };
}
