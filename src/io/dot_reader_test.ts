import assert from "node:assert/strict";
import {
  type BodySink,
  type DotBodyResult,
  readDotBody,
  type ReadDotBodyOptions,
} from "./dot_reader.ts";
import { LineReader } from "./line_reader.ts";
import { chunkings, ChunkSource } from "./_chunk_source.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Records sink calls: each piece with its partial flag. With `runs`, it
 * takes runs of lines too, and checks each run's layout as it comes.
 */
class RecordingSink implements BodySink {
  pieces: [string, boolean][] = [];
  /** Lines that came in runs. */
  runLines = 0;
  readonly takesRuns: boolean;
  constructor(runs: boolean) {
    this.takesRuns = runs;
  }
  line(buf: Uint8Array, start: number, end: number, partial: boolean): void {
    // The bytes are only valid during the call: decode now.
    this.pieces.push([dec.decode(buf.subarray(start, end)), partial]);
  }
  lines(buf: Uint8Array, start: number, end: number, lens: Uint16Array, count: number): void {
    assert.ok(this.takesRuns, "a run while runs are off");
    assert.ok(count > 0);
    let p = start;
    for (let i = 0; i < count; i++) {
      const len = lens[i] ?? -1;
      assert.deepEqual([buf[p + len], buf[p + len + 1]], [13, 10], "each line ends with CRLF");
      this.line(buf, p, p + len, false);
      p += len + 2;
    }
    assert.equal(p, end, "the run ends after its last line");
    this.runLines += count;
  }
  /** Pieces joined back into whole lines. */
  joined(): string[] {
    const out: string[] = [];
    let cur = "";
    for (const [text, partial] of this.pieces) {
      cur += text;
      if (!partial) {
        out.push(cur);
        cur = "";
      }
    }
    assert.equal(cur, "", "a partial piece was never finished");
    return out;
  }
}

interface Run {
  result: DotBodyResult;
  sink: RecordingSink;
  /** What the line reader returns after the body: the next "commands". */
  after: string[];
}

async function run(
  chunks: Uint8Array[],
  options: ReadDotBodyOptions = {},
  runs = true,
): Promise<Run> {
  const reader = new LineReader(new ChunkSource(chunks), { bufferSize: 16 });
  const sink = new RecordingSink(runs);
  const result = await readDotBody(reader, sink, options);
  const after: string[] = [];
  for (;;) {
    const line = await reader.readLine(1000);
    if (line === null) break;
    after.push(dec.decode(line.bytes));
  }
  return { result, sink, after };
}

// [what, input, expected lines, expected size]; all complete, then "QUIT" follows.
const COMPLETE: [string, string, string[], number][] = [
  ["an empty body", ".\r\n", [], 0],
  ["one line", "a\r\n.\r\n", ["a"], 3],
  ["an empty line", "\r\n.\r\n", [""], 2],
  ["headers and body", "Subject: x\r\n\r\nhello\r\n.\r\n", ["Subject: x", "", "hello"], 21],
  ["a stuffed dot", "..\r\n.\r\n", ["."], 3],
  ["a stuffed dot line start", "..x\r\n...\r\n.\r\n", [".x", ".."], 8],
  ["a dot inside a line", "a.b\r\n.\r\n", ["a.b"], 5],
  ["a dot line with trailing space", ". \r\n.\r\n", [" "], 3],
  // SMTP smuggling (CVE-2023-51764): only <CR><LF>.<CR><LF> ends the body.
  ["<LF>.<LF> as content", "a\n.\nb\r\n.\r\n", ["a", ".", "b"], 9],
  ["<CR><LF>.<LF> as content", "a\r\n.\nb\r\n.\r\n", ["a", ".", "b"], 9],
  ["<LF>.<CR><LF> as content", "a\n.\r\nb\r\n.\r\n", ["a", ".", "b"], 9],
  ["<LF>.<CR><LF> at the start", "\n.\r\nb\r\n.\r\n", ["", ".", "b"], 8],
  ["<CR><LF><LF>.<CR><LF> as content", "a\r\n\n.\r\nb\r\n.\r\n", ["a", "", ".", "b"], 11],
  ["a bare CR before the dot", "a\r.\r\nb\r\n.\r\n", ["a .", "b"], 8],
  ["a bare CR, then a dot, at the start", "\r.\r\n.\r\n", [" ."], 4],
  // A bare CR is content, a space, as Postfix's cleanup stores it.
  ["a bare CR inside a line", "a\rb\r\n.\r\n", ["a b"], 5],
  ["two bare CRs", "a\r\rb\r\n.\r\n", ["a  b"], 6],
  ["a CR before CRLF", "a\r\r\n.\r\n", ["a "], 4],
  ["CRs before CRLF", "a\r\r\r\n.\r\n", ["a  "], 5],
  ["a bare CR in a bare-LF line", "a\rb\nc\r\n.\r\n", ["a b", "c"], 8],
  ["a bare-LF line before a CRLF line", "ab\ncd\r\n.\r\n", ["ab", "cd"], 8],
  // Other control bytes and 8-bit text are plain content (runs look at four bytes at a time).
  ["tabs, form feeds and NULs", "a\tb\f\r\n\0x\v\r\n.\r\n", ["a\tb\f", "\0x\v"], 11],
  ["8-bit text", "\u00e9t\u00e9\r\n\u00fc\u00f1\u00fc\u00f1\r\n.\r\n", [
    "\u00e9t\u00e9",
    "\u00fc\u00f1\u00fc\u00f1",
  ], 17],
  [
    "lines of 127, 128 and 200 bytes",
    `${"a".repeat(127)}\r\n${"b".repeat(128)}\r\n${"c".repeat(200)}\r\nd\r\n.\r\n`,
    ["a".repeat(127), "b".repeat(128), "c".repeat(200), "d"],
    464,
  ],
];

for (const [what, input, lines, size] of COMPLETE) {
  Deno.test(`readDotBody() reads ${what}, for every chunking, in runs and line by line`, async () => {
    for (const runs of [true, false]) {
      for (const [how, chunks] of chunkings(`${input}QUIT\r\n`)) {
        const r = await run(chunks, {}, runs);
        assert.deepEqual(r.result, { kind: "complete", size }, `${how}, runs ${runs}`);
        assert.deepEqual(r.sink.joined(), lines, `${how}, runs ${runs}`);
        assert.deepEqual(r.after, ["QUIT"], `${how}, runs ${runs}`);
      }
    }
  });
}

Deno.test("readDotBody() hands plain lines on in runs, and each special line alone", async () => {
  const plain = Array.from({ length: 300 }, (_, i) => `line ${i} ${"x".repeat(i % 150)}`);
  const body = [
    ...plain.slice(0, 100),
    "..stuffed",
    ...plain.slice(100, 200),
    "a\rb",
    ...plain.slice(200),
  ];
  const input = `${body.join("\r\n")}\r\n.\r\nQUIT\r\n`;
  const r = await run([enc.encode(input)], { maxLine: 1000 });
  assert.equal(r.result.kind, "complete");
  assert.deepEqual(r.sink.joined(), [
    ...plain.slice(0, 100),
    ".stuffed",
    ...plain.slice(100, 200),
    "a b",
    ...plain.slice(200),
  ]);
  // All but the first line of each stretch (the reader's buffer starts small
  // and grows) and the two special lines came in runs.
  assert.ok(r.sink.runLines > 250, `${r.sink.runLines} lines in runs`);
  const noRuns = await run([enc.encode(input)], { maxLine: 1000 }, false);
  assert.deepEqual(noRuns.sink.pieces, r.sink.pieces);
  assert.equal(noRuns.sink.runLines, 0);
  // A line longer than maxLine is split into pieces, never part of a run.
  const short = await run([enc.encode(input)], { maxLine: 100 });
  assert.deepEqual(short.sink.joined(), r.sink.joined());
  assert.ok(short.sink.pieces.every(([t]) => t.length <= 100));
});

Deno.test("readDotBody() leaves lines of 16384 bytes and more out of runs (three length bytes)", async () => {
  const long = "x".repeat(20000);
  const r = await run([enc.encode(`a\r\n${long}\r\nb\r\n.\r\nQUIT\r\n`)], { maxLine: 30000 });
  assert.deepEqual(r.sink.joined(), ["a", long, "b"]);
  let inRun = 0;
  const sink: BodySink = {
    takesRuns: true,
    line: () => {},
    lines: (_buf, _start, _end, lens, count) => {
      for (let i = 0; i < count; i++) inRun = Math.max(inRun, lens[i] ?? 0);
    },
  };
  const reader = new LineReader(new ChunkSource([enc.encode(`a\r\n${long}\r\n.\r\n`)]), {
    bufferSize: 65536,
  });
  assert.equal((await readDotBody(reader, sink, { maxLine: 30000 })).kind, "complete");
  assert.ok(inRun < 16384, `a ${inRun}-byte line in a run`);
});

Deno.test("readDotBody() never stores a CR or LF", async () => {
  for (const [, input] of COMPLETE) {
    const r = await run([enc.encode(input)]);
    for (const [text] of r.sink.pieces) assert.ok(!/[\r\n]/.test(text), JSON.stringify(input));
  }
});

const SMUGGLED = [
  "MAIL FROM:<evil@attacker.example>",
  "RCPT TO:<victim@example.net>",
  "DATA",
  "From: ceo@example.net",
  "",
  "smuggled",
];

for (const sep of ["\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\r"]) {
  Deno.test(`readDotBody() yields one message when ${JSON.stringify(sep)} hides a second one`, async () => {
    const input = `Subject: hi\r\n\r\nbody${sep}${SMUGGLED.join("\r\n")}\r\n.\r\nQUIT\r\n`;
    for (const [how, chunks] of chunkings(input)) {
      const r = await run(chunks);
      assert.equal(r.result.kind, "complete", how);
      const lines = r.sink.joined();
      // Everything up to the real end of data belongs to this one message
      // (".\r" unstuffed: the bare CR left is a space before the first line).
      const want = sep === "\r\n.\r" ? [` ${SMUGGLED[0]}`, ...SMUGGLED.slice(1)] : SMUGGLED;
      assert.deepEqual(lines.slice(-SMUGGLED.length), want, how);
      assert.deepEqual(r.after, ["QUIT"], how);
    }
  });
}

for (const sep of ["\n.\n", "\r\n.\n", "\n.\r\n"]) {
  Deno.test(`readDotBody() refuses ${JSON.stringify(sep)} in "reject" mode and stays in sync`, async () => {
    const input = `body${sep}${SMUGGLED.join("\r\n")}\r\n.\r\nQUIT\r\n`;
    for (const [how, chunks] of chunkings(input)) {
      const r = await run(chunks, { bareNewline: "reject" });
      assert.equal(r.result.kind, "bareNewline", how);
      assert.deepEqual(r.after, ["QUIT"], how);
      assert.ok(!r.sink.joined().includes("DATA"), `${how}: nothing after the bare LF stored`);
    }
  });
}

Deno.test('readDotBody() keeps a bare CR as a space in "reject" mode (only a bare LF refuses)', async () => {
  const r = await run([enc.encode("a\rb\r\nc\r\n.\r\nQUIT\r\n")], { bareNewline: "reject" });
  assert.deepEqual(r.result, { kind: "complete", size: 8 });
  assert.deepEqual(r.sink.joined(), ["a b", "c"]);
  assert.deepEqual(r.after, ["QUIT"]);
});

Deno.test('readDotBody() completes a clean body in "reject" mode', async () => {
  const r = await run([enc.encode("a\r\n..b\r\n.\r\n")], { bareNewline: "reject" });
  assert.deepEqual(r.result, { kind: "complete", size: 7 });
  assert.deepEqual(r.sink.joined(), ["a", ".b"]);
});

Deno.test("readDotBody() reports tooBig only after reading to the end of data", async () => {
  const body = Array.from({ length: 20 }, (_, i) => `line ${String(i).padStart(4, "0")}`);
  const input = `${body.join("\r\n")}\r\n.\r\nQUIT\r\n`;
  for (const [how, chunks] of chunkings(input)) {
    const r = await run(chunks, { maxBytes: 50 });
    assert.deepEqual(r.result, { kind: "tooBig", size: 20 * 11 }, how);
    assert.deepEqual(r.after, ["QUIT"], how);
    // Storing stops once the limit is passed: 4 lines of 11 bytes fit in 50.
    assert.deepEqual(r.sink.joined(), body.slice(0, 4), how);
  }
});

Deno.test("readDotBody() accepts a body of exactly maxBytes", async () => {
  const r = await run([enc.encode("0123456789\r\nabc\r\n.\r\n")], { maxBytes: 17 });
  assert.deepEqual(r.result, { kind: "complete", size: 17 });
  const r2 = await run([enc.encode("0123456789\r\nabc\r\n.\r\n")], { maxBytes: 16 });
  assert.deepEqual(r2.result, { kind: "tooBig", size: 17 });
});

const DISCONNECTED: [string, string][] = [
  ["no end line", "a\r\nb\r\n"],
  ["an unterminated last line", "a\r\nb"],
  ["a dot without CRLF", "a\r\n."],
  ["a dot and CR only", "a\r\n.\r"],
  ["a dot ended by a bare LF", "a\r\n.\n"],
  ["a dot after a bare LF", "a\n.\r\n"],
  ["nothing at all", ""],
];

for (const [what, input] of DISCONNECTED) {
  Deno.test(`readDotBody() reports disconnected for ${what}`, async () => {
    for (const [how, chunks] of chunkings(input)) {
      const r = await run(chunks);
      assert.equal(r.result.kind, "disconnected", how);
    }
  });
}

// Postfix 3.7's "lost connection after DATA (N bytes)" for the same bytes:
// whole lines only, unstuffed, CRLF counted as 2.
const LOST_SIZES: [string, number][] = [
  ["abcd", 0],
  ["abcd\r\n", 6],
  ["abcd\r\nefgh", 6],
  ["Subject: x\r\n\r\nbody\r\n", 20],
  ["ab\r\n..dot\r\n", 10],
];

for (const [input, size] of LOST_SIZES) {
  Deno.test(`readDotBody() counts ${size} bytes when the client leaves after ${JSON.stringify(input)}`, async () => {
    for (const [how, chunks] of chunkings(input)) {
      const r = await run(chunks);
      assert.deepEqual(r.result, { kind: "disconnected", size }, how);
    }
  });
}

Deno.test("readDotBody() splits long lines into pieces that rejoin to the original", async () => {
  const long = Array.from({ length: 100 }, (_, i) => String.fromCharCode(65 + (i % 26))).join("");
  const lines = [long, `.${long}`, "short", `${long.slice(0, 8)}.`, long.slice(0, 16)];
  const input = `${lines.map((l) => (l.startsWith(".") ? `.${l}` : l)).join("\r\n")}\r\n.\r\n`;
  for (const [how, chunks] of chunkings(input)) {
    const r = await run(chunks, { maxLine: 8 });
    assert.equal(r.result.kind, "complete", how);
    assert.ok(r.sink.pieces.every(([t]) => t.length <= 8), `${how}: pieces at most maxLine`);
    assert.ok(r.sink.pieces.some(([, partial]) => partial), how);
    assert.deepEqual(r.sink.joined(), lines, how);
  }
});

Deno.test("readDotBody() does not unstuff or end on a dot that continues a long line", async () => {
  // "abcdefgh" is a partial piece; the "." and ".x" that follow are its tail.
  const input = "abcdefgh.\r\nabcdefgh.x\r\n.\r\nQUIT\r\n";
  const r = await run([enc.encode(input)], { maxLine: 8 });
  assert.deepEqual(r.result, { kind: "complete", size: 23 });
  assert.deepEqual(r.sink.joined(), ["abcdefgh.", "abcdefgh.x"]);
  assert.deepEqual(r.after, ["QUIT"]);
});

Deno.test("readDotBody() counts size without stuffing dots and with CRLF as 2", async () => {
  const r = await run([enc.encode("..\r\nab\na\rb\r\n.\r\n")]);
  // ".." -> "." (1 + 2), "ab" ended by a bare LF (2 + 2), "a\rb" (3 + 2).
  assert.deepEqual(r.result, { kind: "complete", size: 12 });
});

Deno.test("readDotBody() waits for an async sink", async () => {
  const order: string[] = [];
  const sink: BodySink = {
    line: async (buf, start, end) => {
      const text = dec.decode(buf.subarray(start, end));
      await new Promise((resolve) => setTimeout(resolve, 1));
      order.push(text);
    },
  };
  const reader = new LineReader(new ChunkSource([enc.encode("a\r\nb\r\n.\r\n")]));
  const result = await readDotBody(reader, sink);
  order.push("done");
  assert.deepEqual(result, { kind: "complete", size: 6 });
  assert.deepEqual(order, ["a", "b", "done"]);
});
