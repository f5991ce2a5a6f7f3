/**
 * Byte helpers and byte-level mutations shared by every target: insert,
 * delete, flip, overwrite with "interesting" bytes (NUL, CR, LF, ".",
 * 8-bit), bare CR/LF, CRLF-dot-CRLF, long runs, invalid UTF-8, and dots at
 * line starts.
 *
 * @module
 */

import type { Rng } from "./prng.ts";

const enc = new TextEncoder();

/**
 * Encodes text as UTF-8.
 * @param s the text
 * @returns the bytes
 */
export function utf8(s: string): Uint8Array {
  return enc.encode(s);
}

/**
 * Concatenates byte arrays.
 * @param parts the pieces
 * @returns one array
 */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Whether two byte arrays are equal.
 * @param a one
 * @param b the other
 * @returns true when equal
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Lower-case hex of bytes.
 * @param bytes the input
 * @returns the hex text
 */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += (bytes[i] as number).toString(16).padStart(2, "0");
  return s;
}

/**
 * Parses hex, ignoring white space and `#` comment lines.
 * @param text the hex text
 * @returns the bytes
 * @throws {Error} for an odd digit count or a non-hex character
 */
export function fromHex(text: string): Uint8Array {
  const digits = text.split("\n").filter((l) => !/^\s*#/.test(l)).join("").replace(/\s+/g, "");
  if (digits.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(digits)) {
    throw new Error("malformed hex");
  }
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * A short, printable preview of bytes for failure messages (JSON-escaped,
 * cut in the middle when long).
 * @param bytes the input
 * @param max the longest preview
 * @returns the preview
 */
export function preview(bytes: Uint8Array, max = 160): string {
  const s = JSON.stringify(new TextDecoder("latin1").decode(bytes));
  if (s.length <= max) return s;
  return `${s.slice(0, max / 2)}…(${bytes.length} bytes)…${s.slice(-max / 2)}`;
}

/** Bytes that tend to break parsers of line-based text protocols. */
export const INTERESTING = [
  0x00,
  0x09,
  0x0a,
  0x0d,
  0x20,
  0x22, // "
  0x23, // #
  0x24, // $
  0x2c, // ,
  0x2e, // .
  0x2f, // /
  0x3a, // :
  0x3c, // <
  0x3d, // =
  0x3e, // >
  0x40, // @
  0x45, // E (queue end record)
  0x5b, // [
  0x5c, // \
  0x5d, // ]
  0x7b, // {
  0x7d, // }
  0x7f,
  0x80,
  0xc0,
  0xc3,
  0xe2,
  0xed,
  0xf0,
  0xff,
] as const;

/** Short byte strings spliced in by the mutator. */
const TOKENS: readonly Uint8Array[] = [
  "\r\n",
  "\n",
  "\r",
  "\r\n.\r\n",
  "\n.\n",
  "\r\n.\n",
  "\n.\r\n",
  ".\r\n",
  "\r\n..\r\n",
  "\r.\r",
  ".",
  "..",
  "\0",
  "\t",
  " ",
  "<>",
  "<",
  ">",
  "@",
  "\\",
  '"',
  ":",
  "=",
  "#",
  "[",
  "]",
  "{",
  "}",
  "$",
  "${",
  "/",
  "::",
  "\u00e9",
  "\u{1F4E7}",
].map(utf8).concat([
  Uint8Array.of(0xc3), // truncated UTF-8
  Uint8Array.of(0xed, 0xa0, 0x80), // surrogate, invalid in UTF-8
  Uint8Array.of(0xc0, 0xae), // overlong "."
  Uint8Array.of(0xff, 0xfe),
  Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x01), // long varint
]);

/**
 * A run of one byte (or a short pattern), usually a few hundred bytes,
 * sometimes past 64 KiB.
 * @param rng the generator
 * @param giant the probability of a run past 64 KiB
 * @returns the run
 */
export function longRun(rng: Rng, giant = 0.02): Uint8Array {
  const n = rng.chance(giant) ? rng.range(60_000, 140_000) : rng.pick([
    rng.range(70, 90),
    rng.range(500, 520),
    rng.range(990, 1010),
    rng.range(2040, 2056),
    rng.range(4090, 4100),
    rng.range(1, 5000),
  ]);
  const pattern = rng.chance(0.7)
    ? Uint8Array.of(rng.pick([0x61, 0x2e, 0x20, 0x0d, 0x00, 0xff, rng.int(256)]))
    : rng.bytes(rng.range(2, 5));
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = pattern[i % pattern.length] as number;
  return out;
}

/**
 * Applies one random mutation.
 * @param rng the generator
 * @param input the bytes (not modified)
 * @returns the mutated copy
 */
export function mutateOnce(rng: Rng, input: Uint8Array): Uint8Array {
  const n = input.length;
  const at = rng.int(n + 1);
  const insert = (b: Uint8Array): Uint8Array =>
    concat([input.subarray(0, at), b, input.subarray(at)]);
  switch (rng.int(14)) {
    case 0: // random byte
      return insert(Uint8Array.of(rng.int(256)));
    case 1: // interesting byte
      return insert(Uint8Array.of(rng.pick(INTERESTING)));
    case 2: // token (CR, LF, CRLF.CRLF, NUL, quotes, ...)
      return insert(rng.pick(TOKENS));
    case 3: { // delete a range
      if (n === 0) return insert(rng.pick(TOKENS));
      const len = Math.min(n - Math.min(at, n - 1), rng.size(64) + 1);
      const from = Math.min(at, n - 1);
      return concat([input.subarray(0, from), input.subarray(from + len)]);
    }
    case 4: { // flip a bit
      if (n === 0) return insert(Uint8Array.of(rng.int(256)));
      const out = input.slice();
      const i = rng.int(n);
      out[i] = (out[i] as number) ^ (1 << rng.int(8));
      return out;
    }
    case 5: { // overwrite with an interesting byte
      if (n === 0) return insert(Uint8Array.of(rng.pick(INTERESTING)));
      const out = input.slice();
      out[rng.int(n)] = rng.pick(INTERESTING);
      return out;
    }
    case 6: // long run
      return insert(longRun(rng));
    case 7: { // 8-bit bytes
      return insert(rng.bytes(rng.range(1, 8)).map((b) => b | 0x80));
    }
    case 8: { // duplicate a slice
      const from = rng.int(n + 1);
      const len = rng.size(n - from);
      return insert(input.slice(from, from + len));
    }
    case 9: { // truncate
      return input.slice(0, rng.int(n + 1));
    }
    case 10: { // a dot at the start of some line
      const lineStarts = [0];
      for (let i = 0; i < n; i++) if (input[i] === 0x0a) lineStarts.push(i + 1);
      const s = rng.pick(lineStarts);
      return concat([
        input.subarray(0, s),
        utf8(rng.pick([".", "..", ".\r\n", ".\n"])),
        input.subarray(s),
      ]);
    }
    case 11: { // turn a CRLF into a bare CR or bare LF, or a bare one into CRLF
      const out: number[] = [];
      const p = rng.chance(0.5) ? 0.3 : 0.05;
      for (let i = 0; i < n; i++) {
        const c = input[i] as number;
        if (c === 0x0d && input[i + 1] === 0x0a && rng.chance(p)) {
          out.push(rng.chance(0.5) ? 0x0d : 0x0a);
          i++;
        } else if ((c === 0x0a || c === 0x0d) && rng.chance(p)) {
          out.push(0x0d, 0x0a);
        } else {
          out.push(c);
        }
      }
      return Uint8Array.from(out);
    }
    case 12: { // random bytes
      return insert(rng.bytes(rng.size(64) + 1));
    }
    default: { // swap two slices
      if (n < 4) return insert(rng.pick(TOKENS));
      const a = rng.int(n - 1);
      const b = rng.range(a + 1, n);
      const c = rng.range(b, n);
      return concat([
        input.subarray(0, a),
        input.subarray(b, c),
        input.subarray(a, b),
        input.subarray(c),
      ]);
    }
  }
}

/**
 * Applies a few random mutations (one to eight, skewed low).
 * @param rng the generator
 * @param input the bytes (not modified)
 * @param max the most mutations
 * @returns the mutated copy
 */
export function mutate(rng: Rng, input: Uint8Array, max = 8): Uint8Array {
  let out = input;
  const k = 1 + rng.int(rng.chance(0.7) ? 2 : max);
  for (let i = 0; i < k; i++) out = mutateOnce(rng, out);
  return out;
}
