import assert from "node:assert/strict";
import { FreeSpace } from "./free_space.ts";

Deno.test("FreeSpace measures a real directory and a reader sees the same figure", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const main = await FreeSpace.measuring(dir);
    const free = main.bytes();
    assert.ok(free !== undefined && free > 0, `free bytes: ${free}`);
    const reader = FreeSpace.reading(main.shared);
    assert.equal(reader.bytes(), free);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("FreeSpace is unknown for a missing directory, and readers see nothing before a measure", async () => {
  const main = await FreeSpace.measuring("/nonexistent/queue/dir");
  const reader = FreeSpace.reading(main.shared);
  assert.equal(reader.bytes(), undefined);
  assert.equal(main.bytes(), undefined);
  assert.equal(reader.bytes(), undefined);
});
