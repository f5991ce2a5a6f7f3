import assert from "node:assert/strict";
import { join } from "node:path";
import { makeQueueId } from "./queue_id.ts";
import { QueueStore } from "./queue_store.ts";
import { recoverQueue } from "./recover.ts";

const enc = new TextEncoder();
/** A C record and the start of a T record: what a writer leaves after its first write. */
const PARTIAL = enc.encode("C\x05    1T\x03123");
const DAY_AGO = new Date(Date.now() - 86_400_000);

async function withQueue(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "recover_test_" });
  try {
    for (const q of ["incoming", "maildrop"]) await Deno.mkdir(join(dir, q));
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function plant(path: string, bytes: Uint8Array, mode: number): Promise<void> {
  await Deno.writeFile(path, bytes, { mode: 0o600 });
  await Deno.chmod(path, mode);
  await Deno.utime(path, DAY_AGO, DAY_AGO); // old: no age rule may protect it
}

const exists = (path: string) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
};
const names = (dir: string) => Array.from(Deno.readDirSync(dir), (e) => e.name).sort();

Deno.test("recoverQueue: leaves every file not ours alone, whatever its age or state", async () => {
  await withQueue(async (dir) => {
    // Shapes Postfix's cleanup and postdrop give their files while writing
    // (0600, partial records), a complete Postfix file, a stray name.
    const foreign = {
      incoming: ["4jZtBg6CChzm0xR", "3F2A91C0042", "815342.4242", "A1B2C3D4E5F"],
      maildrop: ["4jZtBg7DDhzm0xS", "5E1B0C0043", "77.1234"],
    };
    for (const [q, list] of Object.entries(foreign)) {
      for (const n of list) await plant(join(dir, q, n), PARTIAL, 0o600);
    }
    await plant(join(dir, "incoming", "1BCDF0042"), new Uint8Array(0), 0o600); // empty, like ours in the pool
    await plant(join(dir, "incoming", "4jZtBg9FFhzm0xT"), PARTIAL, 0o700); // "complete", no end record
    const before = {
      incoming: names(join(dir, "incoming")),
      maildrop: names(join(dir, "maildrop")),
    };
    assert.deepEqual(await recoverQueue(dir), []);
    assert.deepEqual(names(join(dir, "incoming")), before.incoming);
    assert.deepEqual(names(join(dir, "maildrop")), before.maildrop);
    assert.throws(() => Deno.statSync(join(dir, "corrupt")), Deno.errors.NotFound);
  });
});

Deno.test("recoverQueue: sets aside our unfinished files, removes our empty pool files, keeps our complete ones", async () => {
  await withQueue(async (dir) => {
    const id = (n: number) => makeQueueId(1_764_806_400, n, n);
    await plant(join(dir, "incoming", id(1)), PARTIAL, 0o600); // being written
    await plant(join(dir, "incoming", id(2)), PARTIAL, 0o700); // marked complete, no end record
    await plant(join(dir, "incoming", id(3)), new Uint8Array(0), 0o600); // unused pool file
    await plant(join(dir, "maildrop", id(4)), PARTIAL, 0o600);
    // A complete file of ours, written by the real writer.
    const store = new QueueStore(dir);
    const file = store.create("incoming", new Date());
    file.writeEnvelope({
      arrival: new Date(),
      sender: "a@example.org",
      recipients: ["b@example.net"],
      attributes: [],
    });
    await file.commit();
    const found = await recoverQueue(dir);
    assert.deepEqual(
      found.map((r) => `${r.queue}/${r.name}: ${r.reason}`).sort(),
      [
        `incoming/${id(1)}: incomplete (still marked as being written)`,
        `incoming/${id(2)}: no end record`,
        `maildrop/${id(4)}: incomplete (still marked as being written)`,
      ].sort(),
    );
    assert.deepEqual(names(join(dir, "incoming")), [file.id]);
    assert.deepEqual(names(join(dir, "maildrop")), []);
    assert.deepEqual(
      names(join(dir, "corrupt")),
      [`incoming.${id(1)}`, `incoming.${id(2)}`, `maildrop.${id(4)}`].sort(),
    );
  });
});

Deno.test("recoverQueue: leaves alone a file of ours another live process is writing (it holds the lock)", async () => {
  await withQueue(async (dir) => {
    // A stand-alone process writing a large message into maildrop/, and a
    // pool file another daemon has just taken: both hold the write lock.
    const store = new QueueStore(dir);
    const writing = store.create("maildrop", new Date());
    writing.writeEnvelope({
      arrival: new Date(),
      sender: "a@example.org",
      recipients: ["b@example.net"],
      attributes: [],
    });
    const big = enc.encode("x".repeat(1000));
    for (let i = 0; i < 300; i++) await writing.line(big, 0, big.length, false); // past the first flush: created
    const pooled = new QueueStore(dir, { pool: true });
    await pooled.prefill("incoming");
    let taken = pooled.create("incoming", new Date());
    for (let i = 0; i < 200 && !exists(taken.path); i++) {
      await new Promise((r) => setTimeout(r, 10)); // the pool's first fill is still running
      taken = pooled.create("incoming", new Date());
    }
    try {
      assert.equal(names(join(dir, "maildrop")).length, 1);
      assert.deepEqual(await recoverQueue(dir), []);
      assert.deepEqual(names(join(dir, "maildrop")), [writing.id]);
      assert.ok(names(join(dir, "incoming")).includes(taken.id), "the taken pool file is kept");
      assert.ok(
        !names(join(dir, "incoming")).some((n) => n !== taken.id),
        "idle pool files are removed",
      );
      // Both writers finish: complete files, nothing set aside.
      await writing.commit();
      taken.writeEnvelope({
        arrival: new Date(),
        sender: "a@example.org",
        recipients: ["b@example.net"],
        attributes: [],
      });
      await taken.commit();
      assert.deepEqual(await recoverQueue(dir), []);
      assert.deepEqual(names(join(dir, "maildrop")), [writing.id]);
      assert.deepEqual(names(join(dir, "incoming")), [taken.id]);
    } finally {
      await pooled.close();
    }
  });
});

Deno.test("recoverQueue: keeps a complete file of ours that postsuper -r moved into maildrop/ (mode 0700)", async () => {
  await withQueue(async (dir) => {
    // Queued by the daemon (incoming/, 0700), then requeued by the
    // administrator: postsuper -r renames it into maildrop/, name and mode
    // kept, for pickup to enqueue again.
    const store = new QueueStore(dir);
    const file = store.create("incoming", new Date());
    file.writeEnvelope({
      arrival: new Date(),
      sender: "a@example.org",
      recipients: ["b@example.net"],
      attributes: [],
    });
    await file.commit();
    await Deno.rename(file.path, join(dir, "maildrop", file.id));
    assert.deepEqual(await recoverQueue(dir), []);
    assert.deepEqual(names(join(dir, "maildrop")), [file.id]);
    assert.equal(Deno.statSync(join(dir, "maildrop", file.id)).mode! & 0o777, 0o700);
    assert.ok(!exists(join(dir, "corrupt")), "nothing set aside");
  });
});
