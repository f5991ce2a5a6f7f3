/**
 * Reads the negotiated protocol version and cipher suite out of a TLS
 * ServerHello (RFC 8446 §4.1.3, RFC 5246 §7.4.1.3), as it passes in
 * plaintext from the server to the client. The TLS engine
 * (tls_engine.ts) learns them this way: Deno's TLS connections do not
 * report them, and Postfix logs them and writes them into Received:.
 *
 * @module
 */

import type { TlsInfo } from "./types.ts";

/**
 * The suites the TLS library (rustls) negotiates, by IANA code, with
 * OpenSSL's names (Postfix logs those) and the IANA names (node:tls reports those).
 */
const SUITES: ReadonlyMap<number, { name: string; iana: string; bits: number }> = new Map([
  [0x1301, { name: "TLS_AES_128_GCM_SHA256", iana: "TLS_AES_128_GCM_SHA256", bits: 128 }],
  [0x1302, { name: "TLS_AES_256_GCM_SHA384", iana: "TLS_AES_256_GCM_SHA384", bits: 256 }],
  [0x1303, {
    name: "TLS_CHACHA20_POLY1305_SHA256",
    iana: "TLS_CHACHA20_POLY1305_SHA256",
    bits: 256,
  }],
  [0xc02b, {
    name: "ECDHE-ECDSA-AES128-GCM-SHA256",
    iana: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    bits: 128,
  }],
  [0xc02c, {
    name: "ECDHE-ECDSA-AES256-GCM-SHA384",
    iana: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    bits: 256,
  }],
  [0xc02f, {
    name: "ECDHE-RSA-AES128-GCM-SHA256",
    iana: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    bits: 128,
  }],
  [0xc030, {
    name: "ECDHE-RSA-AES256-GCM-SHA384",
    iana: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    bits: 256,
  }],
  [0xcca8, {
    name: "ECDHE-RSA-CHACHA20-POLY1305",
    iana: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    bits: 256,
  }],
  [0xcca9, {
    name: "ECDHE-ECDSA-CHACHA20-POLY1305",
    iana: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    bits: 256,
  }],
]);

const BY_IANA: ReadonlyMap<string, { name: string; bits: number }> = new Map(
  [...SUITES.values()].map((s) => [s.iana, s]),
);

/**
 * A suite by its IANA name (what node:tls's getCipher() gives as
 * standardName): OpenSSL's name for it, as Postfix logs it, and its bits.
 * @param iana the IANA name
 * @returns the suite, or undefined when rustls has no such suite
 */
export function suiteByIanaName(iana: string): { name: string; bits: number } | undefined {
  return BY_IANA.get(iana);
}

const VERSIONS: ReadonlyMap<number, string> = new Map([
  [0x0301, "TLSv1"],
  [0x0302, "TLSv1.1"],
  [0x0303, "TLSv1.2"],
  [0x0304, "TLSv1.3"],
]);

/** The most of the server's first bytes worth keeping to find the ServerHello. */
export const SERVER_HELLO_LIMIT = 4096;

/**
 * Parses the server's first bytes.
 * @param b the bytes the server sent first (from the start of the stream)
 * @returns the facts; "more" when the first record is not complete yet;
 *   undefined when the bytes are not a ServerHello this can read
 */
export function parseServerHello(b: Uint8Array): TlsInfo | "more" | undefined {
  if (b.length < 5) return "more";
  // A handshake record (22) whose first message is a ServerHello (2).
  if (b[0] !== 22) return undefined;
  const recordEnd = 5 + ((b[3] as number) << 8 | (b[4] as number));
  if (recordEnd > SERVER_HELLO_LIMIT) return undefined;
  if (b.length < recordEnd) return "more";
  if (b[5] !== 2) return undefined;
  const bodyEnd = 9 + ((b[6] as number) << 16 | (b[7] as number) << 8 | (b[8] as number));
  if (bodyEnd > recordEnd) return undefined;
  const u16 = (at: number) => ((b[at] as number) << 8) | (b[at + 1] as number);
  let at = 9;
  let version = u16(at);
  at += 2 + 32; // legacy_version, random
  at += 1 + (b[at] as number); // legacy_session_id_echo
  if (at + 3 > bodyEnd) return undefined;
  const suite = u16(at);
  at += 3; // cipher_suite, legacy_compression_method
  if (at + 2 <= bodyEnd) {
    const extEnd = Math.min(bodyEnd, at + 2 + u16(at));
    at += 2;
    while (at + 4 <= extEnd) {
      const type = u16(at);
      const len = u16(at + 2);
      // supported_versions: the version TLS 1.3 really selected.
      if (type === 43 && len === 2 && at + 6 <= extEnd) version = u16(at + 4);
      at += 4 + len;
    }
  }
  const s = SUITES.get(suite);
  return {
    protocol: VERSIONS.get(version) ?? "unknown",
    cipher: s?.name ?? `0x${suite.toString(16).padStart(4, "0")}`,
    bits: s?.bits ?? 0,
  };
}
