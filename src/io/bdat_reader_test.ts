import assert from "node:assert/strict";
import { chunkings, ChunkSource } from "./_chunk_source.ts";
import { BdatBody, type BdatBodyOptions, discardChunk } from "./bdat_reader.ts";
import type { BodySink } from "./dot_reader.ts";
import { type ByteSource, LineReader, ReadTimeoutError } from "./line_reader.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Records lines; pieces of a long line are joined with "|". */
class Lines implements BodySink {
  out: string[] = [];
  #cont = false;
  line(buf: Uint8Array, start: number, end: number, partial: boolean): void {
    const text = dec.decode(buf.subarray(start, end));
    if (this.#cont) this.out[this.out.length - 1] += "|" + text;
    else this.out.push(text);
    this.#cont = partial;
  }
}

/** Plays "BDAT"-framed input: each [size, text] chunk, then what follows. */
async function play(
  chunks: number[],
  input: string,
  options: BdatBodyOptions = {},
  cut: Uint8Array[] = [enc.encode(input)],
) {
  const reader = new LineReader(new ChunkSource(cut), { bufferSize: 8 });
  const sink = new Lines();
  const body = new BdatBody(sink, options);
  for (const n of chunks) assert(await body.readChunk(reader, n), "chunk read");
  const result = await body.finish();
  const next = await reader.readLine(100);
  return {
    result,
    lines: sink.out,
    rest: next ? dec.decode(next.bytes) : "",
    octets: body.octets,
    queuedSize: body.queuedSize,
  };
}

Deno.test("BdatBody: chunks are cut into lines across chunk and read boundaries", async () => {
  const input = "Subject: hi\r\n\r\nbody one\r\n.not unstuffed\r\n" + "QUIT\r\n";
  for (const [label, cut] of chunkings(input)) {
    const { result, lines, rest, octets } = await play([5, 20, 16], input, {}, cut);
    assert.deepEqual(lines, ["Subject: hi", "", "body one", ".not unstuffed"], label);
    assert.deepEqual(result, { kind: "complete", size: 41 }, label);
    assert.deepEqual(octets, 41, label);
    // What follows the chunk stays for the command reader.
    assert.deepEqual(rest, "QUIT", label);
  }
});

Deno.test("BdatBody: the last line needs no line end; a dot line is content", async () => {
  const { result, lines } = await play([9], ".\r\nlast.x");
  assert.deepEqual(lines, [".", "last.x"]);
  assert.deepEqual(result, { kind: "complete", size: 11 });
});

Deno.test("BdatBody: BDAT 0 LAST is an empty body", async () => {
  const { result, lines } = await play([0], "");
  assert.deepEqual(lines, []);
  assert.deepEqual(result, { kind: "complete", size: 0 });
});

Deno.test("BdatBody: a CRLF split between two chunks is one line end", async () => {
  const { lines } = await play([2, 4], "a\r\nb\r\n");
  assert.deepEqual(lines, ["a", "b"]);
  // A CR that ends a chunk before one that does not start with LF is content.
  const bare = await play([2, 3], "a\rb\r\n");
  assert.deepEqual(bare.lines, ["a b"]);
});

Deno.test("BdatBody: long lines are handed on in pieces of line_length_limit", async () => {
  const { lines, result } = await play([3, 9], "abcdefghij\r\n", { maxLine: 4 });
  assert.deepEqual(lines, ["abcd|efgh|ij"]);
  assert.deepEqual(result.kind, "complete");
});

Deno.test("BdatBody: a bare LF is a line break or refuses the message; a bare CR is a space", async () => {
  const input = "a\nb\rc\r\r\n";
  const norm = await play([input.length], input);
  assert.deepEqual(norm.lines, ["a", "b c "]);
  assert.deepEqual(norm.result.kind, "complete");
  const rej = await play([input.length], input, { bareNewline: "reject" });
  assert.deepEqual(rej.result.kind, "bareNewline");
  assert.deepEqual(rej.lines, []);
  // A CR that ends the last chunk is content too, counted (Postfix: 7 for "a\r\nb\r").
  for (const options of [{}, { bareNewline: "reject" as const }]) {
    const tail = await play([5], "a\r\nb\r", options);
    assert.deepEqual(tail.result, { kind: "complete", size: 7 });
    assert.deepEqual(tail.lines, ["a", "b "]);
    assert.equal(tail.queuedSize, 7);
  }
});

Deno.test("BdatBody: the size limit counts across chunks and stops storing", async () => {
  const { result, lines } = await play([6, 6], "12345\r\n6789\r\n", { maxBytes: 8 });
  assert.deepEqual(result.kind, "tooBig");
  assert.deepEqual(lines, ["12345"]);
});

Deno.test("BdatBody: a huge announced chunk does not grow the buffer beyond streaming size", async () => {
  // 1 MiB arrives in 256 KiB reads; the reader's buffer stays bounded and
  // the sink gets lines of at most maxLine bytes.
  const piece = new Uint8Array(256 * 1024).fill(0x61);
  const reader = new LineReader(new ChunkSource([piece, piece, piece, piece]));
  let longest = 0;
  const body = new BdatBody({
    line: (_b, s, e) => {
      longest = Math.max(longest, e - s);
    },
  }, { maxLine: 2048, maxBytes: 1 << 30 });
  assert.ok(await body.readChunk(reader, 4 * piece.length));
  assert.ok(reader.buffer.byteLength <= 65536, `buffer ${reader.buffer.byteLength}`);
  assert.deepEqual(longest, 2048);
  // The client announced more than it sent: the input ends.
  assert.deepEqual(await body.readChunk(reader, 1), false);
});

Deno.test("discardChunk: drops exactly the chunk and keeps the next command", async () => {
  for (const [label, cut] of chunkings("RSET\r\nQUIT\r\nNOOP\r\n")) {
    const reader = new LineReader(new ChunkSource(cut), { bufferSize: 8 });
    assert.ok(await discardChunk(reader, 12), label);
    const line = await reader.readLine(100);
    assert.deepEqual(dec.decode(line!.bytes), "NOOP", label);
  }
  const short = new LineReader(new ChunkSource([enc.encode("abc")]));
  assert.deepEqual(await discardChunk(short, 10), false);
});

Deno.test("BdatBody: queuedSize counts as Postfix's act_size, each line or piece plus 2, whatever ended it", async () => {
  // CRLF lines: the octets.
  assert.equal((await play([8], "ab\r\ncd\r\n")).queuedSize, 8);
  // A last line without a line end still counts 2 (Postfix: 44 for these 42 octets).
  const noEnd = await play([19, 3, 20], "Subject: chunks\r\n\r\nQUIT\r\nRSET\r\n..dots stay");
  assert.equal(noEnd.octets, 42);
  assert.equal(noEnd.queuedSize, 44);
  // A bare LF line counts 2, as a CRLF one.
  assert.equal((await play([4], "a\nb\n")).queuedSize, 6);
  // A 5000-octet line in pieces of 2048: three records (Postfix: 5006).
  const long = await play([5002], "z".repeat(5000) + "\r\n", { maxLine: 2048 });
  assert.equal(long.queuedSize, 5006);
});

Deno.test("BdatBody: a sink that takes each line at once gets every line in view without a wait per line", async () => {
  // A promise and its microtask per line (three of them, once) made a body
  // of 4-byte lines cost ten times the CPU of the same body sent by DATA.
  const text = "--\r\n".repeat(1000) + "x".repeat(5000) + "\r\nlast";
  const reader = new LineReader(new ChunkSource([enc.encode(text)]), { bufferSize: 16384 });
  assert(await reader.ensure(1));
  assert.equal(reader.peek().length, text.length, "all of it in view");
  const sink = new Lines();
  const body = new BdatBody(sink, { maxLine: 2048 });
  const reading = body.readChunk(reader, text.length);
  // Nothing awaited yet: the lines came from readChunk's own call.
  assert.equal(sink.out.length, 1001);
  assert(await reading);
  await body.finish();
  assert.equal(sink.out.length, 1002);
  assert.equal(sink.out[1000], "x".repeat(2048) + "|" + "x".repeat(2048) + "|" + "x".repeat(904));
  assert.equal(sink.out[1001], "last");
});

/** Hands out one line per read, each after a pause. */
class SlowLines implements ByteSource {
  #lines: Uint8Array[];
  constructor(lines: string[], readonly pauseMs: number) {
    this.#lines = lines.map((l) => enc.encode(l));
  }
  async read(p: Uint8Array): Promise<number | null> {
    await new Promise((r) => setTimeout(r, this.pauseMs));
    const l = this.#lines.shift();
    if (l === undefined) return null;
    p.set(l);
    return l.length;
  }
}

Deno.test("BdatBody and discardChunk: each line has the timeout to arrive, not the whole chunk", async () => {
  // Sixteen lines 50 ms apart: 800 ms for the chunk, over the timeout
  // (600 ms), 50 ms for each line, well within it (a loaded host may delay
  // a line's timer by hundreds of ms).
  const body = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n"];
  const lines = ["Subject: x\r\n", "\r\n", ...body.map((l) => `${l}\r\n`)];
  const size = lines.join("").length;
  const kept = new LineReader(new SlowLines(lines, 50), { timeoutMs: 600 });
  kept.renewDeadline(); // as the BDAT command line's read leaves it
  const sink = new Lines();
  assert.ok(await new BdatBody(sink).readChunk(kept, size));
  assert.deepEqual(sink.out, ["Subject: x", "", ...body]);
  const dropped = new LineReader(new SlowLines(lines, 50), { timeoutMs: 600 });
  dropped.renewDeadline();
  assert.ok(await discardChunk(dropped, size));
  // A line that does not come in time still times out.
  const stalled = new LineReader(new SlowLines(["abc", "def\r\n"], 700), { timeoutMs: 300 });
  stalled.renewDeadline();
  await assert.rejects(new BdatBody(new Lines()).readChunk(stalled, 8), ReadTimeoutError);
});

Deno.test("BdatBody: a line of exactly line_length_limit bytes and a line end counts as Postfix's two records", async () => {
  const x = "x".repeat(2048);
  // [chunk sizes, input, Postfix 3.7's "N bytes queued" (side by side)]
  const cases: [number[], string, number][] = [
    [[2050], `${x}\r\n`, 2052],
    [[2049, 1], `${x}\r\n`, 2052],
    [[2048, 2], `${x}\r\n`, 2052],
    [[2049], `${x}\n`, 2052],
    [[4098], `${x}${x}\r\n`, 4102],
    // No line end: the last chunk ends the line, one record.
    [[2048], x, 2050],
    [[4096], `${x}${x}`, 4100],
    // One byte less or more: as before.
    [[2049], `${x.slice(1)}\r\n`, 2049],
    [[2051], `${x}y\r\n`, 2053],
  ];
  for (const [chunks, input, want] of cases) {
    const { queuedSize, result } = await play(chunks, input);
    assert.equal(result.kind, "complete");
    assert.equal(queuedSize, want, `${chunks} ${JSON.stringify(input.slice(-3))}`);
  }
});
