import assert from "node:assert/strict";
import { basename, dirname, join } from "node:path";
import { decodeRecords, type QueueRecord, REC } from "./queue_file.ts";
import { isQueueId, OUR_MARK } from "./queue_id.ts";
import { type QueueName, READY_MODE } from "./queue_writer.ts";
import { QueueStore } from "./queue_store.ts";

const enc = new TextEncoder();
/** A whole line as the sink arguments buf, start, end. */
const whole = (text: string): [Uint8Array, number, number] => {
  const b = enc.encode(text);
  return [b, 0, b.length];
};
const dec = new TextDecoder();
const ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";
const ARRIVAL = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678));

async function withStore(fn: (store: QueueStore, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "queue_writer_test_" });
  try {
    const store = new QueueStore(dir);
    await store.prepare();
    await fn(store, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function text(r: QueueRecord | undefined): string {
  assert.ok(r, "missing record");
  return dec.decode(r.data);
}

interface Size {
  contentSize: number;
  dataOffset: number;
  rcptCount: number;
  qmgrFlags: number;
  contentLength: number;
  sendOpts: number;
}

function sizeFields(records: QueueRecord[]): Size {
  const c = records[0];
  assert.equal(c?.type, REC.size);
  assert.equal(c.data.length, 95);
  const f = text(c).trim().split(/ +/).map(Number);
  assert.equal(f.length, 6);
  const [contentSize = NaN, dataOffset = NaN, rcptCount = NaN] = f;
  const [, , , qmgrFlags = NaN, contentLength = NaN, sendOpts = NaN] = f;
  return { contentSize, dataOffset, rcptCount, qmgrFlags, contentLength, sendOpts };
}

function decodeBase(s: string, base: number): number {
  let n = 0;
  for (const ch of s) {
    const d = ALPHABET.indexOf(ch);
    assert.ok(d >= 0 && d < base, `digit ${ch} in base ${base}`);
    n = n * base + d;
  }
  return n;
}

/** A message written but not committed. */
async function draftMessage(
  store: QueueStore,
  queue: QueueName,
  lines: string[],
  recipients = ["b@example.net", "c@example.net"],
) {
  const file = await store.create(queue, ARRIVAL);
  file.writeEnvelope({
    arrival: ARRIVAL,
    sender: "a@example.org",
    recipients,
    attributes: [["rewrite_context", "remote"], ["client_name", "client.example"]],
  });
  for (const l of lines) {
    const r = file.line(...whole(l), false);
    if (r) await r;
  }
  return file;
}

async function writeMessage(
  store: QueueStore,
  queue: QueueName,
  lines: string[],
  recipients?: string[],
) {
  const file = await draftMessage(store, queue, lines, recipients);
  await file.commit({ attributes: [["encoding", "8bit"]] });
  return file;
}

const BODY = ["Subject: test", "", "Hello", "", ".dot line"];

for (const queue of ["incoming", "maildrop"] as const) {
  Deno.test(`QueueFile.commit() leaves a complete ${queue} file with mode ${READY_MODE[queue].toString(8)}`, async () => {
    await withStore(async (store, dir) => {
      const file = await writeMessage(store, queue, BODY);
      assert.ok(isQueueId(file.id), file.id);
      assert.equal(file.queue, queue);
      assert.equal(file.path, join(dir, queue, file.id));
      assert.equal(basename(file.path), file.id);
      const st = await Deno.stat(file.path);
      assert.equal(st.mode! & 0o777, queue === "incoming" ? 0o700 : 0o744);
      // Only the finished file remains: the temporary name was renamed away.
      const names = [];
      for await (const e of Deno.readDir(dirname(file.path))) names.push(e.name);
      assert.deepEqual(names, [file.id]);
    });
  });
}

Deno.test("QueueStore.prepare() creates the queue directories", async () => {
  await withStore(async (_store, dir) => {
    for (const sub of ["incoming", "maildrop", "deferred", "active", "public"]) {
      assert.ok((await Deno.stat(join(dir, sub))).isDirectory, sub);
    }
  });
});

Deno.test("QueueStore.create() names the file by arrival time, in Postfix's long-ID layout", async () => {
  await withStore(async (store) => {
    const file = await writeMessage(store, "incoming", BODY);
    const z = file.id.lastIndexOf("z");
    assert.ok(z >= 10, file.id);
    // Our mark first (queue_id.ts), then the time as Postfix writes it.
    assert.equal(file.id[0], OUR_MARK);
    assert.equal(decodeBase(file.id.slice(1, z - 4), 52), Math.floor(ARRIVAL.getTime() / 1000));
    assert.ok(decodeBase(file.id.slice(z - 4, z), 52) < 1_000_000);
    // Where Postfix puts the inode number we put a per-process sequence (the
    // file does not exist yet when the ID is needed for Received:).
    assert.match(file.id.slice(z + 1), /^[0-9BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxy]+$/);
    assert.ok((await Deno.stat(file.path)).isFile);
  });
});

Deno.test("QueueStore.create() gives distinct IDs for the same arrival time", async () => {
  await withStore(async (store) => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add((await writeMessage(store, "incoming", BODY)).id);
    assert.equal(ids.size, 5);
  });
});

Deno.test("QueueFile.commit() writes records that decode, with a correct size record", async () => {
  await withStore(async (store) => {
    const file = await writeMessage(store, "incoming", BODY);
    const records = decodeRecords(await Deno.readFile(file.path));
    const types = records.map((r) => String.fromCharCode(r.type)).join("");
    assert.equal(types, "CTAAASORORMNNNNNXAE");
    assert.equal(records.at(-1)?.type, REC.end);
    assert.equal(text(records[1]), `${Math.floor(ARRIVAL.getTime() / 1000)} 678000`);
    assert.deepEqual(records.filter((r) => r.type === REC.attr).map(text), [
      `create_time=${Math.floor(ARRIVAL.getTime() / 1000)}`,
      "rewrite_context=remote",
      "client_name=client.example",
      "encoding=8bit",
    ]);
    assert.equal(text(records.find((r) => r.type === REC.from)), "a@example.org");
    assert.deepEqual(records.filter((r) => r.type === REC.rcpt).map(text), [
      "b@example.net",
      "c@example.net",
    ]);
    assert.deepEqual(records.filter((r) => r.type === REC.norm).map(text), BODY);

    const m = records.findIndex((r) => r.type === REC.mesg);
    const x = records.find((r) => r.type === REC.xtra);
    const afterM = records[m + 1]?.offset;
    assert.ok(x && afterM !== undefined);
    const { contentSize, dataOffset, rcptCount, qmgrFlags, contentLength, sendOpts } = sizeFields(
      records,
    );
    assert.equal(dataOffset, afterM);
    assert.equal(dataOffset, (records[m]?.offset ?? 0) + 2);
    assert.equal(contentSize, x.offset - dataOffset);
    assert.equal(contentLength, contentSize);
    assert.equal(rcptCount, 2);
    assert.equal(qmgrFlags, 0);
    assert.equal(sendOpts, 0);
  });
});

Deno.test("QueueFile.line() writes long-line pieces as L records", async () => {
  await withStore(async (store) => {
    const file = await store.create("incoming", ARRIVAL);
    file.writeEnvelope({ arrival: ARRIVAL, sender: "", recipients: ["b@x"], attributes: [] });
    await file.line(...whole("abc"), true);
    await file.line(...whole("def"), false);
    await file.commit();
    const records = decodeRecords(await Deno.readFile(file.path));
    const body = records.filter((r) => r.type === REC.cont || r.type === REC.norm);
    assert.deepEqual(body.map((r) => [String.fromCharCode(r.type), text(r)]), [
      ["L", "abc"],
      ["N", "def"],
    ]);
    assert.equal(text(records.find((r) => r.type === REC.from)), "");
    assert.equal(sizeFields(records).rcptCount, 1);
  });
});

Deno.test("QueueFile.commit() rewrites the size record after a flush (message > 256 KiB)", async () => {
  await withStore(async (store) => {
    const lines = Array.from({ length: 400 }, (_, i) => `${i}:`.padEnd(998, String(i % 10)));
    const file = await store.create("incoming", ARRIVAL);
    file.writeEnvelope({
      arrival: ARRIVAL,
      sender: "a@example.org",
      recipients: ["b@example.net"],
      attributes: [],
    });
    let flushes = 0;
    for (const l of lines) {
      const r = file.line(...whole(l), false);
      if (r) {
        flushes++;
        await r;
      }
    }
    assert.ok(flushes >= 1, "the writer flushed before commit");
    await file.commit();
    const bytes = await Deno.readFile(file.path);
    assert.ok(bytes.length > 256 * 1024);
    const records = decodeRecords(bytes);
    assert.equal(records.at(-1)?.type, REC.end);
    assert.deepEqual(records.filter((r) => r.type === REC.norm).map(text), lines);
    const m = records.findIndex((r) => r.type === REC.mesg);
    const x = records.find((r) => r.type === REC.xtra);
    const { contentSize, dataOffset, rcptCount } = sizeFields(records);
    assert.equal(dataOffset, records[m + 1]?.offset);
    assert.equal(contentSize, (x?.offset ?? 0) - dataOffset);
    assert.ok(contentSize > 256 * 1024);
    assert.equal(rcptCount, 1);
  });
});

Deno.test("QueueFile.removeSync() removes a file whose creation had not returned yet", async () => {
  await withStore(async (store) => {
    const file = await store.create("maildrop", ARRIVAL);
    file.writeEnvelope({
      arrival: ARRIVAL,
      sender: "a@example.org",
      recipients: ["b@example.net"],
      attributes: [],
    });
    // A small message's file is created at commit; a signal can come after
    // the file exists and before its open returned to the writer.
    await Deno.writeFile(file.path, new Uint8Array(0), { mode: 0o600 });
    file.removeSync();
    assert.equal(await Deno.stat(file.path).then(() => "left", () => "gone"), "gone");
    file.abandon();
  });
});

Deno.test("QueueFile.abort() removes the file", async () => {
  await withStore(async (store, dir) => {
    const file = await store.create("incoming", ARRIVAL);
    file.writeEnvelope({ arrival: ARRIVAL, sender: "a@b", recipients: ["c@d"], attributes: [] });
    await file.line(...whole("x".repeat(300 * 1024)), false); // forces a flush to disk
    assert.ok((await Deno.stat(file.path)).isFile);
    await file.abort();
    await assert.rejects(Deno.stat(file.path), Deno.errors.NotFound);
    const names = [];
    for await (const e of Deno.readDir(join(dir, "incoming"))) names.push(e.name);
    assert.deepEqual(names, []);
    await file.abort(); // a second abort is harmless
  });
});

Deno.test("QueueFile.commit() throws QueueWriteError when the queue directory is missing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "queue_writer_test_" });
  try {
    const store = new QueueStore(join(dir, "nope"));
    const file = store.create("incoming", ARRIVAL);
    file.writeEnvelope({ arrival: ARRIVAL, sender: "a@b", recipients: ["c@d"], attributes: [] });
    await assert.rejects(file.commit(), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.equal(err.name, "QueueWriteError");
      assert.match(err.message, /cannot create file in/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const POSTCAT = "/usr/sbin/postcat";
const hasPostcat = await Deno.stat(POSTCAT).then((s) => s.isFile, () => false);

Deno.test({
  name: "QueueFile.commit() writes a file Postfix's postcat reads to the end",
  ignore: !hasPostcat,
  fn: async () => {
    await withStore(async (store, dir) => {
      const file = await writeMessage(store, "maildrop", BODY);
      const confDir = join(dir, "etc");
      await Deno.mkdir(confDir);
      await Deno.writeTextFile(join(confDir, "main.cf"), "");
      const out = await new Deno.Command(POSTCAT, {
        args: ["-c", confDir, file.path],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = dec.decode(out.stdout);
      assert.equal(out.code, 0, dec.decode(out.stderr));
      assert.match(stdout, /\*\*\* ENVELOPE RECORDS/);
      assert.match(stdout, /^sender: a@example\.org$/m);
      assert.match(stdout, /^recipient: b@example\.net$/m);
      assert.match(stdout, /^recipient: c@example\.net$/m);
      assert.match(stdout, /\*\*\* MESSAGE CONTENTS/);
      assert.match(stdout, /^Subject: test$/m);
      assert.match(stdout, /^Hello$/m);
      assert.match(stdout, /^\.dot line$/m);
      assert.match(stdout, /\*\*\* MESSAGE FILE END/);
      assert.doesNotMatch(dec.decode(out.stderr), /warning|fatal/);
    });
  },
});

Deno.test("QueueFile.commit() for a held message: into hold/ first, marked complete there (never complete in incoming/)", async () => {
  await withStore(async (store, dir) => {
    const file = await draftMessage(store, "incoming", BODY);
    // What Postfix's qmgr could see: each mode change, and where the file was then.
    const chmods: string[] = [];
    const chmodSync = Deno.chmodSync;
    Deno.chmodSync = (path: string | URL, mode: number) => {
      chmods.push(`${basename(dirname(String(path)))} ${mode.toString(8)}`);
      chmodSync(path, mode);
    };
    try {
      await file.commit({}, { hold: true });
    } finally {
      Deno.chmodSync = chmodSync;
    }
    assert.deepEqual(chmods, ["hold 700"]);
    assert.equal(file.path, join(dir, "hold", file.id));
    assert.equal((await Deno.stat(file.path)).mode! & 0o777, 0o700);
  });
});

Deno.test("QueueFile.commit() writes FILTER, REDIRECT and BCC records in the extracted segment in Postfix's cleanup order", async () => {
  await withStore(async (store) => {
    const file = await draftMessage(store, "incoming", BODY);
    await file.commit({
      filter: "smtp:[127.0.0.1]:10025",
      redirect: "quarantine@example.net",
      attributes: [["encoding", "8bit"]],
      recipients: [{ address: "copy@example.net", notify: 1 }],
    });
    const records = decodeRecords(await Deno.readFile(file.path));
    const x = records.findIndex((r) => r.type === REC.xtra);
    const tail = records.slice(x).map((r) => `${String.fromCharCode(r.type)} ${text(r)}`.trim());
    assert.deepEqual(tail, [
      "X",
      "L smtp:[127.0.0.1]:10025",
      "> quarantine@example.net",
      "A encoding=8bit",
      "A notify_flags=1",
      "O copy@example.net",
      "R copy@example.net",
      "E",
    ]);
    const size = sizeFields(records);
    // The BCC recipient counts, and its NOTIFY=NEVER is in the qmgr flags (1 << 1).
    assert.equal(size.rcptCount, 3);
    assert.equal(size.qmgrFlags, 2);
    assert.equal(size.contentSize, (records[x]?.offset ?? 0) - size.dataOffset);
  });
});

// Regression: prepare()'s probe file was created unlocked, so the start-up
// recovery of another process of ours on the same queue (a daemon
// starting while `smtpd stdin` starts) could take it for an unused pool
// file and remove it between the create and the chown: the stand-alone
// session then failed its start on "No such file". The recovery is run
// here at that very moment, from inside the chown.
Deno.test("QueueStore.prepare()'s probe is left alone by a recovery running meanwhile", async () => {
  const { recoverQueue } = await import("./recover.ts");
  const dir = await Deno.makeTempDir({ prefix: "queue_probe_test_" });
  const chown = Deno.chown;
  const seen: string[] = [];
  try {
    const store = new QueueStore(dir, { owner: { uid: Deno.uid() ?? 0, gid: Deno.gid() ?? 0 } });
    await store.prepare();
    Object.defineProperty(Deno, "chown", {
      configurable: true,
      writable: true,
      value: async (path: string | URL, uid: number | null, gid: number | null) => {
        seen.push(String(path));
        await recoverQueue(dir);
        return await chown(path, uid, gid);
      },
    });
    await store.prepare("maildrop");
    assert.equal(seen.length, 1);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(join(dir, "maildrop"))), []);
  } finally {
    Object.defineProperty(Deno, "chown", { configurable: true, writable: true, value: chown });
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("QueueStore.prefill: the pool holds its files when it resolves (the daemon listens after it)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "queue_writer_test_" });
  try {
    const store = new QueueStore(dir, { pool: true });
    await store.prepare("incoming");
    await store.prefill("incoming");
    const made = await Array.fromAsync(Deno.readDir(join(dir, "incoming")));
    // 256 pool files and the one prepare() leaves as a write in progress.
    assert.ok(made.length >= 256, `${made.length} files in incoming/`);
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
