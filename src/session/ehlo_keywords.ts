/**
 * The EHLO keyword list (RFC 1869/5321 §4.1.1.1): PIPELINING (RFC 2920),
 * SIZE (RFC 1870), VRFY, ETRN, STARTTLS (RFC 3207), AUTH (RFC 4954),
 * ENHANCEDSTATUSCODES (RFC 2034),
 * 8BITMIME (RFC 6152), DSN (RFC 3461), SMTPUTF8 (RFC 6531), CHUNKING (RFC
 * 3030; last, as Postfix 3.4+), in Postfix's order; minus what
 * smtpd_discard_ehlo_keywords names (any case; unknown names are ignored,
 * as Postfix does, with a warning at start and reload, and `silent-discard` only stops the "discarding EHLO
 * keywords" log line). BINARYMIME is not offered: the Postfix behind us
 * cannot deliver binary content.
 *
 * @module
 */

/** What shapes the list. */
export interface EhloOptions {
  readonly messageSizeLimit: number;
  readonly vrfy: boolean;
  readonly etrn: boolean;
  readonly starttls?: boolean;
  /** smtputf8_enable. */
  readonly smtputf8?: boolean;
  /** The AUTH lines ("AUTH PLAIN LOGIN", and "AUTH=PLAIN LOGIN" for broken clients). */
  readonly auth?: readonly string[];
  /** Keywords to leave out (upper case), from {@linkcode ehloDiscards}. */
  readonly discard?: ReadonlySet<string>;
}

/**
 * Builds the lines after the greeting line of the EHLO reply.
 * @param options the settings that shape the list
 * @returns the keyword lines
 */
export function ehloKeywords(options: EhloOptions): string[] {
  const out = ["PIPELINING", `SIZE ${options.messageSizeLimit}`];
  if (options.vrfy) out.push("VRFY");
  if (options.etrn) out.push("ETRN");
  if (options.starttls) out.push("STARTTLS");
  if (options.auth) out.push(...options.auth);
  out.push("ENHANCEDSTATUSCODES", "8BITMIME", "DSN");
  if (options.smtputf8) out.push("SMTPUTF8");
  out.push("CHUNKING");
  const discard = options.discard;
  if (!discard || discard.size === 0) return out;
  return out.filter((k) => !discard.has(k.split(/[ =]/)[0] as string));
}

/** The keywords Postfix's smtpd_discard_ehlo_keywords knows (ehlo_mask.c). */
const KNOWN = new Set([
  "8BITMIME",
  "AUTH",
  "ETRN",
  "PIPELINING",
  "SIZE",
  "VERP",
  "VRFY",
  "XCLIENT",
  "XFORWARD",
  "STARTTLS",
  "ENHANCEDSTATUSCODES",
  "DSN",
  "SMTPUTF8",
  "CHUNKING",
  "REQUIRETLS",
  "SILENT-DISCARD",
]);

/** The names smtpd_discard_ehlo_keywords takes, as the documentation writes them. */
export const KNOWN_EHLO_DISCARDS: readonly string[] = [...KNOWN].map((k) => k.toLowerCase());

/**
 * The discarded keywords as Postfix's log line lists them (its table's order).
 * @param discard the set
 * @returns e.g. "ETRN VRFY DSN"
 */
export function describeDiscards(discard: ReadonlySet<string>): string {
  return [...KNOWN].filter((k) => discard.has(k)).join(" ");
}

/**
 * The names in a smtpd_discard_ehlo_keywords value that are no keyword
 * (ignored, as Postfix ignores them; the start warns: a typo there leaves
 * the keyword offered).
 * @param words the list
 * @returns the unknown names, as written
 */
export function unknownEhloDiscards(words: readonly string[]): string[] {
  return words.flatMap((x) => x.split(/[\s,]+/))
    .filter((w) => w !== "" && !KNOWN.has(w.toUpperCase()));
}

/**
 * The set of keywords a smtpd_discard_ehlo_keywords value names.
 * @param words the list (names in any case, separated by spaces or commas)
 * @returns the known names, upper case
 */
export function ehloDiscards(words: readonly string[]): ReadonlySet<string> {
  const out = new Set<string>();
  for (const w of words.flatMap((x) => x.split(/[\s,]+/))) {
    const name = w.toUpperCase();
    if (KNOWN.has(name)) out.add(name);
  }
  return out;
}
