import assert from "node:assert/strict";
import { isOurQueueId, isQueueId, makeQueueId, OUR_MARK, QueueIds } from "./queue_id.ts";

const LONG_ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";

/** Digits of n in base `base` over Postfix's long-ID alphabet, at least `width` of them. */
function digits(n: number, base: number, width: number): string {
  let out = "";
  do {
    out = LONG_ALPHABET[n % base] + out;
    n = Math.floor(n / base);
  } while (n > 0);
  return out.padStart(width, "0");
}

/** The names Postfix gives a queue file (global/mail_queue.c, mail_queue_enter), built from the facts. */
const postfix = {
  long: (sec: number, usec: number, inode: number) =>
    `${digits(sec, 52, 6)}${digits(usec, 52, 4)}z${digits(inode, 51, 1)}`,
  short: (usec: number, inode: number) =>
    `${usec.toString(16).toUpperCase().padStart(5, "0")}${inode.toString(16).toUpperCase()}`,
  temporary: (usec: number, pid: number) => `${usec}.${pid}`,
};

/** A small deterministic generator (no Math.random: a failure must be repeatable). */
function* numbers(seed: number, count: number, max: number): Generator<number> {
  let x = seed;
  for (let i = 0; i < count; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    yield Math.floor((x / 2147483648) * max);
  }
}

Deno.test("makeQueueId: Postfix's long layout behind our mark, a valid Postfix queue ID", () => {
  const id = makeQueueId(1_764_806_400, 123_456, 2 ** 52 - 1);
  assert.ok(id.startsWith(OUR_MARK), id);
  assert.ok(isQueueId(id), id);
  assert.match(id, /^[A-Za-z0-9]+$/, "letters and digits only (mail_queue_id_ok)");
  // postsuper finds the inode field after the last "z", at least 10 characters in.
  assert.ok(id.lastIndexOf("z") >= 10, id);
  assert.match(
    id.slice(id.lastIndexOf("z") + 1),
    /^[0-9BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxy]+$/,
  );
  assert.ok(isOurQueueId(id), id);
  assert.ok(isOurQueueId(makeQueueId(0, 0, 0)));
});

Deno.test("isOurQueueId: true for every ID we make", () => {
  const secs = [...numbers(1, 200, 2 ** 40)];
  const usecs = [...numbers(2, 200, 1_000_000)];
  const uniques = [...numbers(3, 200, 2 ** 52)];
  for (let i = 0; i < 200; i++) {
    const id = makeQueueId(secs[i]!, usecs[i]!, uniques[i]!);
    assert.ok(isOurQueueId(id), id);
  }
});

Deno.test("isOurQueueId: false for every name Postfix gives a queue file", () => {
  const secs = [...numbers(4, 500, 2 ** 36)];
  const usecs = [...numbers(5, 500, 1_000_000)];
  const inodes = [...numbers(6, 500, 2 ** 48)];
  for (let i = 0; i < 500; i++) {
    const [sec, usec, inode] = [secs[i]!, usecs[i]!, inodes[i]!];
    for (const name of [postfix.long(sec, usec, inode), postfix.short(usec, inode)]) {
      assert.ok(isQueueId(name), name);
      assert.ok(!isOurQueueId(name), name);
    }
    assert.ok(!isOurQueueId(postfix.temporary(usec, inode % 4_194_304)));
  }
  // Examples as Postfix writes them: long (enable_long_queue_ids = yes),
  // short (the default), cleanup's and postdrop's temporary name,
  // postsuper's rename in progress, a fast-flush log name.
  for (
    const name of [
      "4jZtBg6CChzm0xR",
      "4dLq2b1Wlfz3yL",
      "3F2A91C0042",
      "A1B2C3D4E5F",
      "815342.4242",
      "4jZtBg6CChzm0xR#FIX",
      "example_com",
      "",
    ]
  ) {
    assert.ok(!isOurQueueId(name), name);
  }
});

Deno.test("isOurQueueId: still ours after postsuper -S gives the name the file's inode", () => {
  const id = makeQueueId(1_764_806_400, 42, 123_456_789);
  const z = id.lastIndexOf("z");
  const renamed = `${id.slice(0, z)}z${digits(9_876_543, 51, 1)}`;
  assert.ok(isOurQueueId(renamed), renamed);
});

Deno.test("isOurQueueId: false for near misses of our shape", () => {
  const id = makeQueueId(1_764_806_400, 42, 7);
  for (
    const name of [
      id.slice(1), // no mark
      `${id}z`, // "z" is not an inode digit
      `${id}a`, // a vowel in the inode field
      `${OUR_MARK}${OUR_MARK}${id.slice(1)}`,
      `${OUR_MARK}12345z1`, // time part too short
      `${id}.1`,
      `${OUR_MARK}${"1".repeat(300)}z1`, // longer than a queue ID may be
    ]
  ) {
    assert.ok(!isOurQueueId(name), name);
  }
});

Deno.test("QueueIds: IDs of one store, made in the same millisecond, all differ and are ours", () => {
  const ids = new QueueIds();
  const when = new Date(1_700_000_000_123);
  const made = Array.from({ length: 5000 }, () => ids.next(when));
  assert.equal(new Set(made).size, made.length);
  for (const id of made.slice(0, 50)) assert.ok(isOurQueueId(id), id);
});

Deno.test("QueueIds: two stores (two threads) make different IDs at the same moment", () => {
  const when = new Date(1_700_000_000_123);
  const a = new QueueIds();
  const b = new QueueIds();
  const fromA = new Set(Array.from({ length: 100 }, () => a.next(when)));
  const fromB = Array.from({ length: 100 }, () => b.next(when));
  // Each store has a random 16-bit tag: the same sequence gives other IDs
  // (the tags clash once in 65536 runs).
  assert.ok(fromB.every((id) => !fromA.has(id)));
});
