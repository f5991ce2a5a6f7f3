import assert from "node:assert/strict";
import { IoBuffers } from "./io_buffers.ts";

Deno.test("IoBuffers: a buffer given back is taken again, by size", () => {
  const b = new IoBuffers();
  const four = b.take(4096);
  const eight = b.take(8192);
  b.giveBack(four);
  b.giveBack(eight);
  assert.equal(b.take(8192), eight);
  assert.equal(b.take(4096), four);
  assert.notEqual(b.take(4096), four, "taken once only");
});

Deno.test("IoBuffers: odd sizes and sizes out of range are not kept", () => {
  const b = new IoBuffers();
  for (const size of [1000, 2048, 6000, 131072]) {
    const buf = new Uint8Array(size);
    b.giveBack(buf);
    assert.notEqual(b.take(size), buf, `size ${size}`);
  }
});

Deno.test("IoBuffers: each size keeps at most 512 KiB", () => {
  const b = new IoBuffers();
  const given = Array.from({ length: 10 }, () => new Uint8Array(65536));
  for (const buf of given) b.giveBack(buf);
  const kept = new Set<Uint8Array>(given);
  let reused = 0;
  for (let i = 0; i < 10; i++) if (kept.has(b.take(65536))) reused++;
  assert.equal(reused, 8);
});

Deno.test("IoBuffers: two sets share nothing (one per thread's runtime)", () => {
  const a = new IoBuffers();
  const b = new IoBuffers();
  const buf = a.take(4096);
  a.giveBack(buf);
  assert.notEqual(b.take(4096), buf);
  assert.notEqual(a.runLens, b.runLens);
  assert.equal(a.runLens, a.runLens, "one scratch array per set");
  assert.equal(a.runLens.length, 16384);
});
