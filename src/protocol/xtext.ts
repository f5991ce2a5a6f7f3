/**
 * xtext (RFC 3461 §4): the encoding of the DSN parameters ENVID and ORCPT.
 * "+" and two hexadecimal digits stand for one byte; other printable ASCII
 * characters stand for themselves, and so (as in Postfix) do non-ASCII ones. Decoding is as lenient as Postfix's
 * xtext_unquote (either case of hex digit) but refuses what could harm a
 * log line or a queue record: a decoded control character or NUL. The
 * "utf-8" address type of ORCPT (RFC 6533 §3) uses unitext instead, where
 * `\x{HEX}` stands for one Unicode code point.
 *
 * With smtputf8_enable off an ORCPT may also hold bytes that are not UTF-8,
 * as sent or as "+HH" (Postfix keeps them as they are): they are decoded to
 * the `rawByteChar` that stands for each and written back as the byte.
 *
 * @module
 */

import { decodeWireBytes, isRawByteChar } from "../io/wire_text.ts";

const encoder = new TextEncoder();
// ignoreBOM: a leading U+FEFF is a character of the text, not a mark to
// drop (a decoder that drops it takes "ENVID=+EF+BB+BFabc" for "abc").
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const HEX = /^[0-9A-Fa-f]{2}$/;
const PLAIN_XTEXT = /^[\x21-\x2a\x2c-\x7e]*$/;

/**
 * Decodes xtext.
 * @param text the encoded text (printable ASCII; as in Postfix's
 *   xtext_unquote, a non-ASCII character stands for itself: Exim sends an
 *   SMTPUTF8 recipient's ORCPT as `rfc822;` and the address in UTF-8)
 * @param eightBit whether bytes that are not UTF-8 are taken (smtputf8_enable off)
 * @returns the decoded text, or undefined when malformed or when it decodes to a control character
 */
export function decodeXtext(text: string, eightBit = false): string | undefined {
  // Printable ASCII without "+" stands for itself (the common case, and an
  // ORCPT of 500 characters would otherwise go through a byte array).
  if (PLAIN_XTEXT.test(text)) return text;
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 32 || c === 127) return undefined;
    if (c === 0x2b) { // "+"
      const hex = text.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c < 127) {
      bytes.push(c);
    } else {
      // One code point (a surrogate pair is two UTF-16 units); a lone
      // surrogate is no character.
      const ch = String.fromCodePoint(text.codePointAt(i) as number);
      if (eightBit && isRawByteChar(ch)) {
        bytes.push(ch.charCodeAt(0) & 0xff);
        continue;
      }
      if (/\p{Cs}/u.test(ch)) return undefined;
      bytes.push(...encoder.encode(ch));
      i += ch.length - 1;
    }
  }
  let decoded: string;
  try {
    decoded = strictUtf8.decode(new Uint8Array(bytes));
  } catch {
    if (!eightBit) return undefined;
    decoded = decodeWireBytes(new Uint8Array(bytes));
  }
  return hasControl(decoded) ? undefined : decoded;
}

/**
 * Decodes the unitext of an ORCPT of type "utf-8" (RFC 6533 §3): UTF-8
 * text in which `\x{HEX}` is one code point. As Postfix's uxtext_unquote,
 * `\x{` must go on with hex digits (any number, leading zeros too) and `}`,
 * and any other backslash stands for itself.
 * @param text the encoded text
 * @returns the decoded text, or undefined when malformed
 */
export function decodeUtf8AddrXtext(text: string): string | undefined {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (ch === "\\" && text.startsWith("x{", i + 1)) {
      const m = /^\\x\{([0-9A-Fa-f]*)\}/.exec(text.slice(i));
      if (!m) return undefined;
      const digits = (m[1] as string).replace(/^0+/, "");
      // No digits is U+0000, refused below with the other controls.
      const cp = digits.length > 6 ? Infinity : digits === "" ? 0 : parseInt(digits, 16);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return undefined;
      out += String.fromCodePoint(cp);
      i += m[0].length - 1;
    } else {
      out += ch;
    }
  }
  // A space is taken: RFC 6533's HEXPOINT lists "20" (a quoted local part
  // may hold one), and Postfix's smtp client sends it so.
  return hasControl(out) ? undefined : out;
}

/**
 * Encodes text as xtext: bytes outside "!".."~", and "+" and "=", become "+HH".
 * @param text the text
 * @returns the xtext
 */
export function encodeXtext(text: string): string {
  let out = "";
  for (const b of encoder.encode(text)) {
    out += b > 32 && b < 127 && b !== 0x2b && b !== 0x3d
      ? String.fromCharCode(b)
      : `+${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** C0 and C1 controls and DEL. */
function hasControl(s: string): boolean {
  // deno-lint-ignore no-control-regex
  return /[\x00-\x1f\x7f-\x9f]/.test(s);
}
