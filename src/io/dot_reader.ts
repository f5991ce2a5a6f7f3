/**
 * Reads a DATA body (RFC 5321 §4.1.1.4, §4.5.2): dot-unstuffing, the size
 * limit (stop storing, keep reading to the end), and line-ending safety
 * against SMTP smuggling (CVE-2023-51764): only <CR><LF>.<CR><LF> ends the
 * body. A "." line reached through a bare LF or ended by one is content.
 * A bare LF ends a line ("normalize") or makes the message refused
 * ("reject"). A bare CR (one not right before the LF that ends the line)
 * is content, stored as a space, in both modes: what Postfix's smtpd and
 * cleanup (cleanup_replace_stray_cr_lf) write. Stored lines never contain
 * a CR or LF.
 *
 * @module
 */

import { type LineEnd, type LineReader, ReadTimeoutError } from "./line_reader.ts";

/** Receives body lines, already unstuffed, without terminators. */
export interface BodySink {
  /**
   * One line, or a piece of a long line when `partial` (the next call
   * continues it): `buf[start, end)`. The bytes are only valid during the
   * call (they are the reader's buffer: no view is made per line).
   */
  line(buf: Uint8Array, start: number, end: number, partial: boolean): void | Promise<void>;
  /**
   * Optional, for speed: many whole lines in one call. `buf[start, end)`
   * holds `count` lines, each its content then CRLF; line i's content is
   * `lens[i]` bytes long and holds no CR or LF. They need no unstuffing.
   * Called only while {@linkcode BodySink.takesRuns} is true; like `line`,
   * the bytes are only valid during the call.
   */
  lines?(
    buf: Uint8Array,
    start: number,
    end: number,
    lens: Uint16Array,
    count: number,
  ): void | Promise<void>;
  /** Whether `lines` may be called now (e.g. not while headers are parsed). */
  readonly takesRuns?: boolean;
}

/** What {@linkcode readDotBody} found. */
export type DotBodyResult =
  | { kind: "complete"; size: number }
  | { kind: "tooBig"; size: number }
  | { kind: "bareNewline"; size: number }
  /** The client went away; size counts the whole lines received, as Postfix's log line does. */
  | { kind: "disconnected"; size: number };

/** Options for {@linkcode readDotBody}. */
export interface ReadDotBodyOptions {
  /** Largest body accepted, in bytes (CRLF counted as 2). @default {10240000} */
  maxBytes?: number;
  /** Longest piece handed to the sink before a long line is split. @default {2048} */
  maxLine?: number;
  /** What to do with a bare LF. @default {"normalize"} */
  bareNewline?: "normalize" | "reject";
}

const DOT = 46;
const CR = 13;
const SPACE = 32;

/**
 * Writes a space over each CR in `buf[from, to)`, as Postfix's cleanup
 * does: the CR that ended the line is not in that range, so these are bare.
 * @param buf the bytes (the reader's buffer: the line is consumed already)
 * @param from where the line's content starts
 * @param to where the line's content ends
 * @param bounded whether a CR at `to` or the buffer's end stops the builtin
 *   search (a CRLF line, or a view of just the line); a bare-LF line in the
 *   reader's buffer is searched byte by byte instead, so a client sending
 *   only bare LFs cannot make each line scan the rest of the buffer
 */
function maskCr(buf: Uint8Array, from: number, to: number, bounded: boolean): void {
  if (bounded) {
    for (let i = buf.indexOf(CR, from); i >= 0 && i < to; i = buf.indexOf(CR, i + 1)) {
      buf[i] = SPACE;
    }
    return;
  }
  for (let i = from; i < to; i++) if (buf[i] === CR) buf[i] = SPACE;
}

/**
 * Reads one DATA body up to the end-of-data line.
 * @param reader the session's line reader, positioned after "DATA"
 * @param sink where content lines go
 * @param options limits and bare-newline policy
 * @returns how the body ended, with its size
 */
export async function readDotBody(
  reader: LineReader,
  sink: BodySink,
  options: ReadDotBodyOptions = {},
): Promise<DotBodyResult> {
  const { maxBytes = 10_240_000, maxLine = 2048, bareNewline = "normalize" } = options;
  let size = 0;
  let storing = true;
  let tooBig = false;
  let sawBare = false;
  let prevCrlf = true; // the DATA command line itself ended the previous line
  let continuing = false; // this piece continues a long line
  // A run's record headers take at most two length bytes (below 16384).
  const runMax = Math.min(maxLine, 16383);
  // Line lengths of one run: the thread's scratch array (a run is used up before the next).
  const runLens = reader.buffers.runLens;
  try {
    for (;;) {
      // Most lines are already buffered and plain: hand them on a run at a time.
      if (storing && !continuing && prevCrlf && sink.lines && sink.takesRuns) {
        const count = reader.scanRun(runMax, runLens);
        if (count > 0) {
          const start = reader.lineStart;
          let end = reader.runEnd;
          let fit = count;
          if (size + (end - start) > maxBytes) {
            // Store the lines within the limit, as line by line would.
            storing = false;
            tooBig = true;
            end = start;
            for (
              fit = 0;
              fit < count && size + (end - start) + (runLens[fit] ?? 0) + 2 <= maxBytes;
              fit++
            ) {
              end += (runLens[fit] ?? 0) + 2;
            }
          }
          if (fit > 0) {
            const r = sink.lines(reader.buffer, start, end, runLens, fit);
            if (r) await r;
          }
          size += reader.runEnd - start;
          continue;
        }
      }
      // Otherwise one line at a time, in place when it is buffered.
      let buf: Uint8Array;
      let s: number;
      let e = reader.scanLine(maxLine);
      let end: LineEnd;
      let bounded = true;
      if (e >= 0) {
        buf = reader.buffer;
        s = reader.lineStart;
        end = buf[e] === CR ? "crlf" : "lf";
        bounded = end === "crlf";
      } else {
        const line = await reader.readLine(maxLine);
        if (line === null) return { kind: "disconnected", size };
        buf = line.bytes;
        s = 0;
        e = buf.length;
        end = line.end;
      }
      if (!continuing) {
        if (e - s === 1 && buf[s] === DOT && end === "crlf" && prevCrlf) {
          if (tooBig) return { kind: "tooBig", size };
          if (sawBare && bareNewline === "reject") return { kind: "bareNewline", size };
          return { kind: "complete", size };
        }
        // Unstuff: a leading dot goes when the line has more (this piece may be
        // only the start of a long line).
        if (buf[s] === DOT && s < e && (e - s > 1 || end === "partial")) s++;
      }
      if (end === "lf") sawBare = true;
      size += e - s + (end === "partial" ? 0 : 2);
      if (storing && size > maxBytes) {
        storing = false;
        tooBig = true;
      }
      if (bareNewline === "reject" && sawBare) storing = false;
      if (storing) {
        maskCr(buf, s, e, bounded);
        const r = sink.line(buf, s, e, end === "partial");
        if (r) await r;
      }
      continuing = end === "partial";
      if (!continuing) prevCrlf = end === "crlf";
    }
  } catch (err) {
    // Postfix's "timeout after DATA (N bytes)": what was received so far.
    if (err instanceof ReadTimeoutError) err.bytes = size;
    throw err;
  }
}
