/**
 * Reads a DATA body (RFC 5321 §4.1.1.4, §4.5.2): dot-unstuffing, the size
 * limit (stop storing, keep reading to the end), and line-ending safety
 * against SMTP smuggling (CVE-2023-51764): only <CR><LF>.<CR><LF> ends the
 * body. A "." line reached through a bare LF or ended by one is content.
 * Bare LF and bare CR inside the body become line breaks ("normalize") or
 * make the message refused ("reject"); stored lines never contain either.
 *
 * @module
 */

import type { LineReader } from "./line_reader.ts";

/** Receives body lines, already unstuffed, without terminators. */
export interface BodySink {
  /**
   * One line, or a piece of a long line when `partial` (the next call continues it).
   * The bytes are a view that is only valid during the call.
   */
  line(bytes: Uint8Array, partial: boolean): void | Promise<void>;
}

/** What {@linkcode readDotBody} found. */
export type DotBodyResult =
  | { kind: "complete"; size: number }
  | { kind: "tooBig"; size: number }
  | { kind: "bareNewline"; size: number }
  | { kind: "disconnected" };

/** Options for {@linkcode readDotBody}. */
export interface ReadDotBodyOptions {
  /** Largest body accepted, in bytes (CRLF counted as 2). @default {10240000} */
  maxBytes?: number;
  /** Longest piece handed to the sink before a long line is split. @default {2048} */
  maxLine?: number;
  /** What to do with bare LF / bare CR. @default {"normalize"} */
  bareNewline?: "normalize" | "reject";
}

const DOT = 46;
const CR = 13;

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
  for (;;) {
    const line = reader.tryLine(maxLine) ?? await reader.readLine(maxLine);
    if (line === null) return { kind: "disconnected" };
    let bytes = line.bytes;
    if (!continuing) {
      if (bytes.length === 1 && bytes[0] === DOT && line.end === "crlf" && prevCrlf) {
        if (tooBig) return { kind: "tooBig", size };
        if (sawBare && bareNewline === "reject") return { kind: "bareNewline", size };
        return { kind: "complete", size };
      }
      // Unstuff: a leading dot goes when the line has more (this piece may be
      // only the start of a long line).
      if (bytes[0] === DOT && (bytes.length > 1 || line.end === "partial")) {
        bytes = bytes.subarray(1);
      }
    }
    if (line.end === "lf") sawBare = true;
    size += bytes.length + (line.end === "partial" ? 0 : 2);
    if (storing && size > maxBytes) {
      storing = false;
      tooBig = true;
    }
    if (bareNewline === "reject" && sawBare) storing = false;
    if (storing) {
      // A bare CR inside the line: split there, so nothing stored holds one.
      let cr = bytes.indexOf(CR);
      if (cr >= 0) sawBare = true;
      if (bareNewline === "reject" && cr >= 0) {
        storing = false;
      } else {
        while (cr >= 0) {
          const r = sink.line(bytes.subarray(0, cr), false);
          if (r) await r;
          bytes = bytes.subarray(cr + 1);
          cr = bytes.indexOf(CR);
        }
        const r = sink.line(bytes, line.end === "partial");
        if (r) await r;
      }
    }
    continuing = line.end === "partial";
    if (!continuing) prevCrlf = line.end === "crlf";
  }
}
