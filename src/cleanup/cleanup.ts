/**
 * The cleanup writer: takes an envelope and the body lines of one message
 * and turns them into one durable queue file, as Postfix's cleanup(8) does
 * for smtpd. It prepends our Received: header, adds Message-ID: and Date:
 * when missing (and From: for local submissions), adds the always_bcc
 * recipient, and enforces hopcount_limit. Only the header block is
 * buffered (one byte buffer for all its lines, see header_block.ts); body
 * lines stream to the queue file. What a message holds in memory is
 * reserved against the process's memory budget as it grows; without room
 * the message is refused with 452 4.3.1 and let go at once.
 *
 * @module
 */

import type { Config } from "../config/mod.ts";
import type { BodySink } from "../io/dot_reader.ts";
import { encodeWireText } from "../io/wire_text.ts";
import { quoteAddress } from "../log/mod.ts";
import { REPLY, type Reply } from "../protocol/reply.ts";
import {
  type QueueFile,
  type QueueName,
  type QueueRecipient,
  type QueueStore,
  QueueWriteError,
} from "../queue/mod.ts";
import { HeaderBlock } from "./header_block.ts";
import {
  envelopeAttributes,
  envelopeSendOpts,
  isAscii,
  longestEnvelopeRecord,
  type RecipientDsnFacts,
  SMTPUTF8_HEADER,
  uniqueRecipients,
} from "./envelope_records.ts";
import {
  DROPPED_FIELDS,
  headerNameEnd,
  isContinuation,
  isField,
  isHeaderStart,
} from "./headers.ts";
import { MimeHeaderScan } from "./mime_headers.ts";
import { receivedHeader } from "./received.ts";
import { compactStamp, formatRfc5322Date } from "./rfc5322_date.ts";

/** Who sent the message, for Received: and the envelope attributes. */
export interface MessageOrigin {
  readonly clientName: string;
  readonly clientAddress: string;
  readonly clientPort: string;
  readonly helo: string | undefined;
  /** "SMTP" or "ESMTP" (Received: adds RFC 3848's "S" and "A" to ESMTP). */
  readonly protocol: string;
  /** True for stand-alone local submissions. */
  readonly local: boolean;
  /** What TLS negotiated, when the session is encrypted. */
  readonly tls?: { readonly protocol: string; readonly cipher: string; readonly bits: number };
  /** The AUTH login. */
  readonly sasl?: { readonly method: string; readonly username: string };
  /** AUTH= of MAIL FROM, as sent (logged in or not): the sasl_sender attribute. */
  readonly saslSender?: string;
}

/** The envelope of one message. */
export interface MessageEnvelope {
  readonly queue: QueueName;
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly arrival: Date;
  readonly origin: MessageOrigin;
  /** BODY= from MAIL FROM. */
  readonly body: "7BIT" | "8BITMIME" | undefined;
  /** Headers from access actions (PREPEND), written above our Received:. */
  readonly prepend?: readonly string[];
  /** SMTPUTF8 on MAIL FROM (RFC 6531). */
  readonly smtputf8?: boolean;
  /** Each recipient's DSN facts, in the order of `recipients`. */
  readonly recipientDsn?: readonly (RecipientDsnFacts | undefined)[];
  /** RET= as Postfix's bits (1 FULL, 2 HDRS). */
  readonly dsnRet?: number;
  /** ENVID=, decoded. */
  readonly dsnEnvid?: string;
  /**
   * The content came by BDAT: a mailbox "From " line on top stays body
   * (Postfix's smtpd makes it X-Mailbox-Line: only in DATA).
   */
  readonly chunked?: boolean;
}

/**
 * What access actions ask of the queue file when the message is complete
 * (Postfix's smtpd sends these to its cleanup after the content).
 */
export interface MessageRouting {
  /** HOLD: the file goes to hold/. */
  readonly hold?: boolean;
  /** FILTER: the content filter, `transport:destination`. */
  readonly filter?: string | undefined;
  /** REDIRECT: the one address the message goes to instead. */
  readonly redirect?: string | undefined;
  /** BCC: more recipients, each with NOTIFY=NEVER. */
  readonly bcc?: readonly string[];
}

/** DSN NOTIFY=NEVER (Postfix's dsn_mask.h), for BCC recipients. */
const NOTIFY_NEVER = 1;

/** How a message ended. */
export type CleanupResult =
  | {
    kind: "queued";
    id: string;
    /** The size record's message size, as Postfix's qmgr logs it. */
    size: number;
    messageId: string;
    recipients: number;
  }
  | { kind: "refused"; reply: Reply; reason: string };

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);
const COLON = 58;

/** The settings cleanup uses. */
export type CleanupConfig =
  & Pick<
    Config,
    | "myhostname"
    | "mail_name"
    | "hopcount_limit"
    | "header_size_limit"
    | "always_bcc"
    | "myorigin"
    | "smtpd_sasl_authenticated_header"
    | "smtpd_tls_received_header"
  >
  & {
    readonly smtputf8_enable?: boolean;
    /** The longest content record (Postfix's line_length_limit); 2048 when not given. */
    readonly line_length_limit?: number;
  };

/** Starts messages. */
export class Cleanup {
  #store: QueueStore;
  #config: CleanupConfig;

  /**
   * @param store the queue
   * @param config cleanup settings
   */
  constructor(store: QueueStore, config: CleanupConfig) {
    this.#store = store;
    this.#config = config;
  }

  /**
   * Opens a queue file for a message.
   * @param env the envelope
   * @param memory the message's reservation against the memory budget
   * @returns the draft that receives body lines
   * @throws {QueueWriteError} when no queue file can be created
   */
  begin(env: MessageEnvelope, memory?: MemoryReservation): Promise<MessageDraft> {
    const file = this.#store.create(env.queue, env.arrival);
    return Promise.resolve(new MessageDraft(file, env, this.#config, memory));
  }
}

/**
 * What a message may hold in memory: a reservation against the process's
 * memory budget (the session's `MemoryHold`).
 */
export interface MemoryReservation {
  /** Makes sure `total` bytes are reserved; false when the budget has no room. */
  ensure(total: number): boolean;
  /** Gives back what is reserved beyond `total` bytes. */
  trim(total: number): void;
}

/** A reservation that always has room (tests, tools). */
export const UNLIMITED: MemoryReservation = { ensure: () => true, trim: () => {} };

/**
 * What a message reserves at DATA, before its first line: the first record
 * buffer and the first header buffers.
 */
export const DRAFT_FIRST_MEMORY = 16 * 1024;
/**
 * The most a queue file's record buffers hold: two of them (double
 * buffering), each up to 512 KiB (a flush at 256 KiB, the last record
 * past it doubles the buffer).
 */
const RECORDS_MAX = 1024 * 1024;
/** Record-buffer reservations grow in steps of this many bytes. */
const RECORDS_STEP = 64 * 1024;

/** One message being received: a {@linkcode BodySink} over a queue file. */
export class MessageDraft implements BodySink {
  readonly id: string;
  #file: QueueFile;
  #env: MessageEnvelope;
  #config: CleanupConfig;
  #recipients: QueueRecipient[];
  /** SMTPUTF8_HEADER once a header line holds a non-ASCII byte. */
  #headerOpts = 0;
  /** Looks for a non-ASCII byte in the headers of MIME parts and attached messages. */
  #mime: MimeHeaderScan;
  #inHeaders = true;
  #headers: HeaderBlock;
  #headerLimit: number;
  #heldBytes = 0;
  #continuing = false;
  /** Only mailbox "From " lines held so far (see {@linkcode mailboxLine}). */
  #mailboxLines = true;
  #refused: { reply: Reply; reason: string } | undefined;
  #writeError: Error | undefined;
  #messageId = "";
  #memory: MemoryReservation;
  /** Bytes reserved for the record buffers: they hold at most what was written. */
  #records = DRAFT_FIRST_MEMORY;

  constructor(
    file: QueueFile,
    env: MessageEnvelope,
    config: CleanupConfig,
    memory: MemoryReservation = UNLIMITED,
  ) {
    this.id = file.id;
    this.#file = file;
    this.#env = env;
    this.#mailboxLines = env.chunked !== true;
    this.#config = config;
    this.#memory = memory;
    // Every held piece counts its bytes plus 2 against header_size_limit
    // (HeaderBlock keeps offsets below 2^30).
    this.#headerLimit = Math.min(config.header_size_limit, 2 ** 30 - 1);
    this.#headers = new HeaderBlock(this.#headerLimit, (this.#headerLimit >> 1) + 1);
    this.#mime = new MimeHeaderScan({ headerSizeLimit: this.#headerLimit });
    this.#recipients = uniqueRecipients(
      env.recipients,
      env.recipientDsn,
      config.always_bcc.trim(),
      config.smtputf8_enable !== false,
    );
    const attributes = envelopeAttributes(env);
    const limit = config.line_length_limit ?? 2048;
    const longest = env.queue === "maildrop"
      ? longestEnvelopeRecord(env.sender, this.#recipients, attributes)
      : 0;
    if (longest > limit) {
      // Postfix's pickup would throw the file away after our 250 (as its
      // postdrop refuses such a record): the client gets a 451 instead.
      this.#refused = {
        reply: REPLY.queueWriteError,
        reason:
          `an envelope record of ${longest} bytes is longer than line_length_limit (${limit}): Postfix's pickup would refuse the file`,
      };
    }
    file.writeEnvelope({
      arrival: env.arrival,
      sender: env.sender,
      recipients: this.#recipients,
      attributes,
      senderAttributes: this.#encoding(),
      sendOpts: envelopeSendOpts(
        env.smtputf8 === true,
        env.sender,
        config.smtputf8_enable !== false,
      ),
    });
  }

  /**
   * Bytes this message holds in memory for its header block (reserved
   * against the memory budget with the record buffers' share).
   */
  get headerMemory(): number {
    return this.#headers.memory;
  }

  /**
   * The BODY= type as Postfix's encoding attribute, for both segments:
   * Postfix's pickup (maildrop/, `postsuper -r`) drops the extracted one,
   * so cleanup and the smtp client behind it see the envelope's.
   */
  #encoding(): [string, string][] {
    const body = this.#env.body;
    return body === "8BITMIME"
      ? [["encoding", "8bit"]]
      : body === "7BIT"
      ? [["encoding", "7bit"]]
      : [];
  }

  /**
   * The encoding attribute of the extracted segment, the one Postfix's qmgr
   * goes by: 8bit when a header block said `Content-Transfer-Encoding:
   * 8bit` or `binary`, whatever BODY= said (or without BODY=), as Postfix's
   * cleanup writes it (detect_8bit_encoding_header); else BODY='s. With
   * BODY=7BIT kept, Postfix's smtp client would send 8-bit content
   * unconverted to a next hop without 8BITMIME.
   */
  #extractedEncoding(): [string, string][] {
    return this.#mime.eightBitEncoding ? [["encoding", "8bit"]] : this.#encoding();
  }

  /** Receives one body line, `buf[start, end)`, from the DATA reader. */
  line(buf: Uint8Array, start: number, end: number, partial: boolean): void | Promise<void> {
    if (this.#refused || this.#writeError) return;
    // A folded line right after the mailbox lines starts the body (Postfix).
    let body = false;
    if (this.#inHeaders && !this.#continuing && this.#mailboxLines) {
      const fixed = mailboxLine(buf, start, end);
      if (fixed) [buf, start, end] = [fixed, 0, fixed.length];
      else {
        this.#mailboxLines = false;
        body = this.#headers.count > 0 && isContinuation(buf, start, end);
      }
    }
    if (!this.#mime.done) this.#mime.line(buf, start, end, partial);
    if (this.#inHeaders) {
      const len = end - start;
      const name = this.#continuing ? -1 : headerNameEnd(buf, start, end);
      const holds = !body && (this.#continuing || name >= 0 ||
        (this.#headers.count > 0 && isContinuation(buf, start, end)));
      if (holds && name >= 0 && buf[name] !== COLON) {
        // "Subject : x" (RFC 822's obsolete form) is held as "Subject: x",
        // as Postfix's cleanup writes it (mime_state.c); its name then
        // reads as the field's (a Received: counts towards hopcount_limit).
        const colon = buf.indexOf(COLON, name);
        const fixed = new Uint8Array(name - start + end - colon);
        fixed.set(buf.subarray(start, name));
        fixed.set(buf.subarray(colon, end), name - start);
        if (this.#heldBytes + fixed.length <= this.#headerLimit) {
          return this.#hold(fixed, 0, fixed.length, partial);
        }
      } else if (holds && this.#heldBytes + len <= this.#headerLimit) {
        return this.#hold(buf, start, end, partial);
      }
      this.#endHeaders();
      if (this.#refused) return;
      if (len > 0) {
        // The body began without an empty line: add one, as Postfix does.
        // (The DATA reader waits for this call, so buf stays valid.)
        const r = this.#write(EMPTY, false);
        if (r) return r.then(() => this.#writeRange(buf, start, end, partial));
      }
    }
    return this.#writeRange(buf, start, end, partial);
  }

  /** Holds one header line (or piece of one) in the header block. */
  #hold(buf: Uint8Array, start: number, end: number, partial: boolean): void | Promise<void> {
    const len = end - start;
    const h = this.#headers;
    const after = h.memoryAfter(len);
    if (after > h.memory && !this.#memory.ensure(after + this.#records)) {
      return this.#outOfMemory("header block", after);
    }
    h.append(buf, start, end, partial);
    this.#heldBytes += len + 2;
    this.#continuing = partial;
  }

  /** Whether the DATA reader may hand on runs of lines: once the headers are done. */
  get takesRuns(): boolean {
    return !this.#inHeaders;
  }

  /** Receives a run of whole body lines (see `BodySink.lines`). */
  lines(
    buf: Uint8Array,
    start: number,
    end: number,
    lens: Uint16Array,
    count: number,
  ): void | Promise<void> {
    if (this.#refused || this.#writeError) return;
    if (!this.#mime.done) {
      for (let i = 0, at = start; i < count; at += (lens[i] as number) + 2, i++) {
        this.#mime.line(buf, at, at + (lens[i] as number), false);
      }
    }
    if (this.#file.offset + (end - start) + count > this.#records && this.#recordsFull()) {
      return this.#outOfMemory("record buffers", this.#records + RECORDS_STEP);
    }
    return this.#store(() => this.#file.lines(buf, start, end, lens, count));
  }

  #write(bytes: Uint8Array, partial: boolean): void | Promise<void> {
    return this.#writeRange(bytes, 0, bytes.length, partial);
  }

  #writeRange(buf: Uint8Array, start: number, end: number, partial: boolean): void | Promise<void> {
    const limit = this.#config.line_length_limit ?? 2048;
    if (end - start > limit) return this.#writePieces(buf, start, end, partial, limit);
    if (this.#file.offset + (end - start) + 6 > this.#records && this.#recordsFull()) {
      return this.#outOfMemory("record buffers", this.#records + RECORDS_STEP);
    }
    return this.#store(() => this.#file.line(buf, start, end, partial));
  }

  /**
   * A line longer than line_length_limit (a notify_classes transcript line,
   * our Received: with a long HELO name or recipient) goes into the file as
   * L records of that size and a last piece, as Postfix's cleanup writes
   * it: Postfix's pickup refuses a maildrop file with a longer record, so
   * an accepted message would be thrown away.
   */
  #writePieces(
    buf: Uint8Array,
    start: number,
    end: number,
    partial: boolean,
    limit: number,
  ): void | Promise<void> {
    const writes: Promise<void>[] = [];
    for (let at = start; at < end; at += limit) {
      const last = end - at <= limit;
      const r = this.#writeRange(buf, at, last ? end : at + limit, last ? partial : true);
      if (r) writes.push(r);
    }
    if (writes.length > 0) return Promise.all(writes).then(() => {});
  }

  /**
   * Reserves the next step of record-buffer memory, up to what two record
   * buffers can hold (past that the file is written as it grows).
   * @returns true when the budget has no room for it
   */
  #recordsFull(): boolean {
    if (this.#records >= RECORDS_MAX) return false;
    const next = Math.min(RECORDS_MAX, this.#records + RECORDS_STEP);
    if (!this.#memory.ensure(this.#headers.memory + next)) return true;
    this.#records = next;
    return false;
  }

  /**
   * The memory budget has no room: the message is refused with 452 4.3.1
   * at its end (the DATA reader reads on; nothing more is stored) and what
   * it holds is let go at once.
   */
  #outOfMemory(what: string, wanted: number): Promise<void> {
    this.#refused = {
      reply: REPLY.insufficientStorage,
      reason:
        `memory budget exhausted (smtpd_memory_budget): no room for ${wanted} bytes of ${what}`,
    };
    this.#inHeaders = false;
    this.#headers = new HeaderBlock(0, 0);
    this.#memory.trim(0);
    return this.#file.abort();
  }

  /**
   * Runs one queue-file write; a failure, thrown or later, is kept for
   * finish() instead of ending the DATA reader.
   */
  #store(write: () => void | Promise<void>): void | Promise<void> {
    try {
      const r = write();
      if (r) return r.catch((err) => this.#fail(err));
    } catch (err) {
      this.#fail(err);
    }
  }

  #fail(err: unknown): void {
    this.#writeError = err instanceof Error ? err : new Error(String(err));
  }

  /** Emits Received:, the held headers, and any missing headers. */
  #endHeaders(): void {
    this.#inHeaders = false;
    const headers = this.#headers;
    const facts = headers.facts();
    if (facts.received + 1 >= this.#config.hopcount_limit) {
      this.#refused = {
        reply: REPLY.tooManyHops,
        reason: `too many hops: ${facts.received} Received: headers`,
      };
      return;
    }
    const cfg = this.#config;
    const env = this.#env;
    const when = formatRfc5322Date(env.arrival);
    const received = receivedHeader(cfg, env, this.id, when);
    if (!isAscii(received)) this.#headerOpts = SMTPUTF8_HEADER;
    // PREPEND headers go above our own Received:, as Postfix's smtpd writes
    // them; Postfix's cleanup scans them as any header (a $1 of a pattern
    // table can put a UTF-8 address or HELO name into one).
    for (const h of env.prepend ?? []) {
      if (!isAscii(h)) this.#headerOpts = SMTPUTF8_HEADER;
      this.#write(encodeWireText(h), false);
    }
    // An 8-bit byte of an address (smtputf8_enable off) goes in as the byte.
    for (const l of received.split("\n")) this.#write(encodeWireText(l), false);
    // header_size_limit may have cut a long line: the block ends with it.
    headers.closeLastLine();
    // Bcc:, Resent-Bcc:, Content-Length: and Return-Path: go, with their
    // folded lines and the rest of a long line, as Postfix's cleanup drops
    // them (message_drop_headers); a Resent-Bcc: still makes the message resent.
    let lineStart = true;
    let dropping = false;
    headers.forEach((bytes, start, end, partial) => {
      if (this.#refused) return;
      const first = lineStart;
      lineStart = !partial;
      if (first && !isContinuation(bytes, start, end)) {
        dropping = isHeaderStart(bytes, start, end) &&
          DROPPED_FIELDS.some((n) => isField(bytes, start, end, n));
      }
      if (dropping) return;
      for (let i = start; i < end && this.#headerOpts === 0; i++) {
        if ((bytes[i] as number) > 127) this.#headerOpts = SMTPUTF8_HEADER;
      }
      this.#writeRange(bytes, start, end, partial);
    });
    if (this.#refused) return;
    this.#headers = new HeaderBlock(0, 0);
    this.#memory.trim(this.#records);
    // A message with a Resent- field gets the missing Resent-Message-Id:,
    // Resent-Date: and Resent-From: instead, as Postfix's cleanup adds them
    // (cleanup_header_done_callback); its log line then has no message ID
    // to give unless the message has one ("message-id=<>", as Postfix).
    const resent = facts.resent ? "Resent-" : "";
    const added = `<${compactStamp(env.arrival)}.${this.id}@${cfg.myhostname}>`;
    this.#messageId = facts.messageId ?? (facts.resent ? "<>" : added);
    if (facts.resent ? !facts.hasResentMessageId : !facts.messageId) {
      this.#write(encoder.encode(`${resent}Message-Id: ${added}`), false);
    }
    if (!(facts.resent ? facts.hasResentDate : facts.hasDate)) {
      this.#write(encoder.encode(`${resent}Date: ${when}`), false);
    }
    if (!(facts.resent ? facts.hasResentFrom : facts.hasFrom) && env.origin.local) {
      // Quoted as Postfix's cleanup writes it: `"a>, b"@x` is one address, `a>, b@x` two.
      const from = env.sender === "" ? `MAILER-DAEMON@${cfg.myhostname}` : quoteAddress(env.sender);
      this.#write(encodeWireText(`${resent}From: ${from}`), false);
    }
  }

  /**
   * Completes the message after the end-of-data line.
   * @param routing what access actions asked: hold/, a content filter, a
   *   redirect, more recipients
   * @returns queued (on stable storage) or refused
   */
  async finish(routing: MessageRouting = {}): Promise<CleanupResult> {
    try {
      return await this.#finish(routing);
    } finally {
      this.#memory.trim(0);
    }
  }

  async #finish(routing: MessageRouting): Promise<CleanupResult> {
    if (this.#inHeaders) this.#endHeaders();
    if (this.#refused) {
      await this.#file.abort();
      return { kind: "refused", ...this.#refused };
    }
    if (this.#writeError) {
      await this.#file.abort();
      return { kind: "refused", reply: REPLY.queueWriteError, reason: this.#writeError.message };
    }
    // Postfix's smtpd sends FILTER and REDIRECT, then each BCC address
    // followed by NOTIFY=NEVER, after the content; its cleanup writes the
    // first two as they come, the encoding attribute before the first
    // recipient, then the recipients. (Its smtpd's NOTIFY=NEVER comes
    // after the address, so its cleanup gives it to the next BCC address;
    // here every BCC address gets it, as meant: a failed copy never tells
    // the sender about it.)
    // (One address met twice is written once, as cleanup's duplicate check
    // does; one that is a recipient already is not written again, where
    // that check, which also compares the DSN flags, would keep it.)
    const already = new Set(
      this.#recipients.filter((r) => (r.original ?? r.address) === r.address).map((r) => r.address),
    );
    // Cleanup gives each one the original recipient DSN record it gives
    // any recipient without one: "rfc822;" and the address, or "utf-8;"
    // for a non-ASCII address when the client asked for SMTPUTF8.
    const bcc = [...new Set(routing.bcc)].filter((a) => !already.has(a))
      .map((address) => ({
        address,
        notify: NOTIFY_NEVER,
        dsnOrcpt: `${
          this.#env.smtputf8 && /[^\0-\x7f]/.test(address) ? "utf-8" : "rfc822"
        };${address}`,
      }));
    const limit = this.#config.line_length_limit ?? 2048;
    const longest = this.#env.queue === "maildrop" ? longestEnvelopeRecord("", bcc, []) : 0;
    if (longest > limit) {
      // A BCC address filled in from the client's ($1 of a pattern table)
      // can make a record longer than Postfix's pickup reads: 451 rather
      // than a 250 for a file it would throw away.
      await this.#file.abort();
      return {
        kind: "refused",
        reply: REPLY.queueWriteError,
        reason:
          `a BCC record of ${longest} bytes is longer than line_length_limit (${limit}): Postfix's pickup would refuse the file`,
      };
    }
    const extracted = {
      filter: routing.filter,
      redirect: routing.redirect,
      attributes: this.#extractedEncoding(),
      recipients: bcc,
    };
    let size: number;
    try {
      // Postfix's cleanup sets the header bit for any header it writes,
      // those of MIME parts and attached messages too.
      const headerOpts = this.#headerOpts | (this.#mime.found ? SMTPUTF8_HEADER : 0);
      const utf8 = this.#config.smtputf8_enable !== false ? headerOpts : 0;
      size = await this.#file.commit(extracted, { sendOpts: utf8, hold: routing.hold === true });
    } catch (err) {
      return {
        kind: "refused",
        reply: REPLY.queueWriteError,
        reason: err instanceof QueueWriteError ? err.message : String(err),
      };
    }
    return {
      kind: "queued",
      id: this.id,
      size,
      messageId: this.#messageId,
      recipients: this.#recipients.length + bcc.length,
    };
  }

  /** Throws the message away (client gone, too big, refused by policy). */
  async abort(): Promise<void> {
    this.#headers = new HeaderBlock(0, 0);
    this.#memory.trim(0);
    await this.#file.abort();
  }
}

const MAILBOX_PREFIX = encoder.encode("X-Mailbox-Line: ");
const FROM_SP = encoder.encode("From ");
const GT = 62;

/**
 * A mailbox "From " line (also ">From ", ">>From "...) at the top of a
 * message, as the header "X-Mailbox-Line: <line>", the way Postfix's
 * cleanup keeps it: the header block goes on after it, where a plain
 * non-header line would make it (and every header below it) body.
 * @param buf the bytes holding the line
 * @param start where the line begins
 * @param end where it ends
 * @returns the header line's bytes, or undefined for another line
 */
function mailboxLine(buf: Uint8Array, start: number, end: number): Uint8Array | undefined {
  let i = start;
  while (i < end && buf[i] === GT) i++;
  if (end - i < FROM_SP.length) return undefined;
  for (let k = 0; k < FROM_SP.length; k++) if (buf[i + k] !== FROM_SP[k]) return undefined;
  const line = new Uint8Array(MAILBOX_PREFIX.length + end - start);
  line.set(MAILBOX_PREFIX);
  line.set(buf.subarray(start, end), MAILBOX_PREFIX.length);
  return line;
}
