/**
 * The header block of one message while cleanup holds it: every held line
 * (or piece of a long line) back to back in one growable byte buffer, and
 * where each piece ends in one Int32Array. The memory held is about the
 * bytes received: a 2-byte "a:" line costs its 2 bytes and 4 for its end,
 * where an object and a Uint8Array per line cost over 400 bytes.
 *
 * @module
 */

import { concatBytes } from "../io/bytes.ts";
import { type HeaderFacts, isField, isHeaderStart, RESENT_FIELDS } from "./headers.ts";

// The Message-ID for the log line: UTF-8 (RFC 6532), as Postfix's printable()
// keeps it; a byte that is not UTF-8 becomes "?" as there. Not
// TextDecoder("latin1"), which is windows-1252 ("j\u00f6rg" became "j\u00c3\u00b6rg").
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });
const FIRST_BYTES = 1024;
const FIRST_PIECES = 64;
const R = 114;
const DASH = 45;

/** Held header lines, in order. */
export class HeaderBlock {
  #bytes = new Uint8Array(0);
  #length = 0;
  /** Piece i ends at `ends[i] >> 1`; bit 0 set: a partial piece (the line goes on). */
  #ends = new Int32Array(0);
  #count = 0;
  #maxBytes: number;
  #maxPieces: number;

  /**
   * @param maxBytes the most content bytes that will be appended (buffers
   *   never grow past what that needs; below 2^30)
   * @param maxPieces the most pieces that will be appended
   */
  constructor(maxBytes: number, maxPieces: number) {
    this.#maxBytes = maxBytes;
    this.#maxPieces = maxPieces;
  }

  /** How many pieces are held. */
  get count(): number {
    return this.#count;
  }

  /** Bytes of memory the block holds (both buffers). */
  get memory(): number {
    return this.#bytes.byteLength + this.#ends.byteLength;
  }

  /** Whether the last piece held is partial (its line goes on). */
  get endsInsideLine(): boolean {
    return this.#count > 0 && ((this.#ends[this.#count - 1] as number) & 1) === 1;
  }

  /**
   * The memory the block will hold after appending `len` more bytes.
   * @param len content bytes of the next piece
   * @returns bytes (equal to {@linkcode HeaderBlock.memory} when nothing grows)
   */
  memoryAfter(len: number): number {
    return this.#grown(this.#bytes.length, this.#length + len, FIRST_BYTES, this.#maxBytes) +
      4 * this.#grown(this.#ends.length, this.#count + 1, FIRST_PIECES, this.#maxPieces);
  }

  #grown(cap: number, need: number, first: number, max: number): number {
    if (need <= cap) return cap;
    let next = Math.max(cap * 2, first);
    while (next < need) next *= 2;
    return Math.max(need, Math.min(next, max));
  }

  /**
   * Holds one piece, `buf[start, end)`.
   * @param buf the bytes
   * @param start where the piece begins
   * @param end where it ends
   * @param partial whether the line goes on in the next piece
   */
  append(buf: Uint8Array, start: number, end: number, partial: boolean): void {
    const len = end - start;
    const size = this.#grown(this.#bytes.length, this.#length + len, FIRST_BYTES, this.#maxBytes);
    if (size > this.#bytes.length) {
      const next = new Uint8Array(size);
      next.set(this.#bytes.subarray(0, this.#length));
      this.#bytes = next;
    }
    const pieces = this.#grown(this.#ends.length, this.#count + 1, FIRST_PIECES, this.#maxPieces);
    if (pieces > this.#ends.length) {
      const next = new Int32Array(pieces);
      next.set(this.#ends.subarray(0, this.#count));
      this.#ends = next;
    }
    this.#bytes.set(buf.subarray(start, end), this.#length);
    this.#length += len;
    this.#ends[this.#count++] = this.#length * 2 + (partial ? 1 : 0);
  }

  /**
   * Ends the last line here: a partial last piece becomes a whole line
   * (when header_size_limit cuts a long line, the header block must not end
   * inside it, or the next header written would be glued onto it).
   */
  closeLastLine(): void {
    if (this.endsInsideLine) {
      this.#ends[this.#count - 1] = (this.#ends[this.#count - 1] as number) & ~1;
    }
  }

  /**
   * Hands every piece to `emit`, in order.
   * @param emit receives `bytes[start, end)` and whether the line goes on
   */
  forEach(emit: (bytes: Uint8Array, start: number, end: number, partial: boolean) => void): void {
    let start = 0;
    for (let i = 0; i < this.#count; i++) {
      const e = this.#ends[i] as number;
      const end = e >> 1;
      emit(this.#bytes, start, end, (e & 1) === 1);
      start = end;
    }
  }

  /**
   * What cleanup needs to know: Received: count, the first Message-ID
   * (its folded lines joined), whether Date: and From: are there. Only the
   * first piece of a line can start a field; later pieces continue it.
   * @returns the facts
   */
  facts(): HeaderFacts {
    const facts: HeaderFacts = {
      received: 0,
      messageId: undefined,
      hasDate: false,
      hasFrom: false,
      resent: false,
      hasResentMessageId: false,
      hasResentDate: false,
      hasResentFrom: false,
    };
    const b = this.#bytes;
    let start = 0;
    let lineStart = true;
    let id: Uint8Array[] | undefined; // the first Message-ID's pieces so far
    let inId = false;
    for (let i = 0; i < this.#count; i++) {
      const e = this.#ends[i] as number;
      const end = e >> 1;
      if (lineStart && isHeaderStart(b, start, end)) {
        inId = false;
        if (isField(b, start, end, "received")) facts.received++;
        else if (isField(b, start, end, "date")) facts.hasDate = true;
        else if (isField(b, start, end, "from")) facts.hasFrom = true;
        else if (((b[start] as number) | 0x20) === R && end - start > 7 && b[start + 6] === DASH) {
          const name = RESENT_FIELDS.find((n) => isField(b, start, end, n));
          if (name !== undefined) {
            facts.resent = true;
            if (name === "resent-message-id") facts.hasResentMessageId = true;
            else if (name === "resent-date") facts.hasResentDate = true;
            else if (name === "resent-from") facts.hasResentFrom = true;
          }
        } else if (id === undefined && isField(b, start, end, "message-id")) {
          inId = true;
          id = [b.subarray(start + 11, end)];
        }
      } else if (inId) {
        id?.push(b.subarray(start, end));
      }
      lineStart = (e & 1) === 0;
      start = end;
    }
    if (id !== undefined) facts.messageId = messageIdText(id);
    return facts;
  }
}

/**
 * The Message-ID's text: its pieces (folded lines joined) decoded as one.
 * @param pieces the bytes after "Message-ID:" and of its continuation lines
 * @returns the text, trimmed, with "?" for what is not UTF-8
 */
function messageIdText(pieces: Uint8Array[]): string {
  return utf8.decode(concatBytes(pieces)).replaceAll("\ufffd", "?").trim();
}
