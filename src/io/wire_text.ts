/**
 * Text that may stand for bytes that are not UTF-8. With smtputf8_enable
 * off, Postfix reads a command line as bytes and passes each 8-bit byte on
 * as it came: into a reply that echoes the client's text (`555 5.5.4
 * Unsupported option: FOO=<FF>`), into the queue file (an 8-bit local part,
 * an ORCPT). Here such a byte, where it is not part of a UTF-8 character,
 * is read as U+DC00 plus the byte: a lone low surrogate, which no UTF-8 text
 * decodes to, so it cannot be confused with a character the client sent.
 * {@linkcode encodeWireText} writes it back as the byte; every other
 * character goes out as UTF-8. The log sanitizers show it as one "?"
 * (a lone surrogate is invalid UTF-16), never as the byte.
 *
 * @module
 */

import { concatBytes } from "./bytes.ts";

const encoder = new TextEncoder();
// ignoreBOM: a leading U+FEFF is a character of the text.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

// With the u flag a surrogate pair is one code point: only a lone low
// surrogate matches.
const RAW_BYTE = /[\udc80-\udcff]/u;
const RAW_BYTES = /[\udc80-\udcff]/gu;

/**
 * The character a byte that is not part of a UTF-8 character is read as.
 * @param byte the byte, 0x80-0xff
 * @returns one lone low surrogate, U+DC80-U+DCFF
 */
export function rawByteChar(byte: number): string {
  return String.fromCharCode(0xdc00 | (byte & 0xff));
}

/**
 * Whether a character is one that {@linkcode rawByteChar} made.
 * @param ch one character (code point)
 * @returns true for a lone U+DC80-U+DCFF
 */
export function isRawByteChar(ch: string): boolean {
  return ch.length === 1 && RAW_BYTE.test(ch);
}

/**
 * Text as the bytes it stands for: UTF-8, and each character made by
 * {@linkcode rawByteChar} as its byte again.
 * @param text the text
 * @returns its bytes
 */
export function encodeWireText(text: string): Uint8Array {
  if (!RAW_BYTE.test(text)) return encoder.encode(text);
  const pieces: Uint8Array[] = [];
  let from = 0;
  for (const m of text.matchAll(RAW_BYTES)) {
    if (m.index > from) pieces.push(encoder.encode(text.slice(from, m.index)));
    pieces.push(Uint8Array.of(m[0].charCodeAt(0) & 0xff));
    from = m.index + 1;
  }
  if (from < text.length) pieces.push(encoder.encode(text.slice(from)));
  return concatBytes(pieces);
}

/**
 * Bytes read as UTF-8 where they are, and each other byte as the
 * {@linkcode rawByteChar} that stands for it (not TextDecoder's
 * replacement, which loses the byte and takes a cut-off sequence as one:
 * "\xe2\x82" would be one U+FFFD where Postfix sees two bytes).
 * @param line the bytes
 * @returns the text
 */
export function decodeWireBytes(line: Uint8Array): string {
  let out = "";
  let i = 0;
  while (i < line.length) {
    const b = line[i] as number;
    const size = b < 0x80
      ? 1
      : b >= 0xc2 && b <= 0xdf
      ? 2
      : b >= 0xe0 && b <= 0xef
      ? 3
      : b >= 0xf0 && b <= 0xf4
      ? 4
      : 0;
    if (size === 1) {
      out += String.fromCharCode(b);
      i++;
      continue;
    }
    if (size > 0 && i + size <= line.length) {
      try {
        out += utf8.decode(line.subarray(i, i + size));
        i += size;
        continue;
      } catch {
        // not a whole character: this byte alone
      }
    }
    out += rawByteChar(b);
    i++;
  }
  return out;
}
