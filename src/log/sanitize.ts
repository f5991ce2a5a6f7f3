/**
 * The one sanitizer every log line passes before any sink (stderr,
 * syslog): as Postfix's printable(), whatever cannot be shown safely on
 * one log line becomes "?". That is C0 controls (CR, LF, ESC, TAB ...),
 * DEL, C1 controls (U+0080-U+009F, NEL U+0085 among them), the format
 * characters (Unicode's Cf: the bidi controls that reorder what a reader
 * sees, U+061C, U+200E/F, U+202A-U+202E, U+2066-U+2069, and the invisible
 * ones, zero-width space and joiners, U+2060, the byte order mark U+FEFF,
 * the soft hyphen, tag characters), the other default-ignorable characters
 * (variation selectors, Hangul fillers: shown as nothing), the line and
 * paragraph separators (U+2028/9), noncharacters (U+FFFE, U+FFFF, ...) and
 * invalid UTF-16 (lone surrogates). A client can then neither start a new
 * log line nor make one read differently from what it holds: `a\u200bdmin`
 * is logged `a?dmin`, not as what looks like `admin`. (Postfix's
 * printable() keeps every valid UTF-8 character, C1 controls included.)
 *
 * With smtputf8_enable off Postfix's printable() keeps printable ASCII
 * only: {@linkcode asciiLogText} is that rule, for every log line and the
 * HELO name kept.
 *
 * @module
 */

import { isRawByteChar } from "../io/wire_text.ts";

// One pass, by Unicode property: controls (C0, DEL, C1), format characters,
// line and paragraph separators, surrogates (with the u flag only a lone
// one is a code point of its own), default-ignorables, noncharacters.
const UNSAFE =
  /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]/gu;

/**
 * Replaces every character that is unsafe in a log line with "?".
 * @param text the text of one log line (without its newline)
 * @returns the text, unchanged when it was already safe
 */
export function sanitizeLogText(text: string): string {
  UNSAFE.lastIndex = 0;
  return UNSAFE.test(text) ? text.replace(UNSAFE, "?") : text;
}

const NOT_PRINTABLE_ASCII = /[^\x20-\x7e]/gu;
const encoder = new TextEncoder();

/**
 * Postfix's printable() with smtputf8_enable off: each byte outside
 * printable ASCII becomes "?", so a character of n UTF-8 bytes becomes n
 * of them. A command byte that is not part of a UTF-8 character was read
 * as one character that stands for it (`rawByteChar`, a lone surrogate):
 * that is one "?", as the one byte in Postfix's log.
 * @param text the text of one log line, or a HELO name
 * @returns the text in printable ASCII
 */
export function asciiLogText(text: string): string {
  NOT_PRINTABLE_ASCII.lastIndex = 0;
  if (!NOT_PRINTABLE_ASCII.test(text)) return text;
  return text.replace(
    NOT_PRINTABLE_ASCII,
    (ch) => isRawByteChar(ch) ? "?" : "?".repeat(encoder.encode(ch).length),
  );
}
