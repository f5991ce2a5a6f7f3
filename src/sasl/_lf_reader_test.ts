import assert from "node:assert/strict";
import { LfLineReader, LineTooLongError } from "./_lf_reader.ts";

/** A source that hands out the given chunks, then the end. */
function source(chunks: string[]) {
  const enc = new TextEncoder();
  let reads = 0;
  return {
    get reads() {
      return reads;
    },
    read(p: Uint8Array): Promise<number | null> {
      reads++;
      const next = chunks.shift();
      if (next === undefined) return Promise.resolve(null);
      const bytes = enc.encode(next);
      const n = Math.min(bytes.length, p.length);
      p.set(bytes.subarray(0, n));
      if (n < bytes.length) chunks.unshift(new TextDecoder().decode(bytes.subarray(n)));
      return Promise.resolve(n);
    },
  };
}

Deno.test("LfLineReader reads lines split across chunks, CRLF or LF", async () => {
  const r = new LfLineReader(source(["VER", "SION\t1\r\nMECH\tPLAIN\n", "\nDONE\npartial"]), 64);
  assert.equal(await r.readLine(), "VERSION\t1");
  assert.equal(await r.readLine(), "MECH\tPLAIN");
  assert.equal(await r.readLine(), "");
  assert.equal(await r.readLine(), "DONE");
  assert.equal(await r.readLine(), null);
});

Deno.test("LfLineReader takes a line of exactly the bound, refuses one byte more", async () => {
  const ok = new LfLineReader(source(["a".repeat(16) + "\n" + "b".repeat(16) + "\n"]), 16);
  assert.equal(await ok.readLine(), "a".repeat(16));
  assert.equal(await ok.readLine(), "b".repeat(16));
  const src = source(Array.from({ length: 1000 }, () => "c".repeat(10)));
  const bad = new LfLineReader(src, 16);
  await assert.rejects(() => bad.readLine(), LineTooLongError);
  assert.ok(src.reads <= 3, `stopped reading after ${src.reads} reads`);
});
