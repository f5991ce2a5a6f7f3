/**
 * Postfix queue-file records: one type byte, the payload length as a
 * base-128 varint (low 7 bits first, 0x80 = more follows; at most 4 bytes),
 * then the payload. Record letters and the fixed-width size record follow
 * Postfix's rec_type.h; `postcat` reads what we write.
 *
 * @module
 */

import { encodeWireText } from "../io/wire_text.ts";

/** Record types used by the writer and understood by the reader. */
export const REC = {
  size: 0x43, // C: fixed-width size record, rewritten at commit
  time: 0x54, // T: "seconds microseconds"
  attr: 0x41, // A: name=value
  from: 0x53, // S: sender
  orcp: 0x4f, // O: original recipient
  rcpt: 0x52, // R: recipient
  done: 0x44, // D: delivered recipient
  mesg: 0x4d, // M: start of message content
  norm: 0x4e, // N: content line
  cont: 0x4c, // L: piece of a long content line
  xtra: 0x58, // X: start of the extracted segment
  filt: 0x4c, // L: content filter, transport:destination (outside the content; cont's letter)
  rdr: 0x3e, // >: redirect target
  end: 0x45, // E: end of file
  warn: 0x57, // W
  full: 0x46, // F: sender full name
  ctime: 0x63, // c
  ptr: 0x70, // p
  dtxt: 0x77, // w
} as const;

/** Fields of the size record, in order. */
export interface SizeFields {
  /** Bytes from the first content record to the X record. */
  contentSize: number;
  /** Offset of the first record after M. */
  dataOffset: number;
  recipientCount: number;
  qmgrFlags: number;
  /** Content length (equals contentSize for us). */
  contentLength: number;
  sendOpts: number;
}

/** Payload length of the size record: six %15d fields and five spaces. */
export const SIZE_PAYLOAD_LENGTH = 95;

/**
 * Formats the size record payload as Postfix does ("%15ld" six times).
 * @param f the fields
 * @returns the 95-character payload
 */
export function formatSize(f: SizeFields): string {
  return [f.contentSize, f.dataOffset, f.recipientCount, f.qmgrFlags, f.contentLength, f.sendOpts]
    .map((n) => String(n).padStart(15, " "))
    .join(" ");
}

/**
 * Reads a size record's payload as {@linkcode formatSize} writes it: six
 * fields of 15 characters (digits, padded with spaces on the left),
 * one space between them.
 * @param payload the record's data
 * @returns the fields, or undefined for any other shape (the placeholder
 *   of a file whose commit did not get that far reads as zeros)
 */
export function parseSize(payload: Uint8Array): SizeFields | undefined {
  if (payload.length !== SIZE_PAYLOAD_LENGTH) return undefined;
  const n: number[] = [];
  for (let f = 0; f < 6; f++) {
    const start = f * 16;
    if (f > 0 && payload[start - 1] !== 0x20) return undefined;
    let value = 0;
    let digits = 0;
    for (let i = start; i < start + 15; i++) {
      const b = payload[i] as number;
      if (b === 0x20 && digits === 0) continue;
      if (b < 0x30 || b > 0x39) return undefined;
      value = value * 10 + (b - 0x30);
      digits++;
    }
    if (digits === 0) return undefined;
    n.push(value);
  }
  const [contentSize, dataOffset, recipientCount, qmgrFlags, contentLength, sendOpts] = n as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return { contentSize, dataOffset, recipientCount, qmgrFlags, contentLength, sendOpts };
}

/** A growable byte buffer that encodes records. */
export class RecordBuffer {
  #buf = new Uint8Array(8192);
  #len = 0;

  /** Bytes held. */
  get length(): number {
    return this.#len;
  }

  /** The bytes held (a view). */
  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  /** Bytes the buffer can hold before it grows. */
  get capacity(): number {
    return this.#buf.length;
  }

  /** Forgets the bytes held. */
  clear(): void {
    this.#len = 0;
  }

  #ensure(extra: number): void {
    if (this.#len + extra <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.#len + extra) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  /**
   * Appends one record.
   * @param type the record type byte
   * @param data the payload
   */
  put(type: number, data: Uint8Array): void {
    this.putRange(type, data, 0, data.length);
  }

  /**
   * Appends one record whose payload is `src[start, end)`.
   * @param type the record type byte
   * @param src the bytes holding the payload
   * @param start where it begins
   * @param end where it ends
   */
  putRange(type: number, src: Uint8Array, start: number, end: number): void {
    const len = end - start;
    this.#ensure(len + 6);
    const b = this.#buf;
    let i = this.#len;
    b[i++] = type;
    let n = len;
    do {
      let byte = n & 0x7f;
      n >>>= 7;
      if (n > 0) byte |= 0x80;
      b[i++] = byte;
    } while (n > 0);
    // (A byte loop instead of a view and set() was 40% slower per MiB.)
    b.set(start === 0 && end === src.length ? src : src.subarray(start, end), i);
    this.#len = i + len;
  }

  /**
   * Appends one record per line of a run of CRLF lines (see
   * `LineReader.scanRun`): `src[start, end)` holds `count` lines, each its
   * content then CRLF, line i's content `lens[i]` bytes long. A record
   * header of two bytes (a content length below 128) takes exactly the
   * room of the CRLF before it, so the contents of such lines keep their
   * distances: one copy per stretch of them, then the headers are written
   * into place. A longer line's three-byte header starts a new stretch.
   * @param type the record type byte
   * @param src the bytes holding the run
   * @param start where it begins
   * @param end where it ends (after the last CRLF)
   * @param lens the content lengths (each below 16384)
   * @param count how many lines
   */
  putLines(
    type: number,
    src: Uint8Array,
    start: number,
    end: number,
    lens: Uint16Array,
    count: number,
  ): void {
    this.#ensure(end - start + count);
    const b = this.#buf;
    let o = this.#len;
    let p = start; // where the next stretch's first content begins in src
    let j = 0;
    while (j < count) {
      const first = j;
      const len = lens[j] ?? 0;
      b[o++] = type;
      if (len < 128) {
        b[o++] = len;
      } else {
        b[o++] = (len & 0x7f) | 0x80;
        b[o++] = len >>> 7;
      }
      let q = p + len; // end of the stretch's last content in src
      for (j++; j < count && (lens[j] ?? 128) < 128; j++) q += 2 + (lens[j] ?? 0);
      b.set(src.subarray(p, q), o);
      // The headers of the stretch's other lines go where their CRLFs were copied.
      let h = o + len;
      for (let k = first + 1; k < j; k++) {
        const n = lens[k] ?? 0;
        b[h] = type;
        b[h + 1] = n;
        h += 2 + n;
      }
      o += q - p;
      p = q + 2;
    }
    this.#len = o;
  }

  /**
   * Appends one record with a text payload (UTF-8; a client's 8-bit byte
   * that is not UTF-8, smtputf8_enable off, as the byte: `encodeWireText`).
   * @param type the record type byte
   * @param text the payload
   */
  putText(type: number, text: string): void {
    // ASCII fast path: write the characters straight into the buffer (no
    // encoder call, no temporary array); anything else goes through UTF-8.
    const n = text.length;
    for (let k = 0; k < n; k++) {
      if (text.charCodeAt(k) > 127) {
        this.put(type, encodeWireText(text));
        return;
      }
    }
    this.#ensure(n + 6);
    const b = this.#buf;
    let i = this.#len;
    b[i++] = type;
    let len = n;
    do {
      let byte = len & 0x7f;
      len >>>= 7;
      if (len > 0) byte |= 0x80;
      b[i++] = byte;
    } while (len > 0);
    for (let k = 0; k < n; k++) b[i + k] = text.charCodeAt(k);
    this.#len = i + n;
  }
}

/** One decoded record. */
export interface QueueRecord {
  readonly type: number;
  readonly data: Uint8Array;
  /** Offset of the record's type byte. */
  readonly offset: number;
}

/** Raised for a queue file that is truncated or malformed. */
export class QueueFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QueueFileError";
  }
}

/**
 * Splits a whole queue file into records.
 * @param bytes the file content
 * @returns the records in order
 * @throws {QueueFileError} when a record is truncated or its length is malformed
 */
export function decodeRecords(bytes: Uint8Array): QueueRecord[] {
  const out: QueueRecord[] = [];
  let i = 0;
  while (i < bytes.length) {
    const offset = i;
    const type = bytes[i++] as number;
    let len = 0;
    let shift = 0;
    for (;;) {
      if (i >= bytes.length) {
        throw new QueueFileError(`truncated record length at offset ${offset}`);
      }
      if (shift + 7 >= 32) throw new QueueFileError(`bad record length at offset ${offset}`);
      const b = bytes[i++] as number;
      len |= (b & 0x7f) << shift;
      shift += 7;
      if ((b & 0x80) === 0) break;
    }
    if (i + len > bytes.length) throw new QueueFileError(`truncated record at offset ${offset}`);
    out.push({ type, data: bytes.subarray(i, i + len), offset });
    i += len;
  }
  return out;
}

/** Largest buffer kept for reuse, and the bytes kept in all. */
const KEEP_BUFFER = 512 * 1024;
const KEEP_BYTES = 8 * 1024 * 1024;

/**
 * Record buffers of finished files, reused by the next ones of the same
 * store (fewer allocations). A large message grows its two buffers to
 * 512 KiB each, so the free list is bounded in bytes, not only in count:
 * after a burst of large messages a thread keeps at most 8 MiB.
 */
export class RecordBufferPool {
  #free: RecordBuffer[] = [];
  #bytes = 0;

  /** @returns a spare buffer, or a new one */
  take(): RecordBuffer {
    const b = this.#free.pop();
    if (!b) return new RecordBuffer();
    this.#bytes -= b.capacity;
    return b;
  }

  /**
   * Keeps a buffer no longer written for the next file, unless it is too
   * large or the pool is full.
   * @param b the buffer
   */
  release(b: RecordBuffer | undefined): void {
    if (!b || b.capacity > KEEP_BUFFER || this.#bytes + b.capacity > KEEP_BYTES) return;
    b.clear();
    this.#free.push(b);
    this.#bytes += b.capacity;
  }
}
