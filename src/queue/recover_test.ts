import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeRecords, formatSize, REC } from "./queue_file.ts";
import { makeQueueId } from "./queue_id.ts";
import { QueueStore } from "./queue_store.ts";
import { listOurFiles, recoverQueue } from "./recover.ts";

const enc = new TextEncoder();

/** A file a test writes, as the store makes it. */
type QueueFileOf = ReturnType<QueueStore["create"]>;

/** The envelope of a message to one recipient, as a session gives it. */
function oneRecipient(): Parameters<QueueFileOf["writeEnvelope"]>[0] {
  return {
    arrival: new Date(),
    sender: "a@example.org",
    recipients: ["b@example.net"],
    attributes: [],
  };
}

/** Writes 300 lines of 1,000 bytes into `file`: past its first flush, so it exists on disk. */
async function pastFirstFlush(file: QueueFileOf): Promise<void> {
  const big = enc.encode("x".repeat(1000));
  for (let i = 0; i < 300; i++) await file.line(big, 0, big.length, false);
}

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
    file.writeEnvelope(oneRecipient());
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
    writing.writeEnvelope(oneRecipient());
    await pastFirstFlush(writing);
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
      taken.writeEnvelope(oneRecipient());
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
    file.writeEnvelope(oneRecipient());
    await file.commit();
    await Deno.rename(file.path, join(dir, "maildrop", file.id));
    assert.deepEqual(await recoverQueue(dir), []);
    assert.deepEqual(names(join(dir, "maildrop")), [file.id]);
    assert.equal(Deno.statSync(join(dir, "maildrop", file.id)).mode! & 0o777, 0o700);
    assert.ok(!exists(join(dir, "corrupt")), "nothing set aside");
  });
});

/**
 * A complete file of ours as the writer makes it: `lines` content lines of
 * `width` bytes (long ones are L records and an N), and an extracted
 * segment with records of every kind the writer puts there.
 */
async function completeFile(
  dir: string,
  lines: number,
  width: number,
): Promise<{ path: string; id: string }> {
  const store = new QueueStore(dir);
  const file = store.create("incoming", new Date());
  file.writeEnvelope({
    arrival: new Date(),
    sender: "a@example.org",
    recipients: ["b@example.net", "c@example.net"],
    attributes: [["rewrite_context", "remote"]],
  });
  const line = enc.encode("y".repeat(width));
  for (let i = 0; i < lines; i++) await file.line(line, 0, line.length, false);
  await file.commit({
    filter: "smtp:[relay.example]",
    redirect: "d@example.net",
    attributes: [["dsn_envid", "EE\x00E"]],
    recipients: [{ address: "bcc@example.net", notify: 8 }],
  });
  return { path: file.path, id: file.id };
}

/** What the whole read of a file marked complete says of it (recovery's verdict before it read only the ends). */
function wholeReadVerdict(bytes: Uint8Array): string | undefined {
  try {
    return decodeRecords(bytes).at(-1)?.type === REC.end ? undefined : "no end record";
  } catch (err) {
    return `corrupt: ${(err as Error).message}`;
  }
}

Deno.test("recoverQueue: a file marked complete but cut short anywhere is set aside, with the whole read's reason", async () => {
  await withQueue(async (dir) => {
    // Content past the first 8 KiB read (the extracted segment is read on
    // its own), and a small file read in one piece.
    for (const [lines, width] of [[400, 400], [3, 20]] as const) {
      const { path, id } = await completeFile(dir, lines, width);
      const whole = await Deno.readFile(path);
      await Deno.remove(path);
      const records = decodeRecords(whole);
      const xtra = records.findIndex((r) => r.type === REC.xtra);
      assert.ok(xtra > 0 && records.at(-1)?.type === REC.end);
      assert.ok(lines < 10 || whole.length > 64 * 1024, `${whole.length} bytes`);
      const cuts = new Set<number>();
      for (let n = 0; n < 400; n++) cuts.add(n); // the size record and the envelope
      for (let n = whole.length - 400; n < whole.length; n++) cuts.add(n); // X ... E
      for (const r of records) for (const d of [0, 1]) cuts.add(r.offset + d); // at each record, and inside its header
      let checked = 0;
      for (const n of cuts) {
        if (n < 1 || n >= whole.length) continue;
        const cut = whole.subarray(0, n);
        await plant(path, cut, 0o700);
        const want = wholeReadVerdict(cut);
        assert.ok(want, `cut at ${n} of ${whole.length}: the whole read calls it complete`);
        const found = await recoverQueue(dir);
        assert.deepEqual(
          found.map((r) => `${r.name}: ${r.reason}`),
          [`${id}: ${want}`],
          `cut at ${n} of ${whole.length}`,
        );
        await Deno.remove(join(dir, "corrupt", `incoming.${id}`));
        checked++;
      }
      assert.ok(checked >= Math.min(800, whole.length - 1), `${checked} cuts`);
      // Whole again, it is kept.
      await plant(path, whole, 0o700);
      assert.deepEqual(await recoverQueue(dir), []);
      assert.ok(exists(path));
      await Deno.remove(path);
    }
  });
});

Deno.test("recoverQueue: a file marked complete whose size record or end was never written is judged by the whole read", async () => {
  await withQueue(async (dir) => {
    const { path, id } = await completeFile(dir, 300, 400);
    const whole = await Deno.readFile(path);
    // The size record still the writer's placeholder (zeros): a file ending
    // in E decodes whole as before, so it is kept, as the whole read kept it.
    const placeholder = whole.slice();
    placeholder.set(
      enc.encode(formatSize({
        contentSize: 0,
        dataOffset: 0,
        recipientCount: 0,
        qmgrFlags: 0,
        contentLength: 0,
        sendOpts: 0,
      })),
      2,
    );
    await plant(path, placeholder, 0o700);
    assert.deepEqual(await recoverQueue(dir), []);
    // Its full length on disk, the last page still zeros (the data not
    // written when the crash came).
    const zeroed = whole.slice();
    zeroed.fill(0, whole.length - 4096);
    await plant(path, zeroed, 0o700);
    assert.deepEqual(
      (await recoverQueue(dir)).map((r) => `${r.name}: ${r.reason}`),
      [`${id}: ${wholeReadVerdict(zeroed)}`],
    );
  });
});

Deno.test("recoverQueue: reads the ends of a complete file of ours, not its content", async () => {
  await withQueue(async (dir) => {
    // Three messages of 4 MB, as many wait in incoming/ while Postfix is stopped.
    const files = [];
    for (let i = 0; i < 3; i++) files.push(await completeFile(dir, 4000, 1000));
    const readFile = Deno.readFile;
    const read = Deno.FsFile.prototype.read;
    let whole = 0;
    let bytes = 0;
    Object.defineProperty(Deno, "readFile", {
      configurable: true,
      writable: true,
      value: (path: string | URL, options?: Deno.ReadFileOptions) => {
        whole++;
        return readFile(path, options);
      },
    });
    Deno.FsFile.prototype.read = async function (p: Uint8Array) {
      const n = await read.call(this, p);
      bytes += n ?? 0;
      return n;
    };
    try {
      assert.deepEqual(await recoverQueue(dir), []);
    } finally {
      Object.defineProperty(Deno, "readFile", {
        configurable: true,
        writable: true,
        value: readFile,
      });
      Deno.FsFile.prototype.read = read;
    }
    assert.equal(whole, 0, "no file read whole");
    assert.ok(bytes <= 3 * 10 * 1024, `${bytes} bytes read of 3 files of 4 MB`);
    assert.deepEqual(names(join(dir, "incoming")), files.map((f) => f.id).sort());
  });
});

Deno.test("recoverQueue: looks only at the files it is given, and stops when told", async () => {
  await withQueue(async (dir) => {
    const id = (n: number) => makeQueueId(1_764_806_400, n, n);
    await plant(join(dir, "incoming", id(1)), new Uint8Array(0), 0o600); // a crash's pool file
    const listed = await listOurFiles(dir);
    assert.deepEqual(listed, [{ queue: "incoming", name: id(1) }]);
    // Made after the list: this daemon's own pool file, not a leftover.
    await plant(join(dir, "incoming", id(2)), new Uint8Array(0), 0o600);
    const told: string[] = [];
    assert.deepEqual(
      await recoverQueue(dir, { files: listed, found: (r) => told.push(r.name) }),
      [],
    );
    assert.deepEqual(names(join(dir, "incoming")), [id(2)]);
    // Stopped: nothing more is looked at.
    await plant(join(dir, "incoming", id(3)), PARTIAL, 0o600);
    const stop = new AbortController();
    stop.abort();
    assert.deepEqual(await recoverQueue(dir, { signal: stop.signal }), []);
    assert.deepEqual(names(join(dir, "incoming")), [id(2), id(3)].sort());
    // Told of each one set aside.
    assert.equal((await recoverQueue(dir, { found: (r) => told.push(r.name) })).length, 1);
    assert.deepEqual(told, [id(3)]);
  });
});

Deno.test("recoverQueue: a file its writer marks complete, moves to hold/ or removes between the look and the move is not set aside", async () => {
  await withQueue(async (dir) => {
    // A writer lets go of its lock just before its last step (the chmod of
    // QueueFile.commit, its rename into hold/, the removal of a message
    // given up): another daemon's recovery can look at the file, still
    // 0600, right then. The step is made to land where recovery's own
    // work gives it room: while recovery makes corrupt/. Found with a real
    // writer process committing 3,000 messages while recovery ran in
    // turns: one committed file (its client told 250) went to corrupt/.
    await Deno.mkdir(join(dir, "hold"));
    const id = (n: number) => makeQueueId(1_764_806_400, n, n);
    const path = (n: number) => join(dir, "incoming", id(n));
    const lastStep: Record<number, () => void> = {
      1: () => Deno.chmodSync(path(1), 0o700),
      2: () => Deno.renameSync(path(2), join(dir, "hold", id(2))),
      3: () => Deno.removeSync(path(3)),
    };
    const store = new QueueStore(dir);
    const mkdir = Deno.mkdir;
    try {
      for (const n of [1, 2, 3]) {
        // A complete message, the writer's lock released, not yet marked.
        const file = store.create("incoming", new Date());
        file.writeEnvelope(oneRecipient());
        await file.commit();
        const bytes = await Deno.readFile(file.path);
        await Deno.remove(file.path);
        await Deno.writeFile(path(n), bytes, { mode: 0o600 });
        Deno.chmodSync(path(n), 0o600);
        let stepped = false;
        Object.defineProperty(Deno, "mkdir", {
          configurable: true,
          writable: true,
          value: (p: string | URL, o?: Deno.MkdirOptions) => {
            if (!stepped) lastStep[n]?.();
            stepped = true;
            return mkdir(p, o);
          },
        });
        assert.deepEqual(await recoverQueue(dir), [], `case ${n}`);
        assert.ok(stepped, `case ${n}: the writer's step came`);
      }
    } finally {
      Object.defineProperty(Deno, "mkdir", { configurable: true, writable: true, value: mkdir });
    }
    assert.deepEqual(names(join(dir, "incoming")), [id(1)]);
    assert.equal(Deno.statSync(path(1)).mode! & 0o777, 0o700);
    assert.deepEqual(names(join(dir, "hold")), [id(2)]);
    assert.deepEqual(names(join(dir, "corrupt")), []);
  });
});

Deno.test("recoverQueue: a message its writer gives up (client gone) is never taken for a leftover", async () => {
  await withQueue(async (dir) => {
    // Another daemon's recovery runs just as the writer removes the file:
    // the file must still be locked then, or it is set aside in corrupt/
    // as an interrupted write.
    const store = new QueueStore(dir);
    const file = store.create("incoming", new Date());
    file.writeEnvelope(oneRecipient());
    await pastFirstFlush(file);
    assert.ok(exists(file.path));
    const remove = Deno.remove;
    let seen: unknown;
    Object.defineProperty(Deno, "remove", {
      configurable: true,
      writable: true,
      value: async (p: string | URL, o?: Deno.RemoveOptions) => {
        if (p === file.path && seen === undefined) seen = await recoverQueue(dir);
        return remove(p, o);
      },
    });
    try {
      await file.abort();
    } finally {
      Object.defineProperty(Deno, "remove", { configurable: true, writable: true, value: remove });
    }
    assert.deepEqual(seen, []);
    assert.deepEqual(names(join(dir, "incoming")), []);
    assert.ok(!exists(join(dir, "corrupt")), "nothing set aside");
  });
});
