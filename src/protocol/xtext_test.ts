import assert from "node:assert/strict";
import { rawByteChar } from "../io/wire_text.ts";
import { decodeUtf8AddrXtext, decodeXtext, encodeXtext } from "./xtext.ts";

const CASES: [string, string | undefined][] = [
  ["abc", "abc"],
  ["a+2Bb", "a+b"],
  ["a+2bb", "a+b"],
  ["+3D", "="],
  ["+20x", " x"],
  ["+C3+A9", "\u00e9"],
  ["+", undefined],
  ["+2", undefined],
  ["+G0", undefined],
  ["a b", undefined],
  ["+00", undefined],
  ["+0A", undefined],
  ["+7F", undefined],
  ["+C2+85", undefined], // U+0085, a C1 control
  ["+C3", undefined], // not UTF-8
  // Non-ASCII stands for itself, as in Postfix's xtext_unquote (Exim sends
  // an SMTPUTF8 recipient's ORCPT as rfc822; and the address in UTF-8).
  ["\u00e9", "\u00e9"],
  ["j\u00f6rg@b.example", "j\u00f6rg@b.example"],
  ["\u{1F600}+2B", "\u{1F600}+"],
  ["\u0085", undefined], // a C1 control
  ["a\ud800", undefined], // a lone surrogate
  ["a\u00a0b", "a\u00a0b"],
  // A byte order mark is a character like another, at the start too: a
  // UTF-8 decoder that drops a leading one would change the address.
  ["\ufeffa@x", "\ufeffa@x"],
  ["+EF+BB+BFa@x", "\ufeffa@x"],
  ["+EF+BB+BF", "\ufeff"],
];

for (const [text, expected] of CASES) {
  Deno.test(`decodeXtext() decodes ${JSON.stringify(text)} to ${JSON.stringify(expected)}`, () => {
    assert.equal(decodeXtext(text), expected);
  });
}

Deno.test("encodeXtext() and decodeXtext() are inverses", () => {
  for (const s of ["a+b=c", "\u00e9l\u00e8ve@example", "x y", "plain@example.com"]) {
    const coded = encodeXtext(s);
    assert.match(coded, /^[!-*,-<>-~]*(\+[0-9A-F]{2}[!-*,-<>-~]*)*$/);
    assert.equal(decodeXtext(coded), s);
  }
});

Deno.test("decodeUtf8AddrXtext() decodes \\x{HEX} and keeps UTF-8", () => {
  assert.equal(decodeUtf8AddrXtext("\\x{E9}t\u00e9@x"), "\u00e9t\u00e9@x");
  assert.equal(decodeUtf8AddrXtext("\\x{1F600}@x"), "\u{1F600}@x");
  assert.equal(decodeUtf8AddrXtext("a\\x{}@x"), undefined);
  assert.equal(decodeUtf8AddrXtext("a\\x{110000}@x"), undefined);
  assert.equal(decodeUtf8AddrXtext("a\\x{9}@x"), undefined);
  // As Postfix's uxtext_unquote: a backslash that starts no \x{ stands for
  // itself, and any number of hex digits may follow \x{; a \x{ left open is malformed.
  assert.equal(decodeUtf8AddrXtext("a\\n@x"), "a\\n@x");
  assert.equal(decodeUtf8AddrXtext("a\\\\x{41}b\\"), "a\\Ab\\");
  assert.equal(decodeUtf8AddrXtext("\\x{00000E9}@x"), "\u00e9@x");
  assert.equal(decodeUtf8AddrXtext("a\\x{41@x"), undefined);
  assert.equal(decodeUtf8AddrXtext("a\\x{4G}@x"), undefined);
  assert.equal(decodeUtf8AddrXtext("a\\x{D800}@x"), undefined);
  // RFC 6533's HEXPOINT lists "20": a space in a quoted local part, as
  // Postfix's smtp client sends it.
  assert.equal(decodeUtf8AddrXtext('"a\\x{20}b"@x'), '"a b"@x');
});

Deno.test("decodeXtext() gives printable ASCII without + back as it is, and refuses the rest as before", () => {
  for (let c = 0; c < 256; c++) {
    const text = `a${String.fromCharCode(c)}b`;
    const got = decodeXtext(text);
    // A C1 control is no character of an address; the rest of Latin-1 stands for itself.
    const refused = c <= 32 || c === 127 || c === 0x2b || (c >= 0x80 && c < 0xa0);
    assert.equal(got, refused ? undefined : text, `code ${c}`);
  }
  assert.equal(decodeXtext("a+2Bb"), "a+b");
  assert.equal(decodeXtext(""), "");
});

Deno.test("decodeXtext() with eightBit (smtputf8_enable off) keeps bytes that are not UTF-8", () => {
  const raw = rawByteChar(0xf6);
  assert.equal(decodeXtext(`k${raw}@x`), undefined);
  assert.equal(decodeXtext("k+F6@x"), undefined);
  assert.equal(decodeXtext(`k${raw}@x`, true), `k${raw}@x`);
  assert.equal(decodeXtext("k+F6+C3+B6@x", true), `k${raw}\u00f6@x`);
  // Controls stay refused.
  assert.equal(decodeXtext("a+00b", true), undefined);
  assert.equal(decodeXtext("a+0D+0Ab", true), undefined);
});
