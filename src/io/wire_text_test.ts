import assert from "node:assert/strict";
import { encodeWireText, isRawByteChar, rawByteChar } from "./wire_text.ts";

Deno.test("encodeWireText: a raw-byte character goes out as its byte, the rest as UTF-8", () => {
  const text = `j${rawByteChar(0xf6)}\u00f6${rawByteChar(0xff)}@x`;
  assert.deepEqual(
    [...encodeWireText(text)],
    [0x6a, 0xf6, 0xc3, 0xb6, 0xff, 0x40, 0x78],
  );
  assert.deepEqual([...encodeWireText("a\u00e9")], [0x61, 0xc3, 0xa9]);
  assert.deepEqual([...encodeWireText(rawByteChar(0x80))], [0x80]);
});

Deno.test("encodeWireText: a surrogate pair and other lone surrogates are not raw bytes", () => {
  // U+1F600 is \ud83d\ude00: its low half is no raw byte.
  assert.deepEqual([...encodeWireText("\u{1f600}")], [0xf0, 0x9f, 0x98, 0x80]);
  // A lone surrogate outside U+DC80-U+DCFF is what TextEncoder makes of it.
  assert.deepEqual([...encodeWireText("\ud800")], [0xef, 0xbf, 0xbd]);
  assert.deepEqual([...encodeWireText("\udc7f")], [0xef, 0xbf, 0xbd]);
  // A high surrogate before a raw byte makes no pair with it in our text:
  // \ud83d\udcff would be one code point (U+1F4FF), not a raw byte.
  assert.deepEqual([...encodeWireText("\ud83d\udcff")], [0xf0, 0x9f, 0x93, 0xbf]);
});

Deno.test("isRawByteChar", () => {
  assert.equal(isRawByteChar(rawByteChar(0xfe)), true);
  assert.equal(isRawByteChar("\ufffd"), false);
  assert.equal(isRawByteChar("\udc7f"), false);
  assert.equal(isRawByteChar("a"), false);
});
