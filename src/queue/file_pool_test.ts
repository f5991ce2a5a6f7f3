import assert from "node:assert/strict";
import { FilePool, PoolLock } from "./file_pool.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "file_pool_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function counter(): () => string {
  let n = 0;
  return () => `f${++n}`;
}

Deno.test("PoolLock: refills take turns, never overlap", async () => {
  const lock = new PoolLock();
  let inside = 0;
  let most = 0;
  const order: number[] = [];
  const task = (n: number) => async () => {
    inside++;
    most = Math.max(most, inside);
    await new Promise((r) => setTimeout(r, 5));
    order.push(n);
    inside--;
    return n;
  };
  const results = await Promise.all([1, 2, 3].map((n) => lock.run(task(n))));
  assert.deepEqual(results, [1, 2, 3]);
  assert.equal(most, 1);
  assert.equal(order.length, 3);
});

Deno.test("PoolLock: a holder that never lets go is waited for at most maxWaitMs", async () => {
  const buffer = new SharedArrayBuffer(4);
  new Int32Array(buffer)[0] = 1; // taken by a thread that is gone
  const lock = new PoolLock(buffer); // as a listener thread adopts the main thread's
  const started = Date.now();
  const r = await lock.run(() => Promise.resolve("ran"), 50);
  assert.equal(r, "ran");
  assert.ok(Date.now() - started >= 45, "it waited");
  assert.equal(new Int32Array(buffer)[0], 0, "and left the lock free");
});

Deno.test("FilePool: fill makes empty 0600 files; take hands them out open; close removes the rest", async () => {
  await withDir(async (dir) => {
    const pool = new FilePool(dir, counter(), { low: 2, high: 4 });
    await pool.fill();
    assert.equal(pool.size, 4);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["f1", "f2", "f3", "f4"]);
    for (const n of names) {
      const st = Deno.statSync(`${dir}/${n}`);
      assert.equal(st.size, 0);
      assert.equal((st.mode ?? 0) & 0o777, 0o600);
    }
    const f = pool.take();
    assert.ok(f);
    f.file.writeSync(new TextEncoder().encode("x"));
    f.file.close();
    assert.equal(Deno.readTextFileSync(f.path), "x");
    await pool.close();
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [f.id]);
  });
});

Deno.test("FilePool: a name someone removed is skipped, and an empty pool gives none", async () => {
  await withDir(async (dir) => {
    const pool = new FilePool(dir, counter(), { low: 0, high: 2 });
    await pool.fill();
    Deno.removeSync(`${dir}/f2`); // taken first (last made)
    const f = pool.take();
    assert.equal(f?.id, "f1");
    f?.file.close();
    assert.equal(pool.take(), undefined);
    await pool.close();
  });
});

Deno.test("FilePool: a refill that fails reports it and leaves nothing behind", async () => {
  await withDir(async (dir) => {
    const errors: Error[] = [];
    // The second name already exists: O_EXCL fails half-way through the batch.
    Deno.writeTextFileSync(`${dir}/f2`, "someone else's");
    const pool = new FilePool(dir, counter(), { high: 3, onError: (e) => errors.push(e) });
    await pool.fill();
    assert.equal(errors.length, 1);
    assert.equal(pool.size, 0);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["f2"]);
    await pool.close();
  });
});

Deno.test("FilePool: a file that cannot be opened now stays in the pool and is removed at close", async () => {
  await withDir(async (dir) => {
    const pool = new FilePool(dir, counter(), { low: 0, high: 3 });
    await pool.fill();
    // Every pool file fails to open for writing, not for want of a name
    // (as on a file system remounted read-only, or out of descriptors):
    // here each is replaced by an empty directory (EISDIR).
    for (const n of ["f1", "f2", "f3"]) {
      Deno.removeSync(`${dir}/${n}`);
      Deno.mkdirSync(`${dir}/${n}`);
    }
    assert.equal(pool.take(), undefined, "the caller takes the slow path");
    assert.equal(pool.size, 3, "no name is forgotten");
    await pool.close();
    assert.deepEqual([...Deno.readDirSync(dir)], [], "a clean stop leaves nothing behind");
  });
});

Deno.test("fill() during a refill resolves when that refill has made its files", async () => {
  await withDir(async (dir) => {
    const pool = new FilePool(dir, counter(), { low: 2, high: 8 });
    void pool.fill(); // a refill already under way (as take() starts one)
    await pool.fill();
    assert.equal(pool.size, 8);
    await pool.close();
  });
});
