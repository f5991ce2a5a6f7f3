/**
 * Recognizes header lines (RFC 5322 §2.2) and the fields cleanup cares
 * about, working on raw bytes in place (`buf[start, end)`), so 8-bit
 * headers pass unchanged and no view or string is made per line.
 *
 * @module
 */

/** What the header block contained. */
export interface HeaderFacts {
  received: number;
  messageId: string | undefined;
  hasDate: boolean;
  hasFrom: boolean;
  /**
   * A Resent- field of Postfix's header_opts.c was seen (Resent-Bcc, -Cc,
   * -Date, -From, -Message-Id, -Reply-To, -Sender, -To): cleanup then adds
   * Resent-Message-Id:, Resent-Date: and Resent-From: when missing.
   */
  resent: boolean;
  hasResentMessageId: boolean;
  hasResentDate: boolean;
  hasResentFrom: boolean;
}

/** The Resent- fields that make a message resent (header_opts.c, HDR_OPT_RR). */
export const RESENT_FIELDS: readonly string[] = [
  "resent-bcc",
  "resent-cc",
  "resent-date",
  "resent-from",
  "resent-message-id",
  "resent-reply-to",
  "resent-sender",
  "resent-to",
];

/**
 * The fields Postfix's cleanup removes from a message's header block
 * (message_drop_headers, default "bcc, content-length, resent-bcc,
 * return-path"; not a parameter here), so a Bcc: never reaches the
 * recipients. Lower case.
 */
export const DROPPED_FIELDS: readonly string[] = [
  "bcc",
  "content-length",
  "resent-bcc",
  "return-path",
];

const COLON = 58;
const SP = 32;
const HTAB = 9;

/**
 * Where a header line's field name ends, as Postfix's is_header_buf(): a
 * name of printable ASCII except ":", then optional SP/HTAB (RFC 822's
 * obsolete "Subject : x" form, RFC 5322 §4.5), then ":".
 * @param buf the bytes holding the line
 * @param start where the line begins
 * @param end where it ends
 * @returns the index just past the name, or -1 when the line starts no field
 */
export function headerNameEnd(buf: Uint8Array, start: number, end: number): number {
  let name = -1;
  for (let i = start; i < end; i++) {
    const c = buf[i] as number;
    if (c === COLON) return i > start ? (name < 0 ? i : name) : -1;
    if (c === SP || c === HTAB) {
      if (i === start) return -1;
      if (name < 0) name = i;
      continue;
    }
    if (c < 33 || c > 126 || name >= 0) return -1;
  }
  return -1;
}

/**
 * Whether a line starts a header field: a name of printable ASCII except
 * ":", optional SP/HTAB, then ":" (see {@linkcode headerNameEnd}).
 * @param buf the bytes holding the line
 * @param start where the line begins
 * @param end where it ends
 * @returns true for "Name:" (and "Name :") lines
 */
export function isHeaderStart(buf: Uint8Array, start: number, end: number): boolean {
  return headerNameEnd(buf, start, end) >= 0;
}

/**
 * Whether a line continues the previous header (starts with SP or HTAB).
 * @param buf the bytes holding the line
 * @param start where the line begins
 * @param end where it ends
 * @returns true for folded continuation lines
 */
export function isContinuation(buf: Uint8Array, start: number, end: number): boolean {
  return end > start && (buf[start] === 32 || buf[start] === 9);
}

/**
 * Whether a header line's field name is `name`, in any case.
 * @param buf the bytes holding the line (one for which {@linkcode isHeaderStart} holds)
 * @param start where the line begins
 * @param end where it ends
 * @param name the lower-case field name
 * @returns true when the line is "name:..."
 */
export function isField(buf: Uint8Array, start: number, end: number, name: string): boolean {
  const n = name.length;
  if (end - start <= n || buf[start + n] !== COLON) return false;
  for (let i = 0; i < n; i++) {
    if (((buf[start + i] as number) | 0x20) !== name.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * Text made safe inside a header comment, as Postfix's comment_sanitize():
 * parentheses, backslashes and control characters become "?".
 * @param text the text (a SASL user name)
 * @returns the safe text
 */
export function commentSafe(text: string): string {
  let out = "";
  for (const ch of text) {
    const c = ch.codePointAt(0) as number;
    out += c < 0x20 || c === 0x7f || ch === "(" || ch === ")" || ch === "\\" ? "?" : ch;
  }
  return out;
}
