/**
 * The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2): a
 * load balancer in front of us sends one header with the real client
 * address before any SMTP. With smtpd_upstream_proxy_protocol = haproxy,
 * the session reads it first, and that address is the client for every
 * restriction, log line and Received: header.
 *
 * @module
 */

import type { Config } from "../config/mod.ts";
import type { LineReader } from "../io/line_reader.ts";
import { inNetwork, type Network } from "../policy/cidr.ts";
import { compileNetworks } from "../policy/relay.ts";
import { formatIp, parseIp, parseIpAddress } from "../protocol/ip.ts";

/** Where the client connected to, as the balancer tells it. */
export interface ProxyServer {
  /** The address in canonical text. */
  readonly hostname: string;
  readonly port: number;
}

/** What a PROXY header said. */
export type ProxyResult =
  | { kind: "proxied"; address: string; port: string; server: ProxyServer }
  | { kind: "local" } // v2 LOCAL (the balancer's own connection): keep the connection's address
  | { kind: "error"; reason: string };

const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
/** The longest v1 header, CRLF included (proxy-protocol.txt §2.1). */
const V1_MAX = 107;
/** The longest v2 address block we read: addresses plus TLVs (ALPN, SSL, unique ID). */
const V2_MAX_BODY = 2048;

/**
 * Reads and parses one PROXY header (v1 or v2).
 * @param reader the session's reader, before anything else was read
 * @param exact read not a byte past the header: on a wrapper-mode
 *   (implicit TLS) port the client's ClientHello may arrive in the same
 *   segment, and it belongs to the TLS layer. A v1 header is then read a
 *   byte at a time past its first 12 (its end is not known in advance);
 *   before plaintext SMTP what follows the header simply stays in the
 *   session's reader, so the reads are not held back there.
 * @returns the client address, "local", or an error
 */
export async function readProxyHeader(reader: LineReader, exact = true): Promise<ProxyResult> {
  // Every header is longer than 12 bytes (v1 at least 15, v2 at least 16).
  if (!(await reader.ensure(12, exact))) return { kind: "error", reason: "connection closed" };
  const head = reader.peek();
  if (V2_SIGNATURE.every((b, i) => head[i] === b)) return await readV2(reader);
  if (String.fromCharCode(...head.subarray(0, 6)) === "PROXY ") return await readV1(reader, exact);
  return { kind: "error", reason: "no PROXY header" };
}

async function readV1(reader: LineReader, exact: boolean): Promise<ProxyResult> {
  for (;;) {
    const buf = reader.peek();
    const lf = buf.indexOf(10);
    if (lf >= 0) {
      // The whole line, CRLF included, is at most 107 bytes.
      if (lf + 1 > V1_MAX) return { kind: "error", reason: "v1 header too long" };
      if (lf < 1 || buf[lf - 1] !== 13) return { kind: "error", reason: "v1 header without CRLF" };
      const bytes = buf.subarray(0, lf - 1);
      reader.consume(lf + 1);
      // Printable US-ASCII only: no control bytes (ESC, a bare CR, NUL), no 8-bit bytes.
      if (bytes.some((b) => b < 0x20 || b > 0x7e)) {
        return { kind: "error", reason: "v1 header with a control or 8-bit byte" };
      }
      return parseV1(String.fromCharCode(...bytes));
    }
    if (buf.length >= V1_MAX) return { kind: "error", reason: "v1 header too long" };
    // Exact: one byte at a time, the end of the line is not known in advance.
    if (!(await reader.ensure(buf.length + 1, exact))) {
      return { kind: "error", reason: "connection closed" };
    }
  }
}

/**
 * Parses the text of a v1 header (without CRLF) as HAProxy's specification
 * and Postfix's reader do: `PROXY TCP4|TCP6 src dst sport dport`, single
 * spaces, addresses of the stated family in strict syntax, ports 0-65535
 * in plain decimal. `PROXY UNKNOWN` (what HAProxy sends for a client it
 * has no address for, e.g. on a UNIX-socket frontend) is refused, as
 * Postfix refuses it: the session would run with the balancer's own
 * address, which is usually in mynetworks.
 * @param line printable ASCII text
 * @returns the client address (canonical text) or an error that quotes nothing
 */
export function parseV1(line: string): ProxyResult {
  const f = line.split(" ");
  if (f[0] !== "PROXY") return { kind: "error", reason: "malformed v1 header" };
  if (f[1] === "UNKNOWN") return { kind: "error", reason: "v1 header with protocol UNKNOWN" };
  if (f[1] !== "TCP4" && f[1] !== "TCP6") {
    return { kind: "error", reason: "v1 header with an unknown protocol" };
  }
  if (f.length !== 6) return { kind: "error", reason: "v1 header with a wrong field count" };
  const family = f[1] === "TCP4" ? 4 : 6;
  const src = parseIpAddress(f[2] as string);
  const dst = parseIpAddress(f[3] as string);
  if (src === undefined || src.family !== family) {
    return { kind: "error", reason: `v1 header with a bad ${f[1]} source address` };
  }
  if (dst === undefined || dst.family !== family) {
    return { kind: "error", reason: `v1 header with a bad ${f[1]} destination address` };
  }
  if (!isPort(f[4] as string) || !isPort(f[5] as string)) {
    return { kind: "error", reason: "v1 header with a bad port" };
  }
  return {
    kind: "proxied",
    address: formatIp(src.value),
    port: f[4] as string,
    server: { hostname: formatIp(dst.value), port: Number(f[5]) },
  };
}

/** A port: 0-65535 in decimal, no sign, no leading zero. */
function isPort(text: string): boolean {
  return /^(0|[1-9][0-9]{0,4})$/.test(text) && Number(text) <= 65535;
}

async function readV2(reader: LineReader): Promise<ProxyResult> {
  if (!(await reader.ensure(16, true))) return { kind: "error", reason: "connection closed" };
  let b = reader.peek();
  const verCmd = b[12] as number;
  const fam = b[13] as number;
  const len = ((b[14] as number) << 8) | (b[15] as number);
  if (verCmd >> 4 !== 2) return { kind: "error", reason: "unsupported v2 version" };
  const command = verCmd & 0x0f;
  if (command > 1) return { kind: "error", reason: "unsupported v2 command" };
  if (len > V2_MAX_BODY) return { kind: "error", reason: "v2 header too long" };
  if (!(await reader.ensure(16 + len, true))) {
    return { kind: "error", reason: "connection closed" };
  }
  b = reader.peek();
  const body = b.slice(16, 16 + len);
  reader.consume(16 + len);
  // LOCAL: the balancer's own connection (a health check); its address stays.
  if (command === 0) return { kind: "local" };
  const family = fam >> 4;
  const transport = fam & 0x0f;
  // AF_UNSPEC with PROXY: the balancer does not know the source. Refused,
  // as by Postfix: the balancer's own address would sidestep access control.
  if (family === 0) return { kind: "error", reason: "v2 PROXY header with AF_UNSPEC" };
  if (transport !== 1) return { kind: "error", reason: "unsupported v2 transport" };
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  if (family === 1) {
    if (len < 12) return { kind: "error", reason: "v2 header too short for TCP4" };
    const v4 = (at: number) => formatIp((0xffffn << 32n) | BigInt(view.getUint32(at)));
    return {
      kind: "proxied",
      address: v4(0),
      port: String(view.getUint16(8)),
      server: { hostname: v4(4), port: view.getUint16(10) },
    };
  }
  if (family === 2) {
    if (len < 36) return { kind: "error", reason: "v2 header too short for TCP6" };
    const v6 = (at: number) => formatIp((view.getBigUint64(at) << 64n) | view.getBigUint64(at + 8));
    return {
      kind: "proxied",
      address: v6(0),
      port: String(view.getUint16(32)),
      server: { hostname: v6(16), port: view.getUint16(34) },
    };
  }
  return { kind: "error", reason: "unsupported v2 address family" };
}

/**
 * Whether a connection's own address (the balancer) may send a PROXY
 * header: it must lie in smtpd_upstream_proxy_networks.
 * @param config the configuration
 * @param address the connection's peer address
 * @param nets smtpd_upstream_proxy_networks compiled (the runtime compiles
 *   and checks it once at start); without it, compiled here
 * @returns true when allowed
 */
export function upstreamAllowed(
  config: Config,
  address: string,
  nets: readonly Network[] = compileNetworks(
    config.smtpd_upstream_proxy_networks,
    "smtpd_upstream_proxy_networks",
  ),
): boolean {
  const ip = parseIp(address);
  return ip !== undefined && nets.some((n) => inNetwork(n, ip));
}
