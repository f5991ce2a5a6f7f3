import assert from "node:assert/strict";
import {
  decodeRecords,
  formatSize,
  parseSize,
  QueueFileError,
  REC,
  RecordBuffer,
  RecordBufferPool,
  SIZE_PAYLOAD_LENGTH,
} from "./queue_file.ts";

const dec = new TextDecoder();

function payload(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);
}

// [payload length, bytes of the varint length]
const LENGTHS: [number, number][] = [
  [0, 1],
  [1, 1],
  [127, 1],
  [128, 2],
  [16383, 2],
  [16384, 3],
  [300000, 3],
  [2097151, 3],
  [2097152, 4],
];

for (const [n, lenBytes] of LENGTHS) {
  Deno.test(`RecordBuffer.put() round-trips a ${n}-byte record through decodeRecords()`, () => {
    const buf = new RecordBuffer();
    const data = payload(n);
    buf.put(REC.norm, data);
    assert.equal(buf.length, 1 + lenBytes + n);
    const bytes = buf.bytes();
    assert.equal(bytes[0], REC.norm);
    const records = decodeRecords(bytes);
    assert.equal(records.length, 1);
    assert.equal(records[0]?.type, REC.norm);
    assert.equal(records[0]?.offset, 0);
    assert.deepEqual(records[0]?.data, data);
  });
}

for (const n of [5, 300]) {
  Deno.test(`RecordBuffer.putRange() stores the ${n}-byte range, not the bytes around it`, () => {
    const src = payload(n + 20);
    const buf = new RecordBuffer();
    buf.putRange(REC.norm, src, 7, 7 + n);
    const records = decodeRecords(buf.bytes());
    assert.equal(records.length, 1);
    assert.deepEqual(records[0]?.data, src.slice(7, 7 + n));
  });
}

// Line lengths around the one- and two-byte length boundary, in several orders.
const RUNS: number[][] = [
  [0],
  [5, 0, 127],
  [128],
  [127, 128, 129, 2047, 3, 0, 200],
  [300, 300, 1, 1, 16383, 7],
];

for (const lens of RUNS) {
  Deno.test(`RecordBuffer.putLines() writes what putRange() writes, line lengths ${lens}`, () => {
    // The run sits inside other bytes, each line's content then CRLF.
    const parts: number[] = [9, 9, 9];
    const start = parts.length;
    lens.forEach((n, i) =>
      parts.push(...Array.from({ length: n }, (_, k) => 32 + (k + i) % 90), 13, 10)
    );
    const end = parts.length;
    parts.push(9, 9);
    const src = Uint8Array.from(parts);
    const byLine = new RecordBuffer();
    byLine.put(REC.mesg, new Uint8Array(0));
    const inRuns = new RecordBuffer();
    inRuns.put(REC.mesg, new Uint8Array(0));
    let p = start;
    for (const n of lens) {
      byLine.putRange(REC.norm, src, p, p + n);
      p += n + 2;
    }
    inRuns.putLines(REC.norm, src, start, end, Uint16Array.from(lens), lens.length);
    assert.deepEqual(inRuns.bytes(), byLine.bytes());
    assert.equal(decodeRecords(inRuns.bytes()).length, lens.length + 1);
  });
}

Deno.test("RecordBuffer.put() writes the length low 7 bits first", () => {
  const buf = new RecordBuffer();
  buf.put(REC.norm, payload(300));
  // 300 = 0b10_0101100: 0x2c | 0x80, then 0x02.
  assert.deepEqual([...buf.bytes().subarray(0, 3)], [REC.norm, 0xac, 0x02]);
});

Deno.test("decodeRecords() returns records in order with their offsets", () => {
  const buf = new RecordBuffer();
  const lengths = [0, 127, 128, 16383, 16384, 300000, 5];
  for (const [i, n] of lengths.entries()) buf.put(0x41 + i, payload(n));
  const records = decodeRecords(buf.bytes());
  assert.deepEqual(records.map((r) => r.type), lengths.map((_, i) => 0x41 + i));
  assert.deepEqual(records.map((r) => r.data.length), lengths);
  let offset = 0;
  for (const r of records) {
    assert.equal(r.offset, offset);
    const varint = r.data.length < 128 ? 1 : r.data.length < 16384 ? 2 : 3;
    offset += 1 + varint + r.data.length;
    assert.deepEqual(r.data, payload(r.data.length));
  }
  assert.equal(offset, buf.length);
});

Deno.test("RecordBuffer.putText() stores UTF-8 and clear() empties the buffer", () => {
  const buf = new RecordBuffer();
  buf.putText(REC.from, "j\u00fcrgen@example.org");
  const [r] = decodeRecords(buf.bytes());
  assert.equal(r?.type, REC.from);
  assert.equal(dec.decode(r?.data), "j\u00fcrgen@example.org");
  assert.equal(r?.data.length, 19);
  buf.clear();
  assert.equal(buf.length, 0);
  assert.deepEqual(decodeRecords(buf.bytes()), []);
});

function smallFile(): { bytes: Uint8Array; boundaries: Set<number> } {
  const buf = new RecordBuffer();
  const boundaries = new Set<number>([0]);
  const put = (type: number, text: string) => {
    buf.putText(type, text);
    boundaries.add(buf.length);
  };
  put(
    REC.size,
    formatSize({
      contentSize: 0,
      dataOffset: 0,
      recipientCount: 1,
      qmgrFlags: 0,
      contentLength: 0,
      sendOpts: 0,
    }),
  );
  put(REC.time, "1767225600 0");
  put(REC.from, "a@example.org");
  put(REC.rcpt, "b@example.net");
  put(REC.mesg, "");
  put(REC.norm, "x".repeat(200));
  put(REC.norm, "");
  put(REC.xtra, "");
  put(REC.end, "");
  return { bytes: buf.bytes().slice(), boundaries };
}

Deno.test("decodeRecords() throws QueueFileError at every cut inside a record", () => {
  const { bytes, boundaries } = smallFile();
  const full = decodeRecords(bytes);
  assert.equal(full.at(-1)?.type, REC.end);
  let throwsSeen = 0;
  for (let cut = 0; cut < bytes.length; cut++) {
    const part = bytes.subarray(0, cut);
    if (boundaries.has(cut)) {
      // A cut between records leaves whole records: a prefix without E.
      const records = decodeRecords(part);
      assert.deepEqual(
        records.map((r) => r.offset),
        full.slice(0, records.length).map((r) => r.offset),
      );
      assert.notEqual(records.at(-1)?.type, REC.end, `cut ${cut}`);
    } else {
      assert.throws(() => decodeRecords(part), QueueFileError, `cut ${cut}`);
      throwsSeen++;
    }
  }
  assert.equal(throwsSeen, bytes.length - (boundaries.size - 1));
});

Deno.test("decodeRecords() refuses a length of more than 4 bytes", () => {
  const bytes = new Uint8Array([REC.norm, 0x80, 0x80, 0x80, 0x80, 0x01]);
  assert.throws(() => decodeRecords(bytes), (err: unknown) => {
    assert.ok(err instanceof QueueFileError);
    assert.equal(err.name, "QueueFileError");
    assert.match(err.message, /bad record length at offset 0/);
    return true;
  });
});

Deno.test("decodeRecords() names the offset of a truncated record", () => {
  const buf = new RecordBuffer();
  buf.putText(REC.from, "a");
  buf.putText(REC.rcpt, "bcd");
  const bytes = buf.bytes().subarray(0, buf.length - 1);
  assert.throws(() => decodeRecords(bytes), /truncated record at offset 3/);
});

Deno.test("formatSize() gives six right-aligned %15d fields in 95 characters", () => {
  const text = formatSize({
    contentSize: 1234,
    dataOffset: 567,
    recipientCount: 3,
    qmgrFlags: 0,
    contentLength: 1234,
    sendOpts: 0,
  });
  assert.equal(SIZE_PAYLOAD_LENGTH, 95);
  assert.equal(text.length, 95);
  assert.equal(text.slice(0, 16), "           1234 ");
  assert.deepEqual(text.trim().split(/ +/).map(Number), [1234, 567, 3, 0, 1234, 0]);
  for (let i = 0; i < 6; i++) {
    const field = text.slice(i * 16, i * 16 + 15);
    assert.match(field, /^ *\d+$/, `field ${i}`);
  }
});

Deno.test("formatSize() keeps 95 characters for 15-digit values", () => {
  const big = 999_999_999_999_999;
  const text = formatSize({
    contentSize: big,
    dataOffset: big,
    recipientCount: big,
    qmgrFlags: big,
    contentLength: big,
    sendOpts: big,
  });
  assert.equal(text.length, 95);
  assert.equal(text, Array(6).fill(String(big)).join(" "));
});

Deno.test("RecordBufferPool: a released buffer comes back cleared; large ones are dropped", () => {
  const pool = new RecordBufferPool();
  const b = pool.take();
  b.putText(REC.from, "a@example.com");
  pool.release(b);
  const again = pool.take();
  assert.equal(again, b);
  assert.equal(again.length, 0);
  const big = new RecordBuffer();
  big.put(REC.norm, new Uint8Array(600 * 1024));
  pool.release(big);
  assert.notEqual(pool.take(), big, "over 512 KiB: not kept");
});

Deno.test("RecordBufferPool: at most 8 MiB is kept", () => {
  const pool = new RecordBufferPool();
  const made = Array.from({ length: 20 }, () => {
    const b = new RecordBuffer();
    b.put(REC.norm, new Uint8Array(300 * 1024)); // grows to 512 KiB
    return b;
  });
  for (const b of made) pool.release(b);
  const kept = new Set(made);
  let reused = 0;
  for (let i = 0; i < 20; i++) if (kept.has(pool.take())) reused++;
  assert.equal(reused, 16);
});

Deno.test("parseSize() reads what formatSize() writes, and nothing of another shape", () => {
  const enc = new TextEncoder();
  const f = {
    contentSize: 4600000,
    dataOffset: 123,
    recipientCount: 2,
    qmgrFlags: 16,
    contentLength: 4600000,
    sendOpts: 0,
  };
  assert.deepEqual(parseSize(enc.encode(formatSize(f))), f);
  const big = { ...f, contentSize: 999_999_999_999_999 };
  assert.deepEqual(parseSize(enc.encode(formatSize(big))), big);
  const text = formatSize(f);
  for (
    const bad of [
      text.slice(1), // short
      `${text} `, // long
      " ".repeat(95), // empty fields
      text.replace("4600000", "46000-0"),
      `${text.slice(0, 15)}x${text.slice(16)}`, // no space between fields
    ]
  ) assert.equal(parseSize(enc.encode(bad)), undefined, JSON.stringify(bad));
});
