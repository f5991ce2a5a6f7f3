/**
 * smtpd_tls_protocols and smtpd_tls_mandatory_protocols, Postfix's syntax
 * (tls_protocol_mask in Postfix's tls_misc.c): names (SSLv2, SSLv3, TLSv1,
 * TLSv1.1, TLSv1.2, TLSv1.3) that enable only themselves, "!name" that
 * excludes one, ">=name" and "<=name" bounds, separated by spaces, commas
 * or colons. The TLS library here (rustls, behind Deno's node:tls) speaks
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
    const i = NAMES.findIndex((n) => n.toLowerCase() === (m[2] as string).toLowerCase());
    if (i < 0) {
      return { error: `unknown protocol "${m[2]}" (known: ${NAMES.join(", ")})` };
    }
    const name = NAMES[i] as string;
    if (m[1] === "!") off.add(name);
    else if (m[1] === ">=") lowest = Math.max(lowest, i);
    else if (m[1] === "<=") highest = Math.min(highest, i);
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
