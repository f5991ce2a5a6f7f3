import assert from "node:assert/strict";
import { automaticBudget, MemoryBudget } from "./memory_budget.ts";

Deno.test("MemoryHold reserves up to the limit, trims and releases", () => {
  const budget = MemoryBudget.create(100 * 1024);
  const a = budget.hold();
  const b = budget.hold();
  assert.ok(a.ensure(60 * 1024));
  assert.ok(a.ensure(10)); // already covered
  assert.equal(budget.used, 60 * 1024);
  assert.ok(!b.ensure(50 * 1024), "past the limit");
  assert.equal(b.bytes, 0);
  assert.ok(b.ensure(40 * 1024));
  assert.equal(budget.used, 100 * 1024);
  a.trim(1000); // keeps 1 KiB
  assert.equal(a.bytes, 1024);
  assert.equal(budget.used, 41 * 1024);
  a.release();
  b.release();
  b.release();
  assert.equal(budget.used, 0);
});

Deno.test("MemoryBudget.adopt() shares one count between threads", async () => {
  const budget = MemoryBudget.create(64 * 1024);
  const src = `
    import { MemoryBudget } from ${
    JSON.stringify(new URL("./memory_budget.ts", import.meta.url).href)
  };
    self.onmessage = (e) => {
      const h = MemoryBudget.adopt(e.data).hold();
      self.postMessage([h.ensure(40 * 1024), h.ensure(48 * 1024)]);
    };`;
  const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
  const w = new Worker(url, { type: "module" });
  try {
    const mine = budget.hold();
    assert.ok(mine.ensure(20 * 1024));
    const got = await new Promise((r) => {
      w.onmessage = (e) => r(e.data);
      w.postMessage(budget.shared);
    });
    assert.deepEqual(got, [true, false]);
    assert.equal(budget.used, 60 * 1024);
  } finally {
    w.terminate();
    URL.revokeObjectURL(url);
  }
});

Deno.test("automaticBudget() is half of V8's heap limit", async () => {
  const { getHeapStatistics } = await import("node:v8");
  const bytes = await automaticBudget();
  assert.equal(bytes, Math.floor(getHeapStatistics().heap_size_limit / 2));
  assert.ok(bytes > 64 * 1024 * 1024);
});
