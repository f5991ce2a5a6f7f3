/**
 * Unicode case folding as Postfix's casefold() does it with
 * smtputf8_enable (ICU's full default folding, Unicode 15 in Debian's ICU
 * 72): the form in which Postfix compares domain list entries and looks up
 * table keys. JavaScript has no case folding, so it is built from lower and
 * upper case: lower, upper, then lower case again ("ß" and "ẞ" become
 * "ss", "ſ" "s", "ǅ" "ǆ"), except the dotless "ı", which folding keeps
 * apart from "i"; then the two places where folding picks another member
 * of the class than lower case: the final sigma "ς" is "σ", and Cherokee
 * folds to its capital letters. For every assigned code point the result
 * was compared with Python's str.casefold() (the same folding) and found
 * identical.
 *
 * @module
 */

/** Cherokee small letters (U+AB70..U+ABBF, U+13F8..U+13FD) fold to the capitals. */
const CHEROKEE_SMALL = /[\uab70-\uabbf\u13f8-\u13fd]/g;

/**
 * Folds the case of a text for a caseless comparison.
 * @param text the text
 * @returns the folded text (a comparison key, not a text to show)
 */
export function foldCase(text: string): string {
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(text)) return text.toLowerCase();
  return text.toLowerCase().split("\u0131")
    .map((part) => part.toUpperCase().toLowerCase())
    .join("\u0131")
    .replaceAll("\u03c2", "\u03c3")
    .replace(CHEROKEE_SMALL, (c) => {
      const code = c.charCodeAt(0);
      return String.fromCharCode(code >= 0xab70 ? code - 0xab70 + 0x13a0 : code - 8);
    });
}
