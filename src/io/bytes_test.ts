import assert from "node:assert/strict";
import { concatBytes } from "./bytes.ts";

Deno.test("concatBytes joins pieces in order", () => {
  const a = new Uint8Array([1, 2]);
  const b = new Uint8Array([]);
  const c = new Uint8Array([3]);
  assert.deepEqual([...concatBytes([a, b, c])], [1, 2, 3]);
  assert.equal(concatBytes([]).length, 0);
});

Deno.test("concatBytes returns a lone piece itself, not a copy", () => {
  const a = new Uint8Array([7, 8]);
  assert.equal(concatBytes([a]), a);
});
