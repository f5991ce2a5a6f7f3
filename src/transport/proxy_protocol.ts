/**
 * The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2): a
 * load balancer in front of us sends one header with the real client
 * address before any SMTP. With smtpd_upstream_proxy_protocol = haproxy,
 * the session reads it first, and that address is the client for every
 * restriction, log line and Received: header.
 *
 * @module
 */

import type { LineReader } from "../io/line_reader.ts";

/** What a PROXY header said. */
export type ProxyResult =
  | { kind: "proxied"; address: string; port: string }
  | { kind: "local" } // v2 LOCAL or v1 UNKNOWN: keep the connection's own address
  | { kind: "error"; reason: string };

const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const V1_MAX = 107;

/**
 * Reads and parses one PROXY header (v1 or v2).
 * @param reader the session's reader, before anything else was read
 * @returns the client address, "local", or an error
 */
export async function readProxyHeader(reader: LineReader): Promise<ProxyResult> {
  if (!(await reader.ensure(12))) return { kind: "error", reason: "connection closed" };
  const head = reader.peek();
  if (V2_SIGNATURE.every((b, i) => head[i] === b)) return await readV2(reader);
  if (String.fromCharCode(...head.subarray(0, 6)) === "PROXY ") return await readV1(reader);
  return { kind: "error", reason: "no PROXY header" };
}

async function readV1(reader: LineReader): Promise<ProxyResult> {
  for (;;) {
    const buf = reader.peek();
    const lf = buf.indexOf(10);
    if (lf >= 0) {
      if (lf > V1_MAX || buf[lf - 1] !== 13) {
        return { kind: "error", reason: "malformed v1 header" };
      }
      const line = new TextDecoder().decode(buf.subarray(0, lf - 1));
      reader.consume(lf + 1);
      const f = line.split(" ");
      if (f[1] === "UNKNOWN") return { kind: "local" };
      const ok = f.length === 6 && (f[1] === "TCP4" || f[1] === "TCP6") &&
        /^\d{1,5}$/.test(f[4] ?? "");
      if (!ok) return { kind: "error", reason: `malformed v1 header "${line}"` };
      return { kind: "proxied", address: f[2] as string, port: f[4] as string };
    }
    if (buf.length > V1_MAX) return { kind: "error", reason: "v1 header too long" };
    if (!(await reader.ensure(buf.length + 1))) {
      return { kind: "error", reason: "connection closed" };
    }
  }
}

async function readV2(reader: LineReader): Promise<ProxyResult> {
  if (!(await reader.ensure(16))) return { kind: "error", reason: "connection closed" };
  let b = reader.peek();
  const verCmd = b[12] as number;
  const fam = b[13] as number;
  const len = ((b[14] as number) << 8) | (b[15] as number);
  if (verCmd >> 4 !== 2) return { kind: "error", reason: "unsupported v2 version" };
  if (!(await reader.ensure(16 + len))) return { kind: "error", reason: "connection closed" };
  b = reader.peek();
  const body = b.slice(16, 16 + len);
  reader.consume(16 + len);
  if ((verCmd & 0x0f) === 0) return { kind: "local" };
  if ((verCmd & 0x0f) !== 1) return { kind: "error", reason: "unsupported v2 command" };
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  if (fam >> 4 === 1 && len >= 12) {
    return {
      kind: "proxied",
      address: Array.from(body.subarray(0, 4)).join("."),
      port: String(view.getUint16(8)),
    };
  }
  if (fam >> 4 === 2 && len >= 36) {
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(view.getUint16(i * 2).toString(16));
    return { kind: "proxied", address: normalizeV6(groups), port: String(view.getUint16(32)) };
  }
  if (fam >> 4 === 0) return { kind: "local" };
  return { kind: "error", reason: "unsupported v2 address family" };
}

/** Compresses the longest run of zero groups (RFC 5952). */
function normalizeV6(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(":");
  const mapped = best === 0 && bestLen === 5 && groups[5] === "ffff";
  if (mapped) {
    const hi = parseInt(groups[6] as string, 16);
    const lo = parseInt(groups[7] as string, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}
