/**
 * Buffered line reader over a byte source. Lines are returned as views into
 * the buffer (no copies, no decoding), with the terminator that ended them:
 * CRLF, a bare LF, or none when the line was longer than the caller's
 * limit (then the first part comes back as a "partial" piece). Before any
 * read that would block, a hook runs, so pipelined replies are flushed
 * exactly when the client's input runs dry (RFC 2920 §3.2, Postfix style).
 *
 * @module
 */

import { Deadline } from "./deadline.ts";
import { FIRST_BUFFER, IoBuffers, STREAM_BUFFER } from "./io_buffers.ts";

/** Where bytes come from: a socket, stdin. */
export interface ByteSource {
  read(p: Uint8Array): Promise<number | null>;
}

/** How a returned line ended. */
export type LineEnd = "crlf" | "lf" | "partial";

/** One line (or partial piece) as a view into the reader's buffer. */
export interface Line {
  /** Line content without its terminator; valid until the next call. */
  readonly bytes: Uint8Array;
  readonly end: LineEnd;
}

/** Raised when no input arrives within the timeout. */
export class ReadTimeoutError extends Error {
  /**
   * Message content received when the wait ran out in DATA or BDAT (set by
   * their readers), for Postfix's `timeout after DATA (N bytes)` line.
   */
  bytes?: number;
  constructor() {
    super("Timed out waiting for client input");
    this.name = "ReadTimeoutError";
  }
}

/**
 * Whether a failed read means the client's connection ended: a reset, or
 * (through the TLS engine) a TLS session cut off without its close_notify.
 * The input has ended as surely as at a FIN, and is read as that end, so
 * that a client lost in DATA or BDAT is logged with the bytes it sent
 * (Postfix's `lost connection after DATA (N bytes)`), whatever way it left.
 * @param err what the read threw
 * @returns true for a connection the client reset or aborted
 */
function clientReset(err: unknown): boolean {
  return err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted;
}

/** Options for {@linkcode LineReader}. */
export interface LineReaderOptions {
  /** Milliseconds to wait for input before {@linkcode ReadTimeoutError}. */
  timeoutMs?: number;
  /** Runs before a read that would block (flush pending replies). */
  beforeBlock?: () => Promise<void>;
  /** Initial buffer size. @default {4096} */
  bufferSize?: number;
  /** The thread's reusable buffers (the runtime's). @default {a set of its own} */
  buffers?: IoBuffers;
}

const LF = 10;
const CR = 13;
const DOT = 46;

/** Reads CRLF/LF-terminated lines from a {@linkcode ByteSource}. */
export class LineReader {
  #src: ByteSource;
  #buf: Uint8Array;
  #start = 0;
  #end = 0;
  #lineStart = 0;
  #words: Int32Array = new Int32Array(0);
  #eof = false;
  #timeoutMs: number;
  #deadline = new Deadline(() => new ReadTimeoutError());
  #lastReadFilled = false;
  #beforeBlock: (() => Promise<void>) | undefined;
  /**
   * A read into the buffer is under way (the buffer may not be reused).
   * It stays true after a timeout: the source's read may still fill it.
   */
  #reading = false;
  #readDone = () => {
    this.#reading = false;
  };
  #closed = false;
  /** Where buffers come from and go back to (the thread's). */
  readonly buffers: IoBuffers;

  /**
   * @param src the byte source
   * @param options timeout, flush hook and buffer size
   */
  constructor(src: ByteSource, options: LineReaderOptions = {}) {
    this.#src = src;
    this.buffers = options.buffers ?? new IoBuffers();
    // Small for idle sessions; grows to 64 KiB when the client streams (DATA).
    this.#buf = options.bufferSize
      ? new Uint8Array(options.bufferSize)
      : this.buffers.take(FIRST_BUFFER);
    this.#timeoutMs = options.timeoutMs ?? 300_000;
    this.#beforeBlock = options.beforeBlock;
  }

  /** Whether input is already buffered (the client pipelined more). */
  hasBuffered(): boolean {
    return this.#start < this.#end;
  }

  /**
   * The first bytes of what is buffered, left in place (a copy).
   * @param max how many at most
   * @returns the bytes
   */
  peekBuffered(max: number): Uint8Array {
    return this.#buf.slice(this.#start, Math.min(this.#end, this.#start + max));
  }

  /** Drops everything buffered (e.g. plaintext pipelined after STARTTLS). */
  discardBuffered(): void {
    this.#start = this.#end = 0;
  }

  /**
   * Reads from a new source from now on (after a TLS upgrade).
   * @param src the new byte source
   */
  setSource(src: ByteSource): void {
    this.#src = src;
    this.#eof = false;
  }

  /**
   * Waits until at least n bytes are buffered.
   * @param n the byte count
   * @param exact read no byte past the n-th: what follows stays in the
   *   source (a PROXY header before a TLS handshake: the ClientHello must
   *   reach the TLS layer, not this buffer)
   * @returns false when the input ends first
   */
  async ensure(n: number, exact = false): Promise<boolean> {
    while (this.#end - this.#start < n) {
      if (this.#eof) return false;
      if (!(await this.#fill(n, exact))) {
        this.#eof = true;
        return false;
      }
    }
    return true;
  }

  /**
   * The buffered bytes (a view, valid until the next read).
   * @returns the bytes not consumed yet
   */
  peek(): Uint8Array {
    return this.#buf.subarray(this.#start, this.#end);
  }

  /**
   * Consumes n buffered bytes.
   * @param n the byte count (at most what {@linkcode peek} shows)
   */
  consume(n: number): void {
    this.#start = Math.min(this.#end, this.#start + n);
  }

  /**
   * The request at hand made progress: its wait for the client starts over
   * (readLine() does this for each line; the BDAT reader for each line of
   * chunk content, which is read with ensure()).
   */
  renewDeadline(): void {
    this.#deadline.at = Date.now() + this.#timeoutMs;
  }

  /** Sets the flush hook. */
  set beforeBlock(hook: (() => Promise<void>) | undefined) {
    this.#beforeBlock = hook;
  }

  /**
   * The next complete line when it is already buffered, found in place:
   * no I/O, no promise and no object per line (the DATA reader takes most
   * lines of a large message this way; a view and a result object per line
   * were a third of its allocations). The line's content is
   * `buffer[lineStart, end)`, where `end` is the returned index; its
   * terminator was CRLF when `buffer[end]` is CR, else a bare LF. Valid
   * until the next call.
   * @param max the longest line content
   * @returns where the content ends, or -1 when no complete line of at most
   *   max bytes is buffered (then {@linkcode readLine} does the rest)
   */
  scanLine(max: number): number {
    const start = this.#start;
    const buf = this.#buf;
    const lf = buf.indexOf(LF, start);
    if (lf < 0 || lf >= this.#end) return -1;
    const stop = lf > start && buf[lf - 1] === CR ? lf - 1 : lf;
    if (stop - start > max) return -1;
    this.#lineStart = start;
    this.#start = lf + 1;
    return stop;
  }

  /**
   * A run of whole, plain lines at the read position, found in one pass
   * over the buffered bytes, so the DATA reader can hand a buffer's worth
   * of lines on at once instead of one call (and one copy) per line. A
   * line belongs to the run when it is already buffered, ends with CRLF,
   * has no other CR or LF, does not begin with a dot and has at most `max`
   * bytes. The run is `buffer[lineStart, runEnd)`, each line's content
   * followed by its CRLF; line i's content length is `lens[i]`.
   *
   * The search looks at four bytes at a time: a word with no byte below 14
   * (no CR, no LF) is skipped whole (RFC 5322 text is mostly such words).
   * @param max the longest content (at most 65535, what `lens` holds)
   * @param lens receives the content lengths; its size caps the run
   * @returns how many lines (0: none; then {@linkcode scanLine} / {@linkcode readLine})
   */
  scanRun(max: number, lens: Uint16Array): number {
    const buf = this.#buf;
    const end = this.#end;
    let words = this.#words;
    if (words.buffer !== buf.buffer) {
      words = this.#words = buf.byteOffset % 4 === 0
        ? new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2)
        : new Int32Array(0);
    }
    const wordsEnd = Math.min(end, words.length * 4);
    let line = this.#start;
    let count = 0;
    while (count < lens.length && line < end && buf[line] !== DOT) {
      // The line's CR must come within max bytes, and its LF be buffered.
      const stop = Math.min(end - 1, line + max + 1);
      let i = line;
      let c = 0;
      for (;;) {
        if ((i & 3) === 0 && i + 4 <= wordsEnd) {
          const x = words[i >>> 2] ?? 0;
          // Nonzero when a byte of x is below 14 (may name the wrong byte).
          if (((x - 0x0e0e0e0e) & ~x & 0x80808080) === 0) {
            i += 4;
            if (i >= stop) break;
            continue;
          }
        }
        c = buf[i] ?? 0;
        if (c === CR || c === LF || ++i >= stop) break;
      }
      if (i >= stop || c !== CR || buf[i + 1] !== LF) break; // too long, bare CR or LF, or not all here
      lens[count++] = i - line;
      line = i + 2;
    }
    if (count > 0) {
      this.#lineStart = this.#start;
      this.#start = line;
    }
    return count;
  }

  /** Where the run {@linkcode scanRun} found ends (after its last CRLF). */
  get runEnd(): number {
    return this.#start;
  }

  /** Where the content of the line {@linkcode scanLine} found begins. */
  get lineStart(): number {
    return this.#lineStart;
  }

  /** The buffer {@linkcode scanLine} positions refer to. */
  get buffer(): Uint8Array {
    return this.#buf;
  }

  /**
   * Returns the next line, or a partial piece of at most `max` bytes when no
   * terminator comes within `max` bytes; null at end of input.
   * @param max the longest piece to return
   * @returns the line, or null at EOF (a final unterminated fragment is dropped)
   */
  async readLine(max: number): Promise<Line | null> {
    // The whole line must arrive within the timeout, so a client that
    // trickles one byte at a time is cut off too (a per-request deadline).
    this.#deadline.at = Date.now() + this.#timeoutMs;
    let scanFrom = this.#start;
    for (;;) {
      const line = this.#take(max, scanFrom);
      if (line !== undefined) return line;
      scanFrom = this.#end;
      const before = this.#start;
      if (!(await this.#fill(max))) {
        this.#eof = true;
      }
      scanFrom -= before - this.#start; // buffer may have been compacted
    }
  }

  /**
   * What {@linkcode readLine} returns when it needs no read: the next line
   * (or piece) when it is buffered, null at the end of the input. No
   * promise: a session runs the commands a client pipelined one after the
   * other without a turn of the event loop for each. The request is met,
   * so no deadline runs: a read that comes next (a BDAT chunk's, say)
   * starts its own when it begins, as at the start of the session, where
   * a clock read for each line cost more than the rest of taking it.
   * @param max the longest piece to return
   * @returns the line, null at EOF, or undefined when readLine must read
   */
  bufferedLine(max: number): Line | null | undefined {
    const line = this.#take(max, this.#start);
    if (line !== undefined) this.#deadline.at = Number.POSITIVE_INFINITY;
    return line;
  }

  /**
   * The next line or piece from what is buffered, the LF looked for from
   * `scanFrom` on (what was looked at before has none).
   * @returns the line, null at EOF, or undefined when more bytes are needed
   */
  #take(max: number, scanFrom: number): Line | null | undefined {
    const at = this.#buf.indexOf(LF, scanFrom);
    if (at >= 0 && at < this.#end) {
      const contentLen = at - this.#start;
      if (contentLen <= max + 1) {
        const crlf = at > this.#start && this.#buf[at - 1] === CR;
        const stop = crlf ? at - 1 : at;
        if (stop - this.#start <= max) {
          const bytes = this.#buf.subarray(this.#start, stop);
          this.#start = at + 1;
          return { bytes, end: crlf ? "crlf" : "lf" };
        }
      }
    }
    const pending = this.#end - this.#start;
    // A CR right after max bytes may be the first half of a CRLF still in flight.
    const crMayEnd = pending === max + 1 && this.#buf[this.#end - 1] === CR && !this.#eof;
    if (pending > max && !crMayEnd) {
      // No terminator within max bytes: hand out a piece. Keep a trailing CR
      // so a CRLF split across pieces is still seen as one terminator.
      let cut = this.#start + max;
      if (this.#buf[cut - 1] === CR) cut--;
      if (cut === this.#start) cut = this.#start + 1;
      const bytes = this.#buf.subarray(this.#start, cut);
      this.#start = cut;
      return { bytes, end: "partial" };
    }
    if (this.#eof) {
      this.#start = this.#end;
      return null;
    }
    return undefined;
  }

  /**
   * Reads the rest of a too-long line and throws it away.
   * @returns false at EOF
   */
  async skipLine(): Promise<boolean> {
    for (;;) {
      const lf = this.#buf.subarray(this.#start, this.#end).indexOf(LF);
      if (lf >= 0) {
        this.#start += lf + 1;
        return true;
      }
      this.#start = this.#end;
      if (this.#eof || !(await this.#fill(0))) {
        this.#eof = true;
        return false;
      }
    }
  }

  async #fill(max: number, exact = false): Promise<boolean> {
    if (this.#start > 0) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (
      this.#end === this.#buf.length || this.#buf.length < max + 2 ||
      (this.#lastReadFilled && this.#buf.length < STREAM_BUFFER)
    ) {
      const size = Math.max(this.#buf.length * 2, max + 2);
      const grown = size <= STREAM_BUFFER
        ? this.buffers.take(2 ** Math.ceil(Math.log2(size)))
        : new Uint8Array(size);
      grown.set(this.#buf.subarray(0, this.#end));
      // Lines handed out are valid only until this call (see Line), so the
      // old buffer is free now.
      this.buffers.giveBack(this.#buf);
      this.#buf = grown;
    }
    if (this.#beforeBlock) await this.#beforeBlock();
    // After the compaction above, the buffer starts at 0: an exact read
    // stops at byte max.
    const limit = exact ? Math.min(max, this.#buf.length) : this.#buf.length;
    const room = limit - this.#end;
    let n: number | null;
    try {
      n = await this.#readWithTimeout(this.#buf.subarray(this.#end, limit));
    } catch (err) {
      if (!clientReset(err)) throw err;
      n = null;
    }
    if (this.#closed) {
      // Closed while the read was under way: the buffer stays ours.
      return false;
    }
    if (n === null) return false;
    // A full exact read says nothing about how fast the client streams.
    this.#lastReadFilled = !exact && n === room;
    this.#end += n;
    return true;
  }

  #readWithTimeout(p: Uint8Array): Promise<number | null> {
    const d = this.#deadline;
    if (!Number.isFinite(d.at) || d.at < Date.now() - this.#timeoutMs) {
      d.at = Date.now() + this.#timeoutMs;
    }
    this.#reading = true;
    const op = this.#src.read(p);
    op.then(this.#readDone, this.#readDone);
    return d.race(op);
  }

  /**
   * Stops the reader's timer (the session is over) and hands the buffer to
   * a later session, unless a read into it is still under way.
   */
  close(): void {
    this.#deadline.close();
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#reading) {
      this.buffers.giveBack(this.#buf);
      this.#buf = new Uint8Array(0);
      this.#start = this.#end = 0;
    }
  }
}
