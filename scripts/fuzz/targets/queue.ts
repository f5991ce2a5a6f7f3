/**
 * Targets for the queue-file reader: decodeRecords() on truncated and
 * corrupted files, and readQueueFile() on such files written to disk. A
 * file without its end record must never read as complete.
 *
 * @module
 */

import { join } from "node:path";
import {
  decodeRecords,
  formatSize,
  QueueFileError,
  type QueueRecord,
  REC,
  RecordBuffer,
} from "../../../src/queue/queue_file.ts";
import { readQueueFile } from "../../../src/queue/queue_reader.ts";
import { QueueStore } from "../../../src/queue/queue_store.ts";
import { concat, INTERESTING, mutate, preview } from "../bytes.ts";
import { bodyLine, mailbox } from "../grammar.ts";
import { fnv1a, Rng } from "../prng.ts";
import { FuzzFailure, type FuzzTarget, unexpected } from "../target.ts";

const SCRATCH = new URL("../../../var/tests/", import.meta.url).pathname;
const ARRIVAL = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678));

/** Valid queue files the variants are made from (built once, deterministic). */
const seeds: Uint8Array[] = [];
let scratchDir: string | undefined;
let users = 0;

/**
 * A content line for a seed file: grammar lines, capped so seed files stay
 * small enough to try many prefixes of.
 * @param rng the generator
 * @returns the line
 */
function seedLine(rng: Rng): Uint8Array {
  const line = bodyLine(rng, false);
  return line.length > 3000 ? line.subarray(0, rng.range(0, 3000)) : line;
}

/**
 * Builds a valid queue file in memory, in the writer's record order.
 * @param rng the generator
 * @param big add one 17000-byte content record (a 3-byte length)
 * @returns the file bytes
 */
export function buildQueueFile(rng: Rng, big = false): Uint8Array {
  const buf = new RecordBuffer();
  const zero = { contentSize: 0, dataOffset: 0, recipientCount: 0, qmgrFlags: 0 };
  buf.putText(REC.size, formatSize({ ...zero, contentLength: 0, sendOpts: 0 }));
  const secs = 1_700_000_000 + rng.int(100_000_000);
  buf.putText(REC.time, `${secs} ${rng.int(1_000_000)}`);
  buf.putText(REC.attr, `create_time=${secs}`);
  buf.putText(REC.attr, `log_client_name=${rng.pick(["localhost", "mx.example.org", "unknown"])}`);
  buf.putText(REC.from, rng.chance(0.2) ? "" : mailbox(rng));
  const rcpts = rng.chance(0.1) ? rng.range(100, 300) : rng.range(1, 4);
  for (let i = 0; i < rcpts; i++) {
    const r = mailbox(rng);
    buf.putText(REC.orcp, r);
    buf.putText(REC.rcpt, r);
  }
  buf.put(REC.mesg, new Uint8Array(0));
  const lines = rng.size(60);
  for (let i = 0; i < lines; i++) {
    const line = seedLine(rng);
    let at = 0;
    do {
      const end = Math.min(line.length, at + 2048);
      buf.put(end < line.length ? REC.cont : REC.norm, line.subarray(at, end));
      at = end;
    } while (at < line.length);
  }
  if (big) buf.put(REC.norm, new Uint8Array(17_000).fill(0x62));
  buf.put(REC.xtra, new Uint8Array(0));
  if (rng.chance(0.5)) buf.putText(REC.attr, "rewrite_context=local");
  buf.put(REC.end, new Uint8Array(0));
  return buf.bytes().slice();
}

/** Writes a few files through the real QueueStore and reads them back. */
async function writeThroughStore(dir: string): Promise<Uint8Array[]> {
  const store = new QueueStore(dir);
  await store.prepare();
  const out: Uint8Array[] = [];
  const rng = new Rng(7);
  for (let n = 0; n < 3; n++) {
    const f = await store.create("incoming", ARRIVAL);
    f.writeEnvelope({
      arrival: ARRIVAL,
      sender: n === 0 ? "" : `sender${n}@example.org`,
      recipients: Array.from({ length: n * 3 + 1 }, (_, i) => `r${i}@example.net`),
      attributes: [["log_client_name", "localhost"], ["rewrite_context", "remote"]],
    });
    const lines = n === 2 ? 200 : 20;
    for (let i = 0; i < lines; i++) {
      const line = n === 1 && i === 3 ? new Uint8Array(20_000).fill(0x61) : seedLine(rng);
      // Long lines go in as the reader would hand them over: 2048-byte pieces.
      let at = 0;
      do {
        const end = Math.min(line.length, at + 2048);
        const r = f.line(line, at, end, end < line.length);
        if (r) await r;
        at = end;
      } while (at < line.length);
    }
    await f.commit({ attributes: [["queue_fuzz", String(n)]] });
    out.push(await Deno.readFile(f.path));
  }
  return out;
}

/** Positions of strict prefixes to try: all of them for small files, else a sample. */
function prefixPoints(input: Uint8Array, records: readonly QueueRecord[], all: boolean): number[] {
  if (all && input.length <= 16_384) return Array.from({ length: input.length }, (_, i) => i);
  const rng = new Rng(fnv1a(input));
  const points = new Set<number>([0, 1, input.length - 1, input.length - 2]);
  // Around the boundaries of the last records (all of them when thorough).
  for (const r of all ? records : records.slice(-4)) {
    for (const d of [-1, 0, 1, 2]) points.add(r.offset + d);
  }
  for (let i = 0; i < (all ? 512 : 24); i++) points.add(rng.int(input.length));
  return [...points].filter((p) => p >= 0 && p < input.length);
}

/**
 * The strict-prefix invariant: no strict prefix of a file whose only end
 * record is its last record decodes as ending in an end record.
 * @param input the whole file
 * @param records its records
 * @param all try every prefix
 */
export function checkPrefixes(
  input: Uint8Array,
  records: readonly QueueRecord[],
  all: boolean,
): void {
  for (const p of prefixPoints(input, records, all)) {
    let got;
    try {
      got = decodeRecords(input.subarray(0, p));
    } catch (err) {
      if (err instanceof QueueFileError) continue;
      throw unexpected("queue.prefix.throws", err);
    }
    if (got.at(-1)?.type === REC.end) {
      throw new FuzzFailure(
        "queue.prefix-complete",
        `the ${p}-byte prefix of a ${input.length}-byte file decodes with an end record last`,
      );
    }
  }
}

/** Checks the record structure: consecutive, covering the input exactly. */
function checkStructure(input: Uint8Array, records: readonly QueueRecord[]): void {
  let at = 0;
  for (const r of records) {
    if (r.offset !== at || input[at] !== r.type) {
      throw new FuzzFailure("queue.offsets", `record at ${r.offset}, expected ${at}`);
    }
    const dataStart = r.data.byteOffset - input.byteOffset;
    if (dataStart <= at || dataStart - at > 5) {
      throw new FuzzFailure("queue.header", `record at ${at} has its data at ${dataStart}`);
    }
    at = dataStart + r.data.length;
  }
  if (at !== input.length) {
    throw new FuzzFailure("queue.coverage", `records end at ${at} of ${input.length}`);
  }
}

/** A variant of a valid file: truncated, corrupted, or both. */
function variant(rng: Rng): Uint8Array {
  const base = rng.pick(seeds);
  const corrupt = (b: Uint8Array): Uint8Array => {
    const out = b.slice();
    const k = rng.range(1, 4);
    for (let i = 0; i < k && out.length > 0; i++) {
      const at = rng.int(out.length);
      out[at] = rng.chance(0.5)
        ? rng.pick(INTERESTING)
        : rng.chance(0.5)
        ? rng.int(256)
        : (out[at] as number) ^ (1 << rng.int(8));
    }
    return out;
  };
  const truncate = (b: Uint8Array): Uint8Array => b.slice(0, rng.int(b.length));
  switch (rng.int(20)) {
    case 0:
      return base.slice();
    case 1:
    case 2:
    case 3:
    case 4:
    case 5:
    case 6:
      return truncate(base);
    case 7:
    case 8:
    case 9:
    case 10:
    case 11:
      return corrupt(base);
    case 12:
    case 13:
    case 14:
      return truncate(corrupt(base));
    case 15: // a record type changed to the end record, then cut at a later record boundary
    {
      const records = decodeRecords(base);
      const out = base.slice();
      const r = rng.pick(records.slice(1, -1));
      if (r) out[r.offset] = REC.end;
      const later = records.filter((x) => x.offset > (r?.offset ?? 0));
      return out.slice(0, rng.pick(later)?.offset ?? out.length);
    }
    case 16: // garbage appended after the end record
      return concat([base, rng.bytes(rng.size(16) + 1)]);
    default:
      return mutate(rng, base, 4);
  }
}

async function setupSeeds(): Promise<void> {
  users++;
  if (seeds.length > 0) return;
  await Deno.mkdir(SCRATCH, { recursive: true });
  scratchDir = await Deno.makeTempDir({ dir: SCRATCH, prefix: "fuzz_queue_" });
  const rng = new Rng(0x51);
  for (let i = 0; i < 12; i++) seeds.push(buildQueueFile(rng, i === 5));
  seeds.push(...await writeThroughStore(join(scratchDir, "store")));
  for (const s of seeds) {
    const records = decodeRecords(s);
    if (
      records.at(-1)?.type !== REC.end || records.filter((r) => r.type === REC.end).length !== 1
    ) {
      throw new FuzzFailure(
        "queue.seed",
        "a freshly written queue file does not end in one E record",
      );
    }
    checkPrefixes(s, records, true);
  }
}

async function teardownSeeds(): Promise<void> {
  users--;
  if (users > 0 || !scratchDir) return;
  await Deno.remove(scratchDir, { recursive: true }).catch(() => {});
  scratchDir = undefined;
  seeds.length = 0;
}

/** decodeRecords(): QueueFileError or well-formed records; truncations never end in E. */
export const queueDecodeTarget: FuzzTarget = {
  name: "queue_decode",
  description: "decodeRecords: only QueueFileError; no strict prefix decodes with E last",
  setup: setupSeeds,
  teardown: teardownSeeds,
  generate: variant,
  check(input: Uint8Array, thorough: boolean): void {
    let records;
    try {
      records = decodeRecords(input);
    } catch (err) {
      if (err instanceof QueueFileError) return;
      throw unexpected("queue.throws", err);
    }
    checkStructure(input, records);
    const ends = records.filter((r) => r.type === REC.end).length;
    if (ends === 1 && records.at(-1)?.type === REC.end) checkPrefixes(input, records, thorough);
  },
};

let fileCounter = 0;

/** readQueueFile(): never throws; complete only with an end record last (and the ready mode). */
export const queueReaderTarget: FuzzTarget = {
  name: "queue_reader",
  description: "readQueueFile: never throws; complete=false for files that lack the end record",
  setup: setupSeeds,
  teardown: teardownSeeds,
  generate: variant,
  async check(input: Uint8Array, thorough: boolean): Promise<void> {
    if (!scratchDir) throw new Error("queue_reader: setup did not run");
    // lastIsEnd: the file ends in an end record. whole: and it is the only one
    // (what the writer makes); only such a file must read as complete.
    let lastIsEnd = false;
    let whole = false;
    try {
      const records = decodeRecords(input);
      lastIsEnd = records.at(-1)?.type === REC.end;
      whole = lastIsEnd && records.filter((r) => r.type === REC.end).length === 1;
    } catch {
      lastIsEnd = false;
    }
    const path = join(scratchDir, `Q${(fileCounter++ % 4).toString()}`);
    await Deno.writeFile(path, input);
    const h = fnv1a(input);
    const modes = thorough ? [0o700, 0o600] : [h & 1 ? 0o700 : 0o600];
    for (const mode of modes) {
      await Deno.chmod(path, mode);
      let entry;
      try {
        entry = await readQueueFile(path, "incoming", (h & 2) !== 0);
      } catch (err) {
        throw unexpected("queue_reader.throws", err);
      }
      const where = `mode ${mode.toString(8)}, ${input.length} bytes ${preview(input, 120)}`;
      if (entry.complete && !lastIsEnd) {
        throw new FuzzFailure(
          "queue_reader.complete",
          `a file whose last record is not E reads as complete (${where})`,
        );
      }
      if (entry.complete && mode !== 0o700) {
        throw new FuzzFailure(
          "queue_reader.mode",
          `a file in mode ${mode.toString(8)} reads as complete`,
        );
      }
      // A whole file may still be refused for a corrupted record ("corrupt: ..."),
      // never for a missing end.
      if (!entry.complete && whole && mode === 0o700 && !entry.problem?.startsWith("corrupt")) {
        throw new FuzzFailure(
          "queue_reader.incomplete",
          `a whole file reads as incomplete: ${entry.problem} (${where})`,
        );
      }
      if (entry.complete === (entry.problem !== undefined)) {
        throw new FuzzFailure(
          "queue_reader.problem",
          `complete=${entry.complete} problem=${entry.problem}`,
        );
      }
    }
  },
};

/** Exposed for the tests: the file bytes used as seeds (after setup). */
export function queueSeeds(): readonly Uint8Array[] {
  return seeds;
}
