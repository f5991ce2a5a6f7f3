/**
 * Reads BDAT chunks (RFC 3030): exactly the announced number of octets,
 * with no dot-unstuffing and no end marker, so chunk bytes are never read
 * as commands. The octets of all chunks of a message form one stream that
 * is cut into lines for the cleanup writer, as Postfix's bdat_cmd does: a
 * line may span fragments and chunks; a line longer than line_length_limit
 * is handed on in pieces; the last line of the last chunk needs no line
 * end. A bare LF is a line break ("normalize") or makes the message
 * refused ("reject"), as in DATA; a bare CR is content, stored as a space,
 * also when it ends the last chunk (a CR that ends a chunk is bare unless
 * the next chunk starts with LF). Memory: the line reader's buffer
 * (at most its streaming size, whatever the chunk size) plus one carried
 * line of at most line_length_limit bytes.
 *
 * @module
 */

import type { BodySink, DotBodyResult } from "./dot_reader.ts";
import { type LineReader, ReadTimeoutError } from "./line_reader.ts";

/** Options for {@linkcode BdatBody}. */
export interface BdatBodyOptions {
  /** Largest message accepted, in bytes (a line end counted as 2). @default {10240000} */
  maxBytes?: number;
  /** Longest piece handed to the sink before a long line is split. @default {2048} */
  maxLine?: number;
  /** What to do with a bare LF. @default {"normalize"} */
  bareNewline?: "normalize" | "reject";
}

const CR = 13;
const LF = 10;
/** A bare CR is stored as this (Postfix's cleanup_replace_stray_cr_lf). */
const SPACE = new Uint8Array([32]);

/** One message's body as it arrives in BDAT chunks. */
export class BdatBody {
  readonly #sink: BodySink;
  readonly #maxBytes: number;
  readonly #maxLine: number;
  readonly #reject: boolean;
  /** The current line's bytes not handed on yet. */
  readonly #carry: Uint8Array;
  #carryLen = 0;
  /** A piece of the current line was handed on (the sink expects more). */
  #continuing = false;
  /** The last fragment ended with CR: its LF may start the next one. */
  #pendingCr = false;
  #sawBare = false;
  #storing = true;
  #tooBig = false;
  /** The message's size as stored: line contents plus 2 per line end. */
  #size = 0;
  /** The chunk octets received, all chunks together. */
  #octets = 0;
  /** Postfix's count of the message (act_size): each record's length plus 2. */
  #recordSize = 0;

  /**
   * @param sink where the lines go
   * @param options limits and bare-newline policy
   */
  constructor(sink: BodySink, options: BdatBodyOptions = {}) {
    this.#sink = sink;
    this.#maxBytes = options.maxBytes ?? 10_240_000;
    this.#maxLine = Math.max(1, options.maxLine ?? 2048);
    this.#reject = options.bareNewline === "reject";
    this.#carry = new Uint8Array(this.#maxLine);
  }

  /** The chunk octets received so far, all chunks together. */
  get octets(): number {
    return this.#octets;
  }

  /**
   * The message's size as Postfix's bdat_cmd counts it for "N bytes queued
   * as ID" (its act_size): every line or piece of a long line handed on
   * counts its length plus 2, whatever ended it (CRLF, a bare LF, the end
   * of the last chunk, the line length limit); a line that fills the limit
   * exactly and has a line end counts an empty record more.
   */
  get queuedSize(): number {
    return this.#recordSize;
  }

  /**
   * Why the message can no longer be queued, once that is known before its
   * last chunk: it grew past maxBytes, or it has a bare LF and bare LFs are
   * refused. Undefined while it may still be queued.
   */
  get failure(): "tooBig" | "bareNewline" | undefined {
    if (this.#tooBig) return "tooBig";
    if (this.#sawBare && this.#reject) return "bareNewline";
    return undefined;
  }

  /**
   * Reads one chunk of exactly `size` octets into the body.
   * @param reader the session's reader, positioned after the BDAT line
   * @param size the chunk's size
   * @returns false when the input ended first
   */
  async readChunk(reader: LineReader, size: number): Promise<boolean> {
    let left = size;
    while (left > 0) {
      if (!reader.hasBuffered() && !(await this.#ensure(reader))) return false;
      const view = reader.peek();
      const take = Math.min(view.length, left);
      const handed = this.#recordSize;
      await this.#push(view, 0, take);
      reader.consume(take);
      left -= take;
      this.#octets += take;
      // As in DATA, each line (or piece of a long one) has smtpd_timeout to
      // arrive, not the whole chunk: a client sending a large message in
      // one chunk (as Postfix's smtp client does) over a slow link was cut
      // off once the chunk took longer than smtpd_timeout in all.
      if (this.#recordSize !== handed) reader.renewDeadline();
    }
    return true;
  }

  /** reader.ensure(1); a timeout tells the chunk octets received (Postfix's log line). */
  async #ensure(reader: LineReader): Promise<boolean> {
    try {
      return await reader.ensure(1);
    } catch (err) {
      if (err instanceof ReadTimeoutError) err.bytes = this.#octets;
      throw err;
    }
  }

  /**
   * The last chunk is in: the last line is handed on (with or without its
   * line end) and the body's outcome is known.
   * @returns how the body ended
   */
  async finish(): Promise<DotBodyResult> {
    if (this.#pendingCr) {
      // The last chunk ended with CR: content, as Postfix keeps it.
      this.#pendingCr = false;
      await this.#addContent(SPACE, 0, 1);
    }
    if (this.#carryLen > 0 || this.#continuing) await this.#endLine(false);
    if (this.#tooBig) return { kind: "tooBig", size: this.#size };
    if (this.#sawBare && this.#reject) return { kind: "bareNewline", size: this.#size };
    return { kind: "complete", size: this.#size };
  }

  /**
   * Cuts `buf[start, end)` into lines. A sink that takes a line at once
   * (returns no promise) costs no await per line: a body of short lines
   * ("--" or empty lines, 4 bytes each) made three promises and their
   * microtasks per line, ten times the CPU of the same body sent by DATA.
   */
  async #push(buf: Uint8Array, start: number, end: number): Promise<void> {
    let i = start;
    if (this.#pendingCr && i < end) {
      this.#pendingCr = false;
      if (buf[i] === LF) {
        i++;
        const r = this.#endLine();
        if (r) await r;
      } else {
        const r = this.#addContent(SPACE, 0, 1);
        if (r) await r;
      }
    }
    while (i < end) {
      // The line's end: an LF, or a CR before an LF or at the fragment's end
      // (the next octet says what it was); any other CR is content, a space.
      let j = i;
      for (; j < end; j++) {
        const c = buf[j];
        if (c === LF) break;
        if (c === CR) {
          if (j + 1 === end || buf[j + 1] === LF) break;
          buf[j] = SPACE[0]!;
        }
      }
      // A whole line in view, with nothing carried: handed on from here.
      const whole = this.#carryLen === 0 && j < end && j - i <= this.#maxLine &&
        !(buf[j] === CR && j + 1 === end);
      if (!whole) {
        const r = this.#addContent(buf, i, j);
        if (r) await r;
      }
      if (j === end) return;
      const from = i;
      if (buf[j] === LF) {
        this.#sawBare = true;
        i = j + 1;
      } else if (j + 1 === end) {
        // CR at the fragment's end: the next octet says what it was.
        this.#pendingCr = true;
        return;
      } else {
        i = j + 2; // CRLF
      }
      const l = whole ? this.#emit(buf, from, j, false) : this.#endLine();
      if (l) await l;
    }
  }

  /** Adds `buf[s, e)` to the current line, handing on full pieces. */
  #addContent(buf: Uint8Array, s: number, e: number): void | Promise<void> {
    if (this.#carryLen + (e - s) > this.#maxLine) return this.#addPieces(buf, s, e);
    if (e > s) {
      this.#carry.set(buf.subarray(s, e), this.#carryLen);
      this.#carryLen += e - s;
    }
  }

  /** Adds `buf[s, e)` to the current line, which becomes longer than maxLine. */
  async #addPieces(buf: Uint8Array, s: number, e: number): Promise<void> {
    const max = this.#maxLine;
    while (this.#carryLen + (e - s) > max) {
      if (this.#carryLen === 0) {
        await this.#emit(buf, s, s + max, true);
        s += max;
      } else {
        const n = max - this.#carryLen;
        this.#carry.set(buf.subarray(s, s + n), this.#carryLen);
        s += n;
        this.#carryLen = 0;
        await this.#emit(this.#carry, 0, max, true);
      }
    }
    if (e > s) {
      this.#carry.set(buf.subarray(s, e), this.#carryLen);
      this.#carryLen += e - s;
    }
  }

  /** Ends the current line, by a line end (`ended`) or the last chunk's end. */
  #endLine(ended = true): void | Promise<void> {
    const len = this.#carryLen;
    this.#carryLen = 0;
    return this.#emit(this.#carry, 0, len, false, ended);
  }

  /**
   * Hands `buf[s, e)` on: a whole line (or its last piece), or a piece.
   * @param ended a line end came after it (not the last chunk's end)
   */
  #emit(
    buf: Uint8Array,
    s: number,
    e: number,
    partial: boolean,
    ended = !partial,
  ): void | Promise<void> {
    this.#size += e - s + (partial ? 0 : 2);
    // Postfix reads at most line_length_limit bytes a record: the last
    // piece of a line that fills it is one record, the line end an empty
    // one, 2 more in its count (a line of 2048 and CRLF: 2052).
    this.#recordSize += e - s + 2 + (ended && !partial && e - s === this.#maxLine ? 2 : 0);
    if (this.#storing && this.#size > this.#maxBytes) {
      this.#storing = false;
      this.#tooBig = true;
    }
    if (this.#reject && this.#sawBare) this.#storing = false;
    if (this.#storing) {
      const r = this.#sink.line(buf, s, e, partial);
      if (r) return r.then(() => void (this.#continuing = partial));
    }
    this.#continuing = partial;
  }
}

/**
 * Reads and drops `size` octets (a refused chunk), to stay in step with
 * the client.
 * @param reader the session's reader, positioned after the BDAT line
 * @param size the chunk's size
 * @returns false when the input ended first
 */
export async function discardChunk(reader: LineReader, size: number): Promise<boolean> {
  let left = size;
  while (left > 0) {
    if (!reader.hasBuffered() && !(await reader.ensure(1))) return false;
    const view = reader.peek();
    const take = Math.min(view.length, left);
    // A line end went by: the wait starts over, as for a chunk that is kept.
    if (view.subarray(0, take).includes(LF)) reader.renewDeadline();
    reader.consume(take);
    left -= take;
  }
  return true;
}
