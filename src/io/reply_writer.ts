/**
 * Collects replies and writes them in one system call per pipelined group:
 * the session calls {@linkcode ReplyWriter.flush} only when the client's
 * input has run dry (RFC 2920 §3.2), or before it waits, sleeps or closes.
 *
 * @module
 */

/** Where bytes go: a socket, stdout. */
export interface ByteSink {
  write(p: Uint8Array): Promise<number>;
}

import { Deadline } from "./deadline.ts";
import { encodeWireText } from "./wire_text.ts";

/** Raised when the client does not take a reply within the timeout (it does not read). */
export class WriteTimeoutError extends Error {
  constructor() {
    super("Timed out writing to client");
    this.name = "WriteTimeoutError";
  }
}

/** Buffers reply text and writes it with a timeout. */
export class ReplyWriter {
  #sink: ByteSink;
  #pending = "";
  #timeoutMs: number;
  #onQueue: ((text: string) => void) | undefined;
  #deadline = new Deadline(() => new WriteTimeoutError());

  /**
   * @param sink the byte sink
   * @param timeoutMs longest time a write may take
   * @param onQueue observer of every reply as it is queued (transcripts, debug logs), so
   *   that a transcript holds each reply right after its command, before the group is sent
   */
  constructor(sink: ByteSink, timeoutMs = 300_000, onQueue?: (text: string) => void) {
    this.#sink = sink;
    this.#timeoutMs = timeoutMs;
    this.#onQueue = onQueue;
  }

  /**
   * Writes to a new sink from now on (after a TLS upgrade).
   * @param sink the new byte sink
   */
  setSink(sink: ByteSink): void {
    this.#sink = sink;
  }

  /** Queues text for the next flush. */
  push(text: string): void {
    this.#pending += text;
    this.#onQueue?.(text);
  }

  /** Whether anything waits to be written. */
  get hasPending(): boolean {
    return this.#pending.length > 0;
  }

  /** How much reply text waits to be written (UTF-16 code units, about bytes). */
  get pendingLength(): number {
    return this.#pending.length;
  }

  /**
   * Writes everything queued.
   * @param timeoutMs the longest this write may take (default: the writer's timeout)
   */
  flush(timeoutMs = this.#timeoutMs): Promise<void> {
    if (this.#pending.length === 0) return Promise.resolve();
    const text = this.#pending;
    this.#pending = "";
    // A reply that echoes the client's text gives its 8-bit bytes back as
    // they came (smtputf8_enable off), as Postfix's smtpd does.
    const bytes = encodeWireText(text);
    this.#deadline.at = Date.now() + timeoutMs;
    return this.#deadline.race(writeAll(this.#sink, bytes));
  }

  /** Stops the writer's timer (the session is over). */
  close(): void {
    this.#deadline.close();
  }
}

/**
 * Writes all bytes, looping over short writes.
 * @param sink the byte sink
 * @param bytes what to write
 */
export async function writeAll(sink: ByteSink, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await sink.write(bytes.subarray(off));
}
