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
 * above 127. It stops looking once it knows: after a match, or in a body
 * with no open multipart boundary (nothing can start a header block again).
 *
 * @module
 */

import { headerNameEnd } from "./headers.ts";

const SP = 0x20;
const HTAB = 0x09;
const DASH = 0x2d;
const LF = new Uint8Array([0x0a]);
const LATIN1 = new TextDecoder("latin1");
const CONTENT_TYPE = "content-type";
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

/** RFC 2045 §5.1 tspecials, the separators of a Content-Type value. */
const TSPECIALS = '()<>@,;:\\"/[]?=';

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
   * header_size_limit), whether a byte of it is above 127, and, for a
   * Content-Type only, the pieces of its value.
   */
  #pending: { length: number; has8bit: boolean; value?: Uint8Array[] } | undefined;
  #prevPartial = false;
  #found = false;
  #headerSizeLimit: number;
  #boundaryLengthLimit: number;
  #nestingLimit: number;

  constructor(limits: MimeHeaderLimits = {}) {
    this.#headerSizeLimit = limits.headerSizeLimit ?? 102_400;
    this.#boundaryLengthLimit = limits.boundaryLengthLimit ?? 2048;
    this.#nestingLimit = limits.nestingLimit ?? 100;
  }

  /**
   * Bytes the boundary comparisons have looked at: each "--" line's hashed
   * prefix and each boundary compared in full. For the bound on a hostile
   * body's cost (tests).
   */
  get work(): number {
    return this.#work;
  }

  /** A part or attached-message header held a non-ASCII byte. */
  get found(): boolean {
    return this.#found;
  }

  /** Nothing later in the message can change the answer. */
  get done(): boolean {
    return this.#found || (this.#state === "body" && this.#stack.length === 0);
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
        if (this.#found) return;
      }
      const name = headerNameEnd(buf, start, end);
      if (name >= 0) {
        // As mime_state.c: the name (ASCII), then the text after the colon.
        this.#pending = {
          length: name - start + 1,
          has8bit: false,
          ...(isContentType(buf, start, name) ? { value: [] } : {}),
        };
        return this.#collect(buf, buf.indexOf(0x3a, name) + 1, end, false);
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
    if (fold) {
      h.length++;
      h.value?.push(LF);
    }
    const stop = Math.min(end, start + room);
    for (let i = start; i < stop && !h.has8bit; i++) h.has8bit = (buf[i] as number) > 127;
    h.value?.push(buf.slice(start, stop));
    h.length += stop - start;
  }

  /** One header is complete: judge it, and learn what a Content-Type says. */
  #endHeader(): void {
    const h = this.#pending;
    this.#pending = undefined;
    if (!h) return;
    if (h.has8bit && this.#state !== "primary") {
      this.#found = true;
      return;
    }
    if (h.value) this.#contentType(h.value.map((piece) => LATIN1.decode(piece)).join(""));
  }

  /** A Content-Type value, as mime_state.c reads it (type/subtype; boundary=). */
  #contentType(value: string): void {
    const at = { i: 0 };
    const first = tokens(value, at);
    if (!first || first.length === 0) return;
    const type = first[0]?.token?.toLowerCase();
    const subtype = first.length >= 3 && first[1]?.special === "/"
      ? first[2]?.token?.toLowerCase()
      : undefined;
    if (type === "text") {
      this.#kind = "plain";
    } else if (type === "message") {
      // Postfix looks into rfc822 and (without downgrading) global messages.
      this.#kind = subtype === "rfc822" || subtype === "global" ? "message" : "other";
    } else if (type === "multipart") {
      this.#kind = "multipart";
      for (let t = tokens(value, at); t; t = tokens(value, at)) {
        const v = t[2];
        if (
          t.length >= 3 && t[0]?.token?.toLowerCase() === "boundary" && t[1]?.special === "=" &&
          v && (v.token ?? v.quoted) !== undefined && this.#stack.length < this.#nestingLimit
        ) {
          const text = new TextEncoder().encode(v.token ?? v.quoted)
            .subarray(0, this.#boundaryLengthLimit);
          if (text.length >= this.#prefixHashes.length) {
            this.#prefixHashes = new Uint16Array(text.length + 1);
          }
          this.#stack.push({
            text,
            hash: boundaryHash(text, 0, text.length),
            digest: subtype === "digest",
          });
        }
      }
    } else {
      this.#kind = "other";
    }
  }
}

/** A tspecial, white space or control character ends a token. */
function separates(ch: string): boolean {
  const c = ch.charCodeAt(0);
  return c <= 32 || c === 127 || TSPECIALS.includes(ch);
}

/** Whether a header's name, `buf[start, end)`, is Content-Type (any case). */
function isContentType(buf: Uint8Array, start: number, end: number): boolean {
  if (end - start !== CONTENT_TYPE.length) return false;
  for (let i = 0; i < CONTENT_TYPE.length; i++) {
    if (((buf[start + i] as number) | 0x20) !== CONTENT_TYPE.charCodeAt(i)) return false;
  }
  return true;
}

function startsWith(buf: Uint8Array, at: number, prefix: Uint8Array): boolean {
  for (let k = 0; k < prefix.length; k++) if (buf[at + k] !== prefix[k]) return false;
  return true;
}

interface Token {
  readonly token?: string;
  readonly quoted?: string;
  readonly special?: string;
}

/**
 * The tokens of a Content-Type value up to the next ";" (as Postfix's
 * header_token: white space and comments skipped, quoted strings kept
 * whole, a tspecial or control character is a token of its own).
 * @param text the value
 * @param at where to start; moved past the ";"
 * @returns the tokens, or undefined at the end of the value
 */
function tokens(text: string, at: { i: number }): Token[] | undefined {
  const out: Token[] = [];
  let i = at.i;
  let ended = true;
  while (i < text.length) {
    const ch = text[i++] as string;
    if (/[ \t\r\n]/.test(ch)) continue;
    if (ch === ";") {
      ended = false;
      break;
    }
    if (ch === "(") {
      for (let depth = 1; i < text.length && depth > 0;) {
        const c = text[i++];
        if (c === "(") depth++;
        else if (c === ")") depth--;
        else if (c === "\\") i++;
      }
    } else if (ch === '"') {
      let q = "";
      while (i < text.length) {
        const c = text[i++] as string;
        if (c === '"') break;
        if (c === "\n") {
          q = q.replace(/[ \t\r\n]+$/, "");
          continue;
        }
        if (c === "\\") {
          if (i >= text.length) break;
          q += text[i++];
        } else {
          q += c;
        }
      }
      out.push({ quoted: q });
    } else if (separates(ch)) {
      out.push({ special: ch });
    } else {
      let w = ch;
      while (i < text.length && !separates(text[i] as string)) w += text[i++];
      out.push({ token: w });
    }
  }
  at.i = i;
  return out.length === 0 && ended ? undefined : out;
}
