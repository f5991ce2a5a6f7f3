/**
 * Targets for the DATA reader: readDotBody() over a LineReader fed in
 * random chunks, checked against a small reference model of RFC 5321
 * §4.5.2 (only <CR><LF>.<CR><LF> ends the body, a leading dot is removed
 * from longer lines, bare LF ends a line, a bare CR is stored as a space),
 * and a round trip of dot-stuffed content.
 *
 * @module
 */

import { type BodySink, type DotBodyResult, readDotBody } from "../../../src/io/dot_reader.ts";
import { type ByteSource, LineReader } from "../../../src/io/line_reader.ts";
import { bytesEqual, concat, preview, utf8 } from "../bytes.ts";
import { dataStream, roundTripLines } from "../grammar.ts";
import { fnv1a, Rng } from "../prng.ts";
import { FuzzFailure, type FuzzTarget, unexpected } from "../target.ts";

const CR = 13;
const SPACE = 32;
const LF = 10;
const DOT = 46;

/** How a stream is cut into reads. */
export type Chunking = "whole" | "bytes" | "random";

/** The options of one run of the reader. */
export interface DotRun {
  maxLine: number;
  maxBytes: number;
  bareNewline: "normalize" | "reject";
  /** The LineReader's initial buffer size; 0 for its default. */
  bufferSize: number;
  chunking: Chunking;
  chunkSeed: number;
  asyncSink: boolean;
  /** Whether the sink takes runs of lines (the cleanup writer's body path). */
  runs: boolean;
}

/** A ByteSource that hands out its bytes in chunks of random size, then EOF. */
export class ChunkedSource implements ByteSource {
  #data: Uint8Array;
  #pos = 0;
  #rng: Rng;
  #chunking: Chunking;

  /**
   * @param data the whole stream
   * @param chunking how to cut it
   * @param seed seed for random chunk sizes
   */
  constructor(data: Uint8Array, chunking: Chunking, seed: number) {
    this.#data = data;
    this.#chunking = chunking;
    this.#rng = new Rng(seed);
  }

  /** @returns the next chunk size */
  #next(): number {
    if (this.#chunking === "whole") return Infinity;
    if (this.#chunking === "bytes") return 1;
    const r = this.#rng.int(10);
    const big = this.#data.length > 8192;
    if (r < (big ? 1 : 3)) return this.#rng.range(1, 3);
    if (r < 8) return this.#rng.range(1, 64);
    return this.#rng.range(1, 4096);
  }

  read(p: Uint8Array): Promise<number | null> {
    if (this.#pos >= this.#data.length) return Promise.resolve(null);
    const n = Math.min(p.length, this.#next(), this.#data.length - this.#pos);
    p.set(this.#data.subarray(this.#pos, this.#pos + n));
    this.#pos += n;
    return Promise.resolve(n);
  }
}

/** What the reference model expects from a stream. */
interface DotModel {
  /** Offset of the "." of the first valid end-of-data line, or -1. */
  dot: number;
  /** The stored lines (unstuffed, each bare CR a space), when the body ends. */
  lines: Uint8Array[];
  /** The body size as readDotBody counts it (unstuffed bytes + 2 per line). */
  size: number;
  /** Whether the body holds a bare LF. */
  bare: boolean;
}

/**
 * The reference model: where the body ends and what it holds.
 * @param input the stream after the DATA command line
 * @returns the model
 */
export function dotModel(input: Uint8Array): DotModel {
  let dot = -1;
  for (let i = 0; i + 2 < input.length; i++) {
    if (input[i] !== DOT || input[i + 1] !== CR || input[i + 2] !== LF) continue;
    // At the very start (the DATA line ended in CRLF) or right after a CRLF.
    if (i === 0 || (i >= 2 && input[i - 2] === CR && input[i - 1] === LF)) {
      dot = i;
      break;
    }
  }
  const lines: Uint8Array[] = [];
  let size = 0;
  let bare = false;
  if (dot >= 0) {
    let start = 0;
    for (let i = 0; i < dot; i++) {
      if (input[i] !== LF) continue;
      const crlf = i > start && input[i - 1] === CR;
      let line = input.subarray(start, crlf ? i - 1 : i);
      start = i + 1;
      if (!crlf) bare = true;
      if (line.length > 1 && line[0] === DOT) line = line.subarray(1);
      size += line.length + 2;
      lines.push(line.map((c) => c === CR ? SPACE : c));
    }
  }
  return { dot, lines, size, bare };
}

/** Collects what the reader stores, joining partial pieces into lines. */
export class CollectingSink implements BodySink {
  stored: Uint8Array[] = [];
  #pending: Uint8Array[] = [];
  #async: boolean;
  readonly takesRuns: boolean;
  bad: string | undefined;

  constructor(asyncSink: boolean, runs: boolean) {
    this.#async = asyncSink;
    this.takesRuns = runs;
  }

  lines(
    buf: Uint8Array,
    start: number,
    end: number,
    lens: Uint16Array,
    count: number,
  ): void | Promise<void> {
    if (!this.takesRuns) this.bad ??= "a run while runs are off";
    let p = start;
    for (let i = 0; i < count; i++) {
      const len = lens[i] ?? 0;
      if (buf[p + len] !== CR || buf[p + len + 1] !== LF) {
        this.bad ??= `run line ${i} does not end with CRLF: ${
          preview(buf.subarray(p, p + len + 2))
        }`;
      }
      if (this.#pending.length > 0) this.bad ??= "a run inside a partial line";
      void this.line(buf, p, p + len, false);
      p += len + 2;
    }
    if (p !== end) this.bad ??= `run of ${count} lines ends at ${p}, not ${end}`;
    if (this.#async) return Promise.resolve();
  }

  line(buf: Uint8Array, start: number, end: number, partial: boolean): void | Promise<void> {
    const bytes = buf.subarray(start, end);
    if (bytes.includes(CR) || bytes.includes(LF)) {
      this.bad ??= `stored piece holds CR/LF: ${preview(bytes)}`;
    }
    this.#pending.push(bytes.slice());
    if (!partial) {
      this.stored.push(concat(this.#pending));
      this.#pending = [];
    }
    if (this.#async) return Promise.resolve();
  }
}

/**
 * Reads what is left in a reader, rebuilding the bytes with their terminators.
 * @param reader the reader
 * @param max a line limit above the stream's length, so nothing comes back partial
 * @returns the bytes (a final unterminated fragment is dropped by the reader)
 */
async function drain(reader: LineReader, max: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (;;) {
    const line = await reader.readLine(max);
    if (line === null) return concat(parts);
    parts.push(line.bytes.slice());
    if (line.end === "crlf") parts.push(Uint8Array.of(CR, LF));
    else if (line.end === "lf") parts.push(Uint8Array.of(LF));
  }
}

/**
 * Runs readDotBody over a stream.
 * @param input the stream
 * @param run the options
 * @returns the result, the sink, and the bytes left after the body
 */
export async function runDot(
  input: Uint8Array,
  run: DotRun,
): Promise<{ result: DotBodyResult; sink: CollectingSink; rest: Uint8Array }> {
  const reader = new LineReader(
    new ChunkedSource(input, run.chunking, run.chunkSeed),
    run.bufferSize > 0 ? { bufferSize: run.bufferSize } : {},
  );
  const sink = new CollectingSink(run.asyncSink, run.runs);
  let result: DotBodyResult;
  try {
    result = await readDotBody(reader, sink, {
      maxLine: run.maxLine,
      maxBytes: run.maxBytes,
      bareNewline: run.bareNewline,
    });
  } catch (err) {
    throw unexpected("dot.throws", err);
  }
  return { result, sink, rest: await drain(reader, input.length + 1) };
}

function describe(run: DotRun): string {
  return `maxLine=${run.maxLine} maxBytes=${run.maxBytes} bareNewline=${run.bareNewline} ` +
    `bufferSize=${run.bufferSize} chunking=${run.chunking}/${run.chunkSeed} async=${run.asyncSink} ` +
    `runs=${run.runs}`;
}

/** Line limits: mostly what line_length_limit allows (>= 80), sometimes tiny. */
function pickMaxLine(rng: Rng, floor: number): number {
  return Math.max(floor, pickAnyMaxLine(rng));
}

function pickAnyMaxLine(rng: Rng): number {
  return rng.chance(0.1)
    ? rng.pick([1, 2, 3, 4, 7, 16])
    : rng.pick([80, 81, 100, 512, 998, 1000, 2048, 4096]);
}

/**
 * The runs for one input: options from the input's hash with random
 * chunking, the same in one chunk, and (thorough) a fixed matrix.
 * @param input the stream
 * @param thorough add the matrix
 * @param sizePressure whether small maxBytes values may be chosen
 * @param minMaxLine the smallest line limit to use (1: any)
 * @returns the runs
 */
export function runsFor(
  input: Uint8Array,
  thorough: boolean,
  sizePressure: boolean,
  minMaxLine = 1,
): DotRun[] {
  const rng = new Rng(fnv1a(input));
  const base: DotRun = {
    maxLine: pickMaxLine(rng, minMaxLine),
    maxBytes: sizePressure && rng.chance(0.3)
      ? rng.pick([0, 1, 10, 100, 1000, rng.int(input.length + 10)])
      : 1_000_000_000,
    bareNewline: rng.chance(0.5) ? "normalize" : "reject",
    bufferSize: rng.pick([0, 1, 7, 64, 1024, 4096, 16384]),
    chunking: "random",
    chunkSeed: rng.next(),
    asyncSink: rng.chance(0.3),
    runs: rng.chance(0.7),
  };
  // The second run is the production path: one chunk, the default buffer, runs of lines.
  const runs = [base, { ...base, chunking: "whole" as const, bufferSize: 0, runs: true }];
  if (thorough) {
    for (const maxLine of [1, 2, 80, 2048].map((n) => Math.max(n, minMaxLine))) {
      for (const bareNewline of ["normalize", "reject"] as const) {
        for (const chunking of ["whole", "bytes", "random"] as const) {
          if (chunking === "bytes" && input.length > 20_000) continue;
          runs.push({ ...base, maxLine, bareNewline, chunking, maxBytes: 1_000_000_000 });
        }
      }
    }
  }
  return runs;
}

function sameLines(a: Uint8Array[], b: Uint8Array[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i];
    const y = b[i];
    if (!x || !y || !bytesEqual(x, y)) return i;
  }
  return -1;
}

/**
 * Checks one run against the model.
 * @param input the stream
 * @param run the options
 */
async function checkRun(input: Uint8Array, run: DotRun): Promise<void> {
  const where = `${describe(run)} input=${preview(input)}`;
  const { result, sink, rest } = await runDot(input, run);
  if (sink.bad) throw new FuzzFailure("dot.stored-crlf", `${sink.bad} (${where})`);
  const kinds = ["complete", "tooBig", "bareNewline", "disconnected"];
  if (!kinds.includes(result.kind)) {
    throw new FuzzFailure("dot.kind", `unknown result ${JSON.stringify(result)} (${where})`);
  }
  const m = dotModel(input);
  if (m.dot < 0) {
    if (result.kind !== "disconnected") {
      throw new FuzzFailure(
        "dot.phantom-end",
        `no valid end line but got ${result.kind} (${where})`,
      );
    }
    if (rest.length !== 0) throw new FuzzFailure("dot.eof", `bytes after EOF (${where})`);
    return;
  }
  if (result.kind === "disconnected") {
    throw new FuzzFailure("dot.missed-end", `end line at ${m.dot} not seen (${where})`);
  }
  // Never past the first end line: the reader holds exactly what followed it.
  const after = input.subarray(m.dot + 3);
  const lastLf = after.lastIndexOf(LF);
  const expectedRest = after.subarray(0, lastLf + 1);
  if (!bytesEqual(rest, expectedRest)) {
    throw new FuzzFailure(
      "dot.remainder",
      `after the body the reader holds ${preview(rest)}, expected ${
        preview(expectedRest)
      } (${where})`,
    );
  }
  if (result.size !== m.size) {
    throw new FuzzFailure("dot.size", `size ${result.size}, model ${m.size} (${where})`);
  }
  const over = m.size > run.maxBytes;
  const rejectBare = run.bareNewline === "reject" && m.bare;
  const allowed = rejectBare
    ? (over ? ["tooBig", "bareNewline"] : ["bareNewline"])
    : (over ? ["tooBig"] : ["complete"]);
  if (!allowed.includes(result.kind)) {
    throw new FuzzFailure(
      "dot.result",
      `got ${result.kind}, expected ${
        allowed.join("/")
      } (bare=${m.bare} size=${m.size}) (${where})`,
    );
  }
  if (result.kind === "complete") {
    const i = sameLines(sink.stored, m.lines);
    if (i >= 0) {
      throw new FuzzFailure(
        "dot.content",
        `stored line ${i} is ${preview(sink.stored[i] ?? new Uint8Array())}, model ${
          preview(m.lines[i] ?? new Uint8Array())
        } (${sink.stored.length} vs ${m.lines.length} lines) (${where})`,
      );
    }
  }
}

/**
 * The dot_reader check.
 * @param input the stream
 * @param thorough add the option matrix
 * @param minMaxLine the smallest line limit to use
 */
export async function checkDotReader(
  input: Uint8Array,
  thorough: boolean,
  minMaxLine = 1,
): Promise<void> {
  for (const run of runsFor(input, thorough, true, minMaxLine)) await checkRun(input, run);
}

/** readDotBody() over arbitrary streams, checked against the model. */
export const dotReaderTarget: FuzzTarget = {
  name: "dot_reader",
  description: "readDotBody: never past the first CRLF.CRLF, no CR/LF stored, model-exact",
  generate: dataStream,
  check(input: Uint8Array, thorough: boolean): Promise<void> {
    return checkDotReader(input, thorough);
  },
};

const TRAILERS = [
  "",
  "QUIT\r\n",
  ".\r\n",
  "\r\n.\r\n",
  "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nsmuggled\r\n.\r\n",
  "..\r\n.\r\n",
];

/**
 * The round-trip input's lines: split at LF, CR bytes dropped.
 * @param input the input
 * @returns the original lines
 */
export function roundTripOriginals(input: Uint8Array): Uint8Array[] {
  const lines: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= input.length; i++) {
    if (i === input.length || input[i] === LF) {
      lines.push(input.subarray(start, i).filter((c) => c !== CR));
      start = i + 1;
    }
  }
  return lines;
}

/** Dot-stuffed random lines plus CRLF.CRLF come back exactly, whatever the chunking. */
export const dotRoundTripTarget: FuzzTarget = {
  name: "dot_roundtrip",
  description:
    "readDotBody: dot-stuffed lines + CRLF.CRLF round-trip exactly; the rest is untouched",
  generate: roundTripLines,
  check(input: Uint8Array, thorough: boolean): Promise<void> {
    return checkRoundTrip(input, thorough);
  },
};

/**
 * The dot_roundtrip check.
 * @param input LF-separated lines
 * @param thorough add the option matrix
 * @param minMaxLine the smallest line limit to use
 */
export async function checkRoundTrip(
  input: Uint8Array,
  thorough: boolean,
  minMaxLine = 1,
): Promise<void> {
  const originals = roundTripOriginals(input);
  const rng = new Rng(fnv1a(input) ^ 0x5bd1e995);
  const trailer = utf8(rng.pick(TRAILERS));
  const wire: Uint8Array[] = [];
  let size = 0;
  for (const line of originals) {
    if (line[0] === DOT) wire.push(Uint8Array.of(DOT));
    wire.push(line, Uint8Array.of(CR, LF));
    size += line.length + 2;
  }
  wire.push(utf8(".\r\n"), trailer);
  const stream = concat(wire);
  for (const run of runsFor(input, thorough, false, minMaxLine)) {
    const where = `${describe(run)} lines=${originals.length} stream=${preview(stream)}`;
    const { result, sink, rest } = await runDot(stream, run);
    if (sink.bad) throw new FuzzFailure("roundtrip.stored-crlf", `${sink.bad} (${where})`);
    if (result.kind !== "complete" || result.size !== size) {
      throw new FuzzFailure(
        "roundtrip.result",
        `got ${JSON.stringify(result)}, expected complete with size ${size} (${where})`,
      );
    }
    const i = sameLines(sink.stored, originals);
    if (i >= 0) {
      throw new FuzzFailure(
        "roundtrip.content",
        `line ${i} came back as ${preview(sink.stored[i] ?? new Uint8Array())}, sent ${
          preview(originals[i] ?? new Uint8Array())
        } (${where})`,
      );
    }
    if (!bytesEqual(rest, trailer)) {
      throw new FuzzFailure(
        "roundtrip.remainder",
        `after the body: ${preview(rest)}, expected ${preview(trailer)} (${where})`,
      );
    }
  }
}
