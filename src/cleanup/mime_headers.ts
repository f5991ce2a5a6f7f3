/**
 * The MIME structure of a message as Postfix's cleanup walks it (its
 * mime_state.c, RFC 2045/2046), far enough to see the header blocks past
 * the primary one: those of multipart body parts, and those of an attached
 * message (message/rfc822, message/global, and the parts of a
 * multipart/digest). Postfix's cleanup writes every header through the same
 * function, which sets the SMTPUTF8 header bit of the queue file's sendopts
 * for a non-ASCII byte in any of them; with SMTPUTF8 requested, that bit
 * makes Postfix's smtp client refuse a next hop without SMTPUTF8 (5.6.7)
 * instead of sending it raw UTF-8 headers.
 *
 * Fed every line of the message content in order (header and body), it
 * answers whether such a part or attached-message header holds a byte
 * above 127, and whether any header block (the message's own included)
 * has a `Content-Transfer-Encoding: 8bit` or `binary`: Postfix's cleanup
 * (detect_8bit_encoding_header, on by default) then writes the queue
 * file's encoding attribute as 8bit whatever BODY= said, so its smtp
 * client converts the message for a next hop without 8BITMIME and sends
 * BODY=8BITMIME to one with it. It stops looking once it knows both: after
 * both matched, or in a body with no open multipart boundary (nothing can
 * start a header block again).
 *
 * @module
 */

import { headerNameEnd } from "./headers.ts";

const SP = 0x20;
const HTAB = 0x09;
const DASH = 0x2d;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LPAREN = 0x28;
const RPAREN = 0x29;
const SEMICOLON = 0x3b;
const COLON = 0x3a;
const SLASH = 0x2f;
const EQUALS = 0x3d;
const CONTENT_TYPE = "content-type";
const CONTENT_TRANSFER_ENCODING = "content-transfer-encoding";
/**
 * A "--" line is compared with every open boundary (up to
 * mime_nesting_limit of them, each up to mime_boundary_length_limit
 * bytes), so a hostile body of long lines that almost match cost about
 * 75 ns a byte when each comparison went byte by byte. Each boundary and
 * each prefix of the line get a polynomial hash instead (one pass over the
 * line), and only a boundary whose hash matches is compared. The modulus
 * is the largest prime below 2^16, so hash times base stays within 32 bits
 * of integer arithmetic; the base is drawn at start. Two different byte
 * strings of length n then have the same hash for at most n of the bases
 * (the roots of their difference), so a client that cannot see the base
 * makes a boundary of up to 2,048 bytes compare in full for at most about
 * 3% of its lines.
 */
const HASH_MOD = 65_521;
const HASH_BASE = 256 + Math.floor(Math.random() * (HASH_MOD - 512));

/** One more byte into a hash: (h * base + byte + 1) mod the prime, in 32-bit integers. */
function nextHash(h: number, byte: number): number {
  return ((Math.imul(h, HASH_BASE) >>> 0) + byte + 1) % HASH_MOD;
}

/** The hash of `buf[start, end)`, as the prefix sums of boundaryLine compute it. */
function boundaryHash(buf: Uint8Array, start: number, end: number): number {
  let h = 0;
  for (let i = start; i < end; i++) h = nextHash(h, buf[i] as number);
  return h;
}

/** The largest Content-Type value buffer kept from one header to the next. */
const VALUE_KEPT = 4096;

/** RFC 2045 §5.1 tspecials, the separators of a Content-Type value. */
const TSPECIAL = new Uint8Array(256);
for (const c of '()<>@,;:\\"/[]?=') TSPECIAL[c.charCodeAt(0)] = 1;

/** Where in the message the walk is, as mime_state.c's states. */
type MimeState = "primary" | "part" | "nested" | "body";
/** What the current Content-Type says, as far as the walk needs it. */
type ContentKind = "plain" | "message" | "multipart" | "other";

interface Boundary {
  readonly text: Uint8Array;
  /** boundaryHash of text. */
  readonly hash: number;
  /** multipart/digest: a part without Content-Type is message/rfc822. */
  readonly digest: boolean;
}

/** Limits, as Postfix's parameters of the same names. */
export interface MimeHeaderLimits {
  /** header_size_limit: text of one header kept beyond this is dropped. @default {102400} */
  readonly headerSizeLimit?: number;
  /** mime_boundary_length_limit. @default {2048} */
  readonly boundaryLengthLimit?: number;
  /** mime_nesting_limit. @default {100} */
  readonly nestingLimit?: number;
}

/** Finds a non-ASCII byte in a MIME part's or attached message's header. */
export class MimeHeaderScan {
  #state: MimeState = "primary";
  #kind: ContentKind = "plain";
  /** Open boundaries, innermost last. */
  #stack: Boundary[] = [];
  /** The hash of each prefix of a "--" line, up to the longest boundary seen. */
  #prefixHashes = new Uint16Array(1);
  #work = 0;
  /**
   * The header being read: its length so far (bounded by
   * header_size_limit), whether a byte of it is above 127, and whether it
   * is a Content-Type (whose value is kept in #value).
   */
  #pending:
    | { length: number; has8bit: boolean; contentType: boolean; transferEncoding: boolean }
    | undefined;
  /**
   * The value of the Content-Type or Content-Transfer-Encoding being read,
   * folds as LF, in #value[0, #valueLength).
   */
  #value = new Uint8Array(0);
  #valueLength = 0;
  #prevPartial = false;
  #found = false;
  #eightBitEncoding = false;
  #headerSizeLimit: number;
  #boundaryLengthLimit: number;
  #nestingLimit: number;

  constructor(limits: MimeHeaderLimits = {}) {
    this.#headerSizeLimit = limits.headerSizeLimit ?? 102_400;
    this.#boundaryLengthLimit = limits.boundaryLengthLimit ?? 2048;
    this.#nestingLimit = limits.nestingLimit ?? 100;
  }

  /**
   * Bytes the boundary comparisons have looked at (each "--" line's hashed
   * prefix and each boundary compared in full), and those the reading of
   * Content-Type values has looked at. For the bound on a hostile
   * message's cost (tests).
   */
  get work(): number {
    return this.#work;
  }

  /** Bytes held for the header being read (the Content-Type value's buffer). */
  get heldBytes(): number {
    return this.#value.length;
  }

  /** A part or attached-message header held a non-ASCII byte. */
  get found(): boolean {
    return this.#found;
  }

  /**
   * A header block had `Content-Transfer-Encoding: 8bit` or `binary` (the
   * value after leading white space, in any case, nothing after it: as
   * Postfix's cleanup compares it).
   */
  get eightBitEncoding(): boolean {
    return this.#eightBitEncoding;
  }

  /** Nothing later in the message can change either answer. */
  get done(): boolean {
    return (this.#found && this.#eightBitEncoding) ||
      (this.#state === "body" && this.#stack.length === 0);
  }

  /**
   * Takes the next line of content, or a piece of a long one.
   * @param buf the bytes holding it
   * @param start where it begins
   * @param end where it ends (no CR LF)
   * @param partial the next call continues this line
   */
  line(buf: Uint8Array, start: number, end: number, partial: boolean): void {
    if (this.done) return;
    const continues = this.#prevPartial;
    this.#prevPartial = partial;
    if (this.#state !== "body") {
      if (this.#pending) {
        // A piece of a long header line, or a folded line (RFC 5322 §2.2.3).
        if (continues) return this.#collect(buf, start, end, false);
        if (end > start && (buf[start] === SP || buf[start] === HTAB)) {
          return this.#collect(buf, start, end, true);
        }
        this.#endHeader();
        if (this.done) return;
      }
      const name = headerNameEnd(buf, start, end);
      if (name >= 0) {
        // As mime_state.c: the name (ASCII), then the text after the colon.
        const contentType = isContentType(buf, start, name);
        // With blanks before the colon Postfix still knows the header
        // (header_opts_find trims them), but reads its value from the
        // name's length plus one: ":8bit" after them, never 8bit or binary.
        const transferEncoding = !contentType && buf[name] === COLON &&
          asciiIs(buf.subarray(start, name), CONTENT_TRANSFER_ENCODING);
        this.#pending = { length: name - start + 1, has8bit: false, contentType, transferEncoding };
        this.#valueLength = 0;
        return this.#collect(buf, buf.indexOf(COLON, name) + 1, end, false);
      }
      const wasKind = this.#kind;
      this.#kind = "other";
      this.#state = "body";
      if (end === start) {
        // The empty line ends the block; an attached message's headers follow.
        if (wasKind === "message") {
          this.#state = "nested";
          this.#kind = "plain";
        }
        return;
      }
      // Any other line ends the block too, and is body (checked below).
    }
    if (
      this.#stack.length > 0 && !continues && end - start > 2 && buf[start] === DASH &&
      buf[start + 1] === DASH
    ) {
      this.#boundaryLine(buf, start + 2, end);
    }
  }

  /** A "--" line in a body: a boundary of an open multipart, or text. */
  #boundaryLine(buf: Uint8Array, from: number, end: number): void {
    const sums = this.#prefixHashes;
    const stop = Math.min(end, from + sums.length - 1);
    let h = 0;
    for (let i = from; i < stop; i++) {
      h = nextHash(h, buf[i] as number);
      sums[i - from + 1] = h;
    }
    this.#work += stop - from;
    for (let i = this.#stack.length - 1; i >= 0; i--) {
      const { text: b, hash } = this.#stack[i] as Boundary;
      if (stop - from < b.length || sums[b.length] !== hash) continue;
      this.#work += b.length;
      if (!startsWith(buf, from, b)) continue;
      this.#stack.length = i + 1;
      const after = from + b.length;
      if (end - after >= 2 && buf[after] === DASH && buf[after + 1] === DASH) {
        this.#stack.pop(); // the closing boundary
        this.#state = "body";
        this.#kind = "other";
      } else {
        this.#state = "part";
        this.#kind = (this.#stack[i] as Boundary).digest ? "message" : "plain";
      }
      return;
    }
  }

  #collect(buf: Uint8Array, start: number, end: number, fold: boolean): void {
    const h = this.#pending;
    if (!h) return;
    const room = this.#headerSizeLimit - h.length;
    if (room <= 0) return;
    if (fold) h.length++;
    const stop = Math.min(end, start + room);
    for (let i = start; i < stop && !h.has8bit; i++) h.has8bit = (buf[i] as number) > 127;
    h.length += stop - start;
    if (h.contentType || h.transferEncoding) this.#keep(buf, start, stop, fold);
  }

  /** Appends `buf[start, end)` to the Content-Type value, after an LF for a fold. */
  #keep(buf: Uint8Array, start: number, end: number, fold: boolean): void {
    const need = this.#valueLength + (fold ? 1 : 0) + end - start;
    if (need > this.#value.length) {
      const grown = new Uint8Array(
        Math.min(Math.max(need, 2 * this.#value.length, 256), this.#headerSizeLimit + 1),
      );
      grown.set(this.#value.subarray(0, this.#valueLength));
      this.#value = grown;
    }
    if (fold) this.#value[this.#valueLength++] = LF;
    this.#value.set(buf.subarray(start, end), this.#valueLength);
    this.#valueLength += end - start;
  }

  /** One header is complete: judge it, and learn what a Content-Type says. */
  #endHeader(): void {
    const h = this.#pending;
    this.#pending = undefined;
    if (!h) return;
    if (h.has8bit && this.#state !== "primary") this.#found = true;
    if (h.transferEncoding) {
      this.#eightBitEncoding ||= isEightBitEncoding(this.#value.subarray(0, this.#valueLength));
    } else if (h.contentType) {
      const reader = new ValueReader(this.#value.subarray(0, this.#valueLength));
      this.#contentType(reader);
      this.#work += reader.work;
    }
    // A long value's buffer (up to header_size_limit, outside
    // smtpd_memory_budget) is not kept for the rest of the message.
    if (this.#value.length > VALUE_KEPT) this.#value = new Uint8Array(0);
  }

  /** A Content-Type value, as mime_state.c reads it (type/subtype; boundary=). */
  #contentType(value: ValueReader): void {
    if (!value.next() || value.count === 0) return;
    const subtype = value.isSpecial(1, SLASH) && value.kindOf(2) === WORD
      ? value.bytes(2)
      : undefined;
    if (value.isWord(0, "text")) {
      this.#kind = "plain";
    } else if (value.isWord(0, "message")) {
      // Postfix looks into rfc822 and (without downgrading) global messages.
      this.#kind = subtype && (asciiIs(subtype, "rfc822") || asciiIs(subtype, "global"))
        ? "message"
        : "other";
    } else if (value.isWord(0, "multipart")) {
      this.#kind = "multipart";
      const digest = subtype !== undefined && asciiIs(subtype, "digest");
      while (value.next()) {
        if (
          value.isWord(0, "boundary") && value.isSpecial(1, EQUALS) &&
          value.count >= 3 && value.kindOf(2) !== SPECIAL &&
          this.#stack.length < this.#nestingLimit
        ) {
          // The boundary's bytes as they are: a "--" line is compared byte by byte.
          const text = value.bytes(2).slice(0, this.#boundaryLengthLimit);
          if (text.length >= this.#prefixHashes.length) {
            this.#prefixHashes = new Uint16Array(text.length + 1);
          }
          this.#stack.push({ text, hash: boundaryHash(text, 0, text.length), digest });
        }
      }
    } else {
      this.#kind = "other";
    }
  }
}

/** Whether `buf` is `lower` (ASCII, lower case) in any case. */
function asciiIs(buf: Uint8Array, lower: string): boolean {
  if (buf.length !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    if (((buf[i] as number) | 0x20) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** C's isspace(): the white space Postfix skips before a header's value. */
function isCSpace(c: number): boolean {
  return c === SP || (c >= HTAB && c <= CR);
}

/**
 * Whether a Content-Transfer-Encoding value says 8bit or binary, as
 * Postfix's cleanup_header_callback reads it: leading white space (folds
 * included) skipped, the rest compared whole, in any case.
 */
function isEightBitEncoding(value: Uint8Array): boolean {
  let i = 0;
  while (i < value.length && isCSpace(value[i] as number)) i++;
  const rest = value.subarray(i);
  return asciiIs(rest, "8bit") || asciiIs(rest, "binary");
}

/** Whether a header's name, `buf[start, end)`, is Content-Type (any case). */
function isContentType(buf: Uint8Array, start: number, end: number): boolean {
  return asciiIs(buf.subarray(start, end), CONTENT_TYPE);
}

function startsWith(buf: Uint8Array, at: number, prefix: Uint8Array): boolean {
  for (let k = 0; k < prefix.length; k++) if (buf[at + k] !== prefix[k]) return false;
  return true;
}

/** The kinds of token of a Content-Type value. */
const WORD = 1;
const QUOTED = 2;
const SPECIAL = 3;

function isSpace(c: number): boolean {
  return c === SP || c === HTAB || c === CR || c === LF;
}

/** A tspecial, white space or control character ends a token. */
function separates(c: number): boolean {
  return c <= 32 || c === 127 || TSPECIAL[c] === 1;
}

/**
 * Reads a Content-Type value (its bytes, folds as LF) one parameter at a
 * time, as Postfix's header_token: white space and comments skipped,
 * quoted strings kept whole, a tspecial or control character a token of
 * its own. Only the first three tokens of a parameter are kept (type "/"
 * subtype, name "=" value), as positions, so a value of tens of thousands
 * of parameters allocates nothing per parameter; each byte is looked at a
 * bounded number of times, however the client arranges quotes, comments
 * and folds.
 */
class ValueReader {
  #text: Uint8Array;
  #at = 0;
  /** The quoted strings' text, one after the other (never longer than the value). */
  #quoted: Uint8Array;
  #quotedLength = 0;
  /** Tokens in the current parameter. */
  count = 0;
  #kinds = new Uint8Array(3);
  #starts = new Int32Array(3);
  #ends = new Int32Array(3);
  /** Bytes looked at, for the bound on a hostile header's cost (tests). */
  work = 0;

  constructor(text: Uint8Array) {
    this.#text = text;
    this.#quoted = new Uint8Array(text.length);
  }

  /** The kind of token k of the parameter (0 when there is none). */
  kindOf(k: number): number {
    return k < this.count ? this.#kinds[k] as number : 0;
  }

  /** The bytes of token k (a word, a quoted string's text, or the separator). */
  bytes(k: number): Uint8Array {
    const from = this.#kinds[k] === QUOTED ? this.#quoted : this.#text;
    return from.subarray(this.#starts[k], this.#ends[k]);
  }

  /** Whether token k is the word `lower`, in any case. */
  isWord(k: number, lower: string): boolean {
    return this.kindOf(k) === WORD && asciiIs(this.bytes(k), lower);
  }

  /** Whether token k is the separator `byte`. */
  isSpecial(k: number, byte: number): boolean {
    return this.kindOf(k) === SPECIAL && this.#text[this.#starts[k] as number] === byte;
  }

  #keep(kind: number, start: number, end: number): void {
    if (this.count < 3) {
      this.#kinds[this.count] = kind;
      this.#starts[this.count] = start;
      this.#ends[this.count] = end;
    }
    this.count++;
  }

  /**
   * Reads the tokens up to the next ";", and past it.
   * @returns false at the end of the value
   */
  next(): boolean {
    const text = this.#text;
    this.count = 0;
    let i = this.#at;
    let ended = true;
    while (i < text.length) {
      const c = text[i++] as number;
      this.work++;
      if (isSpace(c)) continue;
      if (c === SEMICOLON) {
        ended = false;
        break;
      }
      if (c === LPAREN) {
        for (let depth = 1; i < text.length && depth > 0; this.work++) {
          const d = text[i++];
          if (d === LPAREN) depth++;
          else if (d === RPAREN) depth--;
          else if (d === BACKSLASH) i++;
        }
      } else if (c === QUOTE) {
        const q = this.#quoted;
        const start = this.#quotedLength;
        let n = start;
        while (i < text.length) {
          const d = text[i++] as number;
          this.work++;
          if (d === QUOTE) break;
          if (d === LF) {
            // A fold inside the string: the white space before it goes.
            // Each byte is dropped at most once, so this stays linear.
            while (n > start && isSpace(q[n - 1] as number)) {
              n--;
              this.work++;
            }
            continue;
          }
          if (d === BACKSLASH) {
            if (i >= text.length) break;
            q[n++] = text[i++] as number;
          } else {
            q[n++] = d;
          }
        }
        this.#quotedLength = n;
        this.#keep(QUOTED, start, n);
      } else if (separates(c)) {
        this.#keep(SPECIAL, i - 1, i);
      } else {
        const from = i - 1;
        while (i < text.length && !separates(text[i] as number)) {
          i++;
          this.work++;
        }
        this.#keep(WORD, from, i);
      }
    }
    this.#at = i;
    return this.count > 0 || !ended;
  }
}
