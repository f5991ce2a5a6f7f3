/**
 * Reads what the TLS engine (tls_engine.ts) needs from a client's first
 * record, the ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2): whether the
 * client accepts ECDSA signatures, so that a server with both an RSA and an
 * ECDSA chain (smtpd_tls_eccert_file) serves the ECDSA one to clients that
 * take it and the RSA one to the others, as Postfix's OpenSSL does. A
 * client takes it when it lists the ECDSA key's signature scheme and can agree on a
 * suite that an ECDSA key serves: TLS 1.3 (any suite, offered in
 * supported_versions), or one of the ECDHE_ECDSA suites of TLS 1.2. A TLS 1.2
 * client that offers only ECDHE_RSA suites needs the RSA chain, whatever
 * signature schemes it lists (OpenSSL's default list names ECDSA ones).
 *
 * @module
 */

/** The most of a client's first bytes worth reading for its ClientHello (one record). */
export const CLIENT_HELLO_LIMIT = 16384 + 5;

/** ECDSA signature schemes (RFC 8446 §4.2.3): P-256, P-384, P-521 with their hashes. */
const ECDSA = new Set([0x0403, 0x0503, 0x0603]);

/**
 * The one signature scheme an ECDSA key on each curve signs with (named as
 * node:crypto's namedCurve): rustls signs with a key's own scheme only, in
 * TLS 1.3 (where the scheme names the curve) and in TLS 1.2 alike.
 */
const SCHEME_OF_CURVE: Readonly<Record<string, number>> = {
  prime256v1: 0x0403,
  secp384r1: 0x0503,
  secp521r1: 0x0603,
};

/**
 * The ECDSA signature schemes a key on a curve can serve.
 * @param curve node:crypto's namedCurve of the key (prime256v1, secp384r1, secp521r1)
 * @returns the key's scheme; every ECDSA scheme when the curve is not known
 */
export function ecdsaSchemesOf(curve: string | undefined): ReadonlySet<number> {
  const scheme = curve === undefined ? undefined : SCHEME_OF_CURVE[curve];
  return scheme === undefined ? ECDSA : new Set([scheme]);
}

/** The TLS 1.3 suites the engine (rustls) serves: AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305. */
const TLS13_SUITES = new Set([0x1301, 0x1302, 0x1303]);

/** The TLS 1.2 ECDHE_ECDSA suites rustls serves (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305). */
const ECDHE_ECDSA_SUITES = new Set([0xc02b, 0xc02c, 0xcca9]);

/**
 * Parses the client's first bytes.
 * @param b the bytes the client sent first
 * @param schemes the ECDSA schemes the ECDSA key can sign with
 *   ({@linkcode ecdsaSchemesOf}); a client that lists none of them cannot
 *   verify it (`-sigalgs ECDSA+SHA384:RSA+SHA256` against a P-256 key)
 * @returns whether it offers one of those signature schemes and a protocol and
 *   suite an ECDSA key can serve (see the module's text); "more" when the
 *   first record is not complete yet; undefined when the bytes are not a
 *   ClientHello this can read (the engine's TLS stack then answers them)
 */
export function clientTakesEcdsa(
  b: Uint8Array,
  schemes: ReadonlySet<number> = ECDSA,
): boolean | "more" | undefined {
  if (b.length < 5) return "more";
  if (b[0] !== 22) return undefined;
  const recordEnd = 5 + ((b[3] as number) << 8 | (b[4] as number));
  if (recordEnd > CLIENT_HELLO_LIMIT) return undefined;
  if (b.length < recordEnd) return "more";
  if (b[5] !== 1) return undefined;
  const bodyEnd = Math.min(
    recordEnd,
    9 + ((b[6] as number) << 16 | (b[7] as number) << 8 | (b[8] as number)),
  );
  const u16 = (at: number) => ((b[at] as number) << 8) | (b[at + 1] as number);
  let at = 9 + 2 + 32; // legacy_version, random
  if (at >= bodyEnd) return undefined;
  at += 1 + (b[at] as number); // legacy_session_id
  if (at + 2 > bodyEnd) return undefined;
  const suitesEnd = Math.min(bodyEnd, at + 2 + u16(at));
  let tls13Suite = false;
  let ecdsaSuite = false;
  for (let i = at + 2; i + 2 <= suitesEnd; i += 2) {
    if (TLS13_SUITES.has(u16(i))) tls13Suite = true;
    if (ECDHE_ECDSA_SUITES.has(u16(i))) ecdsaSuite = true;
  }
  at += 2 + u16(at); // cipher_suites
  if (at + 1 > bodyEnd) return undefined;
  at += 1 + (b[at] as number); // legacy_compression_methods
  if (at + 2 > bodyEnd) return false;
  const extEnd = Math.min(bodyEnd, at + 2 + u16(at));
  at += 2;
  let ecdsaScheme = false;
  let tls13 = false;
  while (at + 4 <= extEnd) {
    const type = u16(at);
    const len = u16(at + 2);
    if (type === 13) {
      // signature_algorithms: a list of two-byte schemes.
      const listEnd = Math.min(extEnd, at + 4 + len, at + 6 + u16(at + 4));
      for (let i = at + 6; i + 2 <= listEnd; i += 2) if (schemes.has(u16(i))) ecdsaScheme = true;
    } else if (type === 43) {
      // supported_versions: a one-byte length, then two-byte versions.
      const listEnd = Math.min(extEnd, at + 4 + len, at + 5 + (b[at + 4] as number));
      for (let i = at + 5; i + 2 <= listEnd; i += 2) if (u16(i) === 0x0304) tls13 = true;
    }
    at += 4 + len;
  }
  return ecdsaScheme && ((tls13 && tls13Suite) || ecdsaSuite);
}
