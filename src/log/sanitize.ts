/**
 * The one sanitizer every log line passes before any sink (stderr,
 * syslog): as Postfix's printable(), whatever cannot be shown safely on
 * one log line becomes "?". That is C0 controls (CR, LF, ESC, TAB ...),
 * DEL, C1 controls (U+0080-U+009F, NEL U+0085 among them), the bidi
 * controls that reorder what a reader sees (U+061C, U+200E/F,
 * U+202A-U+202E, U+2066-U+2069), the line and paragraph separators
 * (U+2028/9), and invalid UTF-16 (lone surrogates). A client can then
 * neither start a new log line nor make one read differently from what
 * it holds.
 *
 * @module
 */

// One pass: the unsafe code points, a high surrogate not followed by a low
// one, a low surrogate not preceded by a high one.
const UNSAFE =
  // deno-lint-ignore no-control-regex
  /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * Replaces every character that is unsafe in a log line with "?".
 * @param text the text of one log line (without its newline)
 * @returns the text, unchanged when it was already safe
 */
export function sanitizeLogText(text: string): string {
  UNSAFE.lastIndex = 0;
  return UNSAFE.test(text) ? text.replace(UNSAFE, "?") : text;
}
