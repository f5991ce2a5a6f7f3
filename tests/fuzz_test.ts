/**
 * Property-based fuzzing in CI: every target of scripts/fuzz/ with a fixed
 * seed for a bounded time (FUZZ_SECONDS, default 42), a replay of every
 * input saved under tests/fuzz_corpus/, a check that every open bug in
 * scripts/fuzz/known_bugs.ts still reproduces, and regression tests for
 * the bugs the fuzzer found (open ones are `ignore: true` with `// BUG:`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  DEFAULT_SEED,
  KNOWN_BUGS,
  readCorpus,
  replayCorpus,
  runFuzz,
  TARGETS,
  toHex,
  tryCheck,
} from "../scripts/fuzz/mod.ts";
import { runDot } from "../scripts/fuzz/targets/data.ts";
import { parseCommand } from "../src/protocol/parse_command.ts";
import { parsePath } from "../src/protocol/address.ts";
import { resolveConfigText } from "../src/config/load.ts";
import { ConfigError } from "../src/config/config_error.ts";
import { REC, RecordBuffer } from "../src/queue/queue_file.ts";
import { readQueueFile } from "../src/queue/queue_reader.ts";
import { parseTextTable } from "../src/policy/tables/text_table.ts";

const CORPUS = new URL("./fuzz_corpus/", import.meta.url).pathname;
const SCRATCH = new URL("../var/tests/", import.meta.url).pathname;
const SECONDS = Number(Deno.env.get("FUZZ_SECONDS") ?? 42);
const enc = new TextEncoder();
const dec = new TextDecoder();
const print = (line: string) => Deno.stdout.writeSync(enc.encode(line + "\n"));

Deno.test("fuzz: every target with a fixed seed, bounded time, no failures", async () => {
  const report = await runFuzz(TARGETS, {
    seed: DEFAULT_SEED,
    timeBudgetMs: SECONDS * 1000,
    knownBugs: KNOWN_BUGS,
    shrinkMs: 1500,
    log: print,
  });
  for (const t of report.targets) assert.ok(t.inputs > 0, `${t.name}: no inputs tried`);
  const kept = report.targets.flatMap((t) => t.kept);
  assert.equal(
    report.failures,
    0,
    kept.map((f) => `${f.target} (input ${f.iteration}): ${f.message}\n  hex ${toHex(f.input)}`)
      .join("\n"),
  );
});

Deno.test("fuzz corpus: every saved input replays clean", async () => {
  const entries = await readCorpus(CORPUS);
  assert.ok(entries.length >= 10, "the corpus holds the hand-written inputs");
  const failures = await replayCorpus(entries, TARGETS, KNOWN_BUGS);
  for (const f of failures.filter((f) => f.knownBug)) {
    print(`  corpus ${f.file}: known bug ${f.knownBug}`);
  }
  const fresh = failures.filter((f) => !f.knownBug);
  assert.deepEqual(fresh.map((f) => `${f.file}: ${f.message}`), []);
  print(`fuzz corpus: ${entries.length} inputs replayed, ${fresh.length} failures`);
});

Deno.test("fuzz: every known bug still reproduces (delete fixed ones from known_bugs.ts)", async () => {
  for (const bug of KNOWN_BUGS) {
    const target = TARGETS.find((t) => t.name === bug.target);
    assert.ok(target, `${bug.id}: no target ${bug.target}`);
    await target.setup?.();
    try {
      const err = await tryCheck(target, bug.input, true);
      assert.ok(
        err !== undefined && await bug.matches(bug.input, err),
        `${bug.id} no longer reproduces: delete it from scripts/fuzz/known_bugs.ts ` +
          `and un-ignore its regression test in tests/fuzz_test.ts`,
      );
    } finally {
      await target.teardown?.();
    }
  }
});

// ---------------------------------------------------------------------------
// Regression inputs for the bugs the fuzzer found. All seven of the first
// run were fixed in 5504f7e. A new open bug gets `ignore: true` and a
// `// BUG:` comment here until it is fixed.

// Fixed (5504f7e): parseMailbox() (src/protocol/address.ts) accepted any
// character after a backslash in a quoted local part, so `<"\<CR>">` parsed
// and addressText() held a CR; "\<TAB>" and "\é" parsed but could not be
// rendered back. RFC 5321 quoted-pairSMTP is %d92 %d32-126.
Deno.test({
  name: "regression: parsePath refuses a quoted-pair with a control or 8-bit character",

  fn() {
    for (const c of ["\r", "\n", "\0", "\t", "\x7f", "\u00e9"]) {
      for (const strict of [true, false]) {
        const p = parsePath(`<"\\${c}"@example.org>`, { strict });
        assert.equal(p.ok, false, JSON.stringify(c));
      }
    }
    assert.equal(parsePath('<"\\\r">', { strict: true }).ok, false);
    // Printable quoted-pairs stay valid.
    assert.equal(parsePath('<"a\\"b\\\\c\\ d"@example.org>', { strict: true }).ok, true);
  },
});

// Fixed (5504f7e): parseCommand() (src/protocol/parse_command.ts) built the
// string of an all-ASCII line with String.fromCharCode.apply(null, line):
// over ~125 000 bytes that overflowed the stack (RangeError). Reachable only
// with line_length_limit raised that high.
Deno.test({
  name: "regression: parseCommand takes a 200 000-byte ASCII line",

  fn() {
    const r = parseCommand(new Uint8Array(200_000).fill(0x4e));
    assert.ok("verb" in r);
  },
});

// Fixed (5504f7e): parseCommand() trimmed trailing white space with
// text.replace(/[ \t]+$/, ""), quadratic in a run of blanks that is not at
// the end: ~5 ms for a 2048-byte line, ~6 s for 64 KiB (found by the
// fuzzer's slowest-input report). Input: "A" + 65 534 tabs + "A".
Deno.test({
  name: "regression: parseCommand is linear in a run of white space",

  fn() {
    const line = new Uint8Array(65_536).fill(0x09);
    line[0] = line[65_535] = 0x41;
    const t0 = performance.now();
    const r = parseCommand(line);
    const ms = performance.now() - t0;
    assert.ok("verb" in r && r.verb === "A");
    // Quadratic took ~6 s; linear takes a few ms. 1 s leaves room for a loaded host.
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
  },
});

// Fixed: parseTextTable() and cidrTable() split "key value" with a regular
// expression that backtracked quadratically on long blank runs: a 100 KB
// table took 30 s to load (found by the 10-minute fuzz run's slowest-input report).
Deno.test({
  name: "regression: table lines are split in linear time",
  fn() {
    const line = "key" + " \t".repeat(50_000) + "x";
    const t0 = performance.now();
    const entries = parseTextTable(line + "\n" + "k2" + " ".repeat(100_000) + "v\n");
    const ms = performance.now() - t0;
    assert.equal(entries.get("key"), "x");
    // Quadratic took seconds (30 s for 100 KB); 1 s leaves room for a loaded host.
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
  },
});

// Fixed (5504f7e): readDotBody() (src/io/dot_reader.ts) removed the stuffed
// dot only from a piece longer than one byte; with maxLine 1 (or 2, for a
// line ".\r…") the first piece of a longer line can be "." alone, and the
// dot was kept. Unreachable through the configuration (line_length_limit >= 80).
Deno.test({
  name: "regression: readDotBody unstuffs dots whatever maxLine is",

  async fn() {
    const cases: [string, number, string[]][] = [
      ["..x\r\n.\r\n", 1, [".x"]],
      ["..\r\n.\r\n", 1, ["."]],
      // The bare CR left after the dot is content, a space.
      [".\rX\r\n.\r\n", 2, [" X"]],
    ];
    for (const [input, maxLine, lines] of cases) {
      for (const chunking of ["whole", "bytes"] as const) {
        for (const runs of [true, false]) {
          const { result, sink } = await runDot(enc.encode(input), {
            maxLine,
            maxBytes: 1_000_000,
            bareNewline: "normalize",
            bufferSize: 16384,
            chunking,
            chunkSeed: 1,
            asyncSink: false,
            runs,
          });
          assert.equal(result.kind, "complete");
          assert.deepEqual(sink.stored.map((l) => dec.decode(l)), lines, JSON.stringify(input));
        }
      }
    }
  },
});

// Fixed (5504f7e): resolveConfigText() (src/config/load.ts, findKeyLine)
// built a RegExp from every key; a ~35 000-character key threw SyntaxError
// ("Regular expression too large") instead of a ConfigError.
Deno.test({
  name: "regression: a very long key is a ConfigError",

  fn() {
    assert.throws(
      () => resolveConfigText(`${"a".repeat(40_000)} = 1\n`, { file: "fuzz.toml" }),
      ConfigError,
    );
  },
});

async function withQueueFile(
  bytes: Uint8Array,
  fn: (path: string) => Promise<void>,
): Promise<void> {
  await Deno.mkdir(SCRATCH, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: SCRATCH, prefix: "fuzz_test_" });
  try {
    const path = join(dir, "4Q1Zb2cD3fG");
    await Deno.writeFile(path, bytes);
    await Deno.chmod(path, 0o700);
    await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// Fixed (5504f7e): readQueueFile() (src/queue/queue_reader.ts) converted the
// T record with new Date(...).toISOString() unchecked; a corrupted T record
// ("x 0") threw RangeError out of readQueueFile (and `smtpd queue list`).
Deno.test({
  name: "regression: readQueueFile reports a corrupted time record instead of throwing",

  async fn() {
    const buf = new RecordBuffer();
    buf.putText(REC.time, "x 0");
    buf.putText(REC.from, "a@example.org");
    buf.put(REC.end, new Uint8Array(0));
    await withQueueFile(buf.bytes(), async (path) => {
      const entry = await readQueueFile(path, "incoming");
      assert.equal(entry.arrival, undefined);
      assert.equal(entry.sender, "a@example.org");
    });
  },
});

// Fixed (5504f7e): readQueueFile() set complete when an E record appeared
// anywhere; a corrupted or misaligned file whose last record is not E read
// as complete. Input: E(0) N("a").
Deno.test({
  name: "regression: readQueueFile needs the end record to be the last record",

  async fn() {
    await withQueueFile(Uint8Array.of(REC.end, 0, REC.norm, 1, 0x61), async (path) => {
      const entry = await readQueueFile(path, "incoming");
      assert.equal(entry.complete, false);
    });
  },
});
