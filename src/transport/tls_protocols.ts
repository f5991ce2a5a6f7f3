/**
 * smtpd_tls_protocols and smtpd_tls_mandatory_protocols, Postfix's syntax
 * (tls_proto_mask_lims in Postfix's tls_misc.c): names (SSLv2, SSLv3, TLSv1,
 * TLSv1.1, TLSv1.2, TLSv1.3) that enable only themselves, "!name" that
 * excludes one, ">=version" and "<=version" bounds, separated by spaces,
 * commas or colons. A bound's version is a name from SSLv3 on, "None" (no
 * bound), or the protocol's number in hexadecimal ("0303", "0x0303" for
 * TLSv1.2; Postfix 3.6 and later). The TLS library here (rustls, behind Deno's node:tls) speaks
 * TLSv1.2 and TLSv1.3 only, so the result is the range of those two the
 * list leaves on; a list that leaves neither is refused.
 *
 * @module
 */

/** The protocol names Postfix knows, oldest first. */
const NAMES = ["SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"] as const;

/** The protocols this server can speak. */
export type TlsVersion = "TLSv1.2" | "TLSv1.3";

/** The protocol range a list allows. */
export interface TlsVersionRange {
  readonly minVersion: TlsVersion;
  readonly maxVersion: TlsVersion;
}

/**
 * Parses a protocol list.
 * @param text the parameter's value ("" allows everything)
 * @returns the range, or a message saying what is wrong
 */
export function parseTlsProtocols(text: string): TlsVersionRange | { error: string } {
  const on = new Set<string>();
  const off = new Set<string>();
  let lowest = 0;
  let highest = NAMES.length - 1;
  for (const word of text.split(/[\s,:]+/).filter((w) => w !== "")) {
    const m = /^(!|>=|<=)?(.*)$/.exec(word) as RegExpExecArray;
    const op = m[1];
    const what = m[2] as string;
    if (op === ">=" || op === "<=") {
      const bound = boundOf(what, op);
      if (typeof bound === "object") return bound;
      if (op === ">=") lowest = Math.max(lowest, bound);
      else highest = Math.min(highest, bound);
      continue;
    }
    const i = indexOf(what);
    if (i < 0) {
      return { error: `unknown protocol "${what}" (known: ${NAMES.join(", ")})` };
    }
    const name = NAMES[i] as string;
    if (op === "!") off.add(name);
    else on.add(name);
  }
  const allowed = NAMES.filter((n, i) =>
    i >= lowest && i <= highest && !off.has(n) && (on.size === 0 || on.has(n))
  );
  const spoken = allowed.filter((n): n is TlsVersion => n === "TLSv1.2" || n === "TLSv1.3");
  if (spoken.length === 0) {
    return {
      error: `"${text}" leaves no protocol this server speaks (TLSv1.2 and TLSv1.3 only)`,
    };
  }
  return { minVersion: spoken[0] as TlsVersion, maxVersion: spoken.at(-1) as TlsVersion };
}

/** A protocol's index in NAMES (any case, as Postfix's name_code), or -1. */
function indexOf(name: string): number {
  return NAMES.findIndex((n) => n.toLowerCase() === name.toLowerCase());
}

/** The wire numbers of NAMES from SSLv3 on (SSLv2's differs: 0x0002). */
const NUMBERS = [0x0300, 0x0301, 0x0302, 0x0303, 0x0304] as const;

/**
 * The index in NAMES a bound leaves as its end. As Postfix: a name from
 * SSLv3 on ("SSLv2" is no bound: Postfix then turns TLS off), "None" (no
 * bound), or a version number in hexadecimal with or without "0x". A
 * number between the known ones keeps the known versions on its side: a
 * ceiling above TLSv1.3 ("<=0305", a later version) is TLSv1.3, a floor
 * above it leaves nothing, and is refused as such.
 * @param what the version after ">=" or "<="
 * @param op which bound
 * @returns the index, NAMES.length for a floor above every known version,
 *   -1 for a ceiling below every one, or what is wrong
 */
function boundOf(what: string, op: ">=" | "<="): number | { error: string } {
  if (what.toLowerCase() === "none") return op === ">=" ? 0 : NAMES.length - 1;
  const i = indexOf(what);
  if (i > 0) return i;
  const hex = /^(?:0x)?([0-9a-f]{1,8})$/i.exec(what);
  if (i === 0 || !hex) {
    return {
      error: `${i === 0 ? "no bound can be" : "unknown protocol"} "${what}" in "${op}${what}" ` +
        `(a bound is a protocol from SSLv3 on, None, or its number in hexadecimal: ` +
        `"0303" or "0x0303" for TLSv1.2)`,
    };
  }
  const n = parseInt(hex[1] as string, 16);
  // 0 is no bound, as in OpenSSL.
  if (n === 0) return op === ">=" ? 0 : NAMES.length - 1;
  if (op === ">=") {
    const at = NUMBERS.findIndex((v) => v >= n);
    return at < 0 ? NAMES.length : at + 1;
  }
  return NUMBERS.findLastIndex((v) => v <= n) + 1 || -1;
}
