/**
 * Log lines in syslog's shape (RFC 3164 style, as Postfix writes them):
 * `Mon DD hh:mm:ss host postfix/smtpd[pid]: text`, written to stderr.
 * Severity words follow Postfix: "warning: ", "fatal: ", "error: ".
 * Every line's text passes {@linkcode sanitizeLogText} before any sink
 * (with smtputf8_enable off, {@linkcode asciiLogText}: printable ASCII
 * only, as Postfix's printable() then), cut to
 * {@linkcode MAX_RECORD_TEXT} characters first.
 *
 * @module
 */

import { asciiLogText, sanitizeLogText } from "./sanitize.ts";

/** Verbosity: 0 normal, 1+ verbose (-v, debug_peer_level). */
export type Verbosity = number;

/**
 * The longest text of one log record in bytes, as Postfix's
 * MSG_SYSLOG_RECLEN (2000); the rest is cut. A syslog server that cuts a longer record itself
 * (rsyslog at 8 KB over TCP) reads the rest as a record of its own, whose
 * every byte the client chose: a Message-ID of 8 KB could forge a line.
 */
export const MAX_RECORD_TEXT = 2000;

/**
 * The text cut to {@linkcode MAX_RECORD_TEXT} bytes of UTF-8 (Postfix's
 * limit is in bytes: a line of 2000 three-byte characters would be 6000),
 * at a character boundary.
 * @param text a record's text
 * @returns the text, or its longest prefix that fits
 */
export function cutRecordText(text: string): string {
  if (text.length * 3 <= MAX_RECORD_TEXT) return text;
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    let size = c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
    let units = 1;
    if (c >= 0xd800 && c < 0xdc00) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next < 0xe000) [size, units] = [4, 2];
    }
    if (bytes + size > MAX_RECORD_TEXT) return text.slice(0, i);
    bytes += size;
    i += units - 1;
  }
  return text;
}

/** Syslog severities (RFC 5424 §6.2.1). */
export const SEVERITY = { crit: 2, error: 3, warning: 4, info: 6, debug: 7 } as const;

/**
 * Where formatted lines go: the RFC 3164 line after the priority
 * ("Mon DD hh:mm:ss host tag[pid]: text\n") and its severity.
 */
export type LineSink = (line: string, severity: number) => void;

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const encoder = new TextEncoder();
/** Formats and emits log lines. */
export class Logger {
  #tag: string;
  #host: string;
  #sinks: LineSink[];
  #sanitize: (text: string) => string;
  readonly verbosity: Verbosity;
  /** "Mon DD hh:mm:ss" of {@linkcode Logger.#stampSecond}, formatted once per second. */
  #stamp = "";
  #stampSecond = -1;

  /**
   * @param options program tag ("postfix/smtpd"), host, verbosity, sinks
   *   (default: a {@linkcode StderrSink} of its own), and utf8
   *   (smtputf8_enable, default true: valid UTF-8 is kept; false: printable
   *   ASCII only)
   */
  constructor(
    options: {
      tag: string;
      host: string;
      verbosity?: number;
      sinks?: LineSink[];
      utf8?: boolean;
    },
  ) {
    this.#sanitize = options.utf8 === false ? asciiLogText : sanitizeLogText;
    this.#tag = `${options.tag}[${Deno.pid}]`;
    this.#host = options.host;
    this.verbosity = options.verbosity ?? 0;
    this.#sinks = options.sinks ?? [new StderrSink().write];
  }

  /** Logs a normal event. */
  info(text: string): void {
    this.#emit(text, SEVERITY.info);
  }

  /** How many warnings this logger has written (config --check counts them). */
  warnings = 0;

  /** Logs a warning ("warning: text"). */
  warning(text: string): void {
    this.warnings++;
    this.#emit(`warning: ${text}`, SEVERITY.warning);
  }

  /** Logs an error ("error: text"). */
  error(text: string): void {
    this.#emit(`error: ${text}`, SEVERITY.error);
  }

  /** Logs a fatal error, the process's last line ("fatal: text"). */
  fatal(text: string): void {
    this.#emit(`fatal: ${text}`, SEVERITY.crit);
  }

  /** Logs when verbosity is at least `level`. */
  debug(text: string, level = 1): void {
    if (this.verbosity >= level) this.#emit(text, SEVERITY.debug);
  }

  #emit(text: string, severity: number): void {
    // Every line, whatever wrote it, is made safe here, before any sink.
    // Sanitized before the byte cut, as Postfix's printable() runs before
    // its cut (that cut keeps surrogate pairs whole); 2000 bytes are never
    // more than 2000 UTF-16 units, so a longer text is sliced there first.
    const head = text.length > MAX_RECORD_TEXT ? text.slice(0, MAX_RECORD_TEXT) : text;
    const safe = cutRecordText(this.#sanitize(head));
    const line = `${this.#stampNow()} ${this.#host} ${this.#tag}: ${safe}\n`;
    for (const sink of this.#sinks) sink(line, severity);
  }

  #stampNow(): string {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    if (second !== this.#stampSecond) {
      this.#stampSecond = second;
      const d = new Date(now);
      this.#stamp = `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, " ")} ${
        String(d.getHours()).padStart(2, "0")
      }:${String(d.getMinutes()).padStart(2, "0")}:${String(d.getSeconds()).padStart(2, "0")}`;
    }
    return this.#stamp;
  }
}

/** How often collected log lines are written. */
const FLUSH_EVERY_MS = 20;

/**
 * The most log text (UTF-16 units; a line is mostly ASCII) a thread holds
 * for stderr while stderr does not take it: about 20,000 lines, a few
 * seconds of a busy server's log. Past it lines are dropped and counted.
 */
export const STDERR_BACKLOG = 4 * 1024 * 1024;

/**
 * How long after a failed write (a full file system, an I/O error) the
 * next one waits: the lines held meanwhile go out once it succeeds.
 */
const STDERR_RETRY_MS = 1000;

/**
 * How long a thread's turn at stderr may go without a sign of life (its
 * write taken or retried) before another thread takes the turn: the
 * holder's thread ended in the middle of a write.
 */
const STDERR_TURN_STALE_MS = 5000n;

/**
 * The process's turn at stderr, shared by its threads: one thread's
 * batch of lines goes out whole before another's starts. A write to a
 * pipe may be cut short (a non-blocking pipe with some room, a signal), and
 * the rest of it, written next, must not come after another thread's
 * lines: that would splice a line of one into a line of the other. The
 * cell holds 0 (free) or, in one value, the time (ms) its holder took or
 * renewed it (shifted 8 bits) and the holder's token, so that a holder
 * taken over never gives back the new holder's turn.
 */
export class StderrTurn {
  /** The cell, to hand to a listener thread. */
  readonly buffer: SharedArrayBuffer;
  #cell: BigInt64Array;
  /** Tells this thread's values from the others' (1-255, handed out in turn). */
  #token: bigint;
  /** The value this thread put in the cell when it took the turn. */
  #held = 0n;

  /**
   * @param buffer {@linkcode StderrTurn.buffer} of the main thread's turn
   *   (a listener thread's), or none for a new one
   */
  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(16)) {
    this.buffer = buffer;
    this.#cell = new BigInt64Array(buffer);
    // The second cell counts the threads' turns made (a replaced thread too).
    this.#token = 1n + Atomics.add(this.#cell, 1, 1n) % 255n;
  }

  /**
   * Takes the turn, unless another thread has it (and shows life).
   * @returns whether this thread has the turn now
   */
  take(): boolean {
    const mine = this.#now();
    const held = Atomics.compareExchange(this.#cell, 0, 0n, mine);
    // Held: by a thread alive, or by one that ended (taken over, unless
    // another thread just did).
    if (
      held !== 0n &&
      ((mine >> 8n) - (held >> 8n) < STDERR_TURN_STALE_MS ||
        Atomics.compareExchange(this.#cell, 0, held, mine) !== held)
    ) return false;
    this.#held = mine;
    return true;
  }

  /** Shows the turn's holder alive (a write retried): no one takes the turn. */
  renew(): void {
    const mine = this.#now();
    if (
      mine !== this.#held && Atomics.compareExchange(this.#cell, 0, this.#held, mine) === this.#held
    ) this.#held = mine;
  }

  /** Gives the turn back (unless another thread took it meanwhile). */
  give(): void {
    Atomics.compareExchange(this.#cell, 0, this.#held, 0n);
  }

  #now(): bigint {
    return (BigInt(Date.now()) << 8n) | this.#token;
  }
}

/**
 * The stderr sink of one thread (its runtime's). Lines are collected and
 * written together every {@linkcode FLUSH_EVERY_MS} ms, so a reply never
 * waits for a log write and a busy thread makes one write for many
 * messages' lines. (A timer per event-loop turn cost 6-8% of a listener
 * thread's time with one message per connection: every message logs in
 * three or four turns.) The timer stops after a second without lines.
 *
 * The write is asynchronous (Deno makes it on a thread of its blocking
 * pool), so a log reader that stops reading (a terminal held with Ctrl-S,
 * a stuck log shipper at the other end of a pipe) stops no session: the
 * thread goes on, holding up to {@linkcode STDERR_BACKLOG} of lines; past
 * that it drops lines, and says how many once stderr takes lines again.
 * (Postfix's processes wait for their log socket instead, and all mail
 * waits with them.) One write is on its way at a time, so lines keep
 * their order, and one thread's batch at a time ({@linkcode StderrTurn}),
 * so a write cut short is not finished after another thread's lines.
 *
 * A write that fails (stderr a file on a full file system) loses its
 * lines, not the log: the next write comes a second later, and the first
 * that succeeds says how many were lost and why; only a stderr that is
 * gone for good (a pipe whose reader ended) is given up. Before the thread
 * or process ends, {@linkcode StderrSink.settled} waits a bounded time for
 * the rest.
 */
export class StderrSink {
  /** The process's turn at stderr. */
  readonly turn: StderrTurn;
  #pending = "";
  #flusher: ReturnType<typeof setInterval> | undefined;
  #idleTicks = 0;
  /** The write on its way, if any. */
  #writing: Promise<void> | undefined;
  /** Lines dropped since the last time that was said. */
  #dropped = 0;
  /** stderr failed (closed, gone): nothing more is written. */
  #gone = false;
  /** The warning about dropped lines is being added (past the backlog's limit). */
  #saying = false;
  /** Lines of failed writes since the last time that was said, and why they failed. */
  #lost = 0;
  #lostWhy = "";
  /** After a failed write: no write before this time (ms since the epoch). */
  #retryAt = 0;
  /** A failed write ended in the middle of a line: the next write ends it first. */
  #cut = false;
  /**
   * The warnings about dropped lines not yet handed to a write, each with
   * its count: a write that fails before one is out loses its count too,
   * which the next warning then says.
   */
  #said: { line: string; n: number }[] = [];
  /** The line of the warning being added. */
  #sayingLine: string | undefined;

  /**
   * @param turn the process's turn at stderr (a listener thread's is the
   *   main thread's); default: one of its own (a process of one thread)
   */
  constructor(turn: StderrTurn = new StderrTurn()) {
    this.turn = turn;
  }

  /**
   * Says (as a warning of the thread's logger) that lines were dropped;
   * set once the logger exists.
   */
  warn: (text: string) => void = () => {};

  /** The sink: collects a formatted line. */
  readonly write: LineSink = (line) => {
    if (this.#gone) return;
    if (this.#saying) this.#sayingLine = line;
    // Once a line is dropped, every later one is, until the backlog goes
    // out: the log then has a gap where the warning says, not holes in it.
    if (
      !this.#saying && (this.#dropped > 0 || this.#pending.length + line.length > STDERR_BACKLOG)
    ) {
      this.#dropped++;
      return;
    }
    this.#pending += line;
    if (this.#flusher === undefined) {
      const timer = setInterval(this.#tick, FLUSH_EVERY_MS);
      Deno.unrefTimer(timer);
      this.#flusher = timer;
    }
  };

  #tick = (): void => {
    if (this.#pending || this.#dropped || this.#lost || this.#writing) {
      this.#idleTicks = 0;
      this.#startWrite();
    } else if (++this.#idleTicks >= 1000 / FLUSH_EVERY_MS) {
      clearInterval(this.#flusher);
      this.#flusher = undefined;
      this.#idleTicks = 0;
    }
  };

  /** Starts writing what is pending, unless a write is still on its way. */
  #startWrite(): void {
    if (this.#writing || this.#gone || Date.now() < this.#retryAt) return;
    if (this.#lost > 0) {
      // The lines lost came before every line held now: the warning goes first.
      const held = this.#pending;
      this.#pending = "";
      this.#say(this.#lost, `writing them failed: ${this.#lostWhy}`);
      this.#pending += held;
      this.#lost = 0;
    }
    if (this.#dropped > 0) {
      const n = this.#dropped;
      this.#dropped = 0;
      this.#say(n, "the log reader took them slower than they came");
    }
    // Another thread's batch on its way: the next tick tries again.
    if (!this.#pending || !this.turn.take()) return;
    const text = this.#cut ? `\n${this.#pending}` : this.#pending;
    const bytes = encoder.encode(text);
    this.#pending = "";
    const said = this.#placeSaid(text);
    this.#writing = this.#writeAll(bytes, said).finally(() => {
      this.turn.give();
      this.#writing = undefined;
    });
  }

  /**
   * Says that lines were dropped. Through the logger, so the line has its
   * stamp, and syslog_server (when set) learns it too; it lands at the end
   * of what is pending.
   * @param n how many
   * @param why the reason
   */
  #say(n: number, why: string): void {
    this.#saying = true;
    try {
      this.warn(`stderr: ${n} log line${n === 1 ? " was" : "s were"} dropped: ${why}`);
    } finally {
      this.#saying = false;
    }
    if (this.#sayingLine !== undefined) this.#said.push({ line: this.#sayingLine, n });
    this.#sayingLine = undefined;
  }

  /**
   * Where in a batch its warnings end (in bytes), with their counts.
   * @param text the batch (every warning said so far is in it)
   * @returns each warning's end and count
   */
  #placeSaid(text: string): { end: number; n: number }[] {
    if (this.#said.length === 0) return [];
    const placed = this.#said.map(({ line, n }) => {
      const at = text.indexOf(line);
      return { end: at === -1 ? 0 : encoder.encode(text.slice(0, at + line.length)).length, n };
    });
    this.#said = [];
    return placed;
  }

  async #writeAll(bytes: Uint8Array, said: { end: number; n: number }[]): Promise<void> {
    let off = 0;
    while (off < bytes.length) {
      try {
        const n = await Deno.stderr.write(bytes.subarray(off));
        off += n;
        if (n > 0) this.#cut = bytes[off - 1] !== 10;
        if (off < bytes.length) this.turn.renew();
      } catch (e) {
        // A non-blocking stderr (O_NONBLOCK is a flag of the open file,
        // shared with whoever else holds it) that is full: try again soon.
        if (e instanceof Deno.errors.WouldBlock) {
          this.turn.renew();
          await new Promise((r) => setTimeout(r, FLUSH_EVERY_MS));
          continue;
        }
        if (
          e instanceof Deno.errors.BrokenPipe || e instanceof Deno.errors.BadResource ||
          (e as { code?: unknown }).code === "EBADF"
        ) {
          // stderr gone for good (its reader ended, closed): nothing sensible to do.
          this.#gone = true;
          this.#pending = "";
          this.#dropped = 0;
          this.#lost = 0;
          this.#said = [];
          return;
        }
        // A failure that may pass (ENOSPC, EIO): these lines are lost (a
        // line cut short at `off` with them: the next write ends it), and counted.
        this.#lost += newlines(bytes.subarray(off)) +
          said.reduce((sum, w) => sum + (off < w.end ? w.n : 0), 0);
        this.#lostWhy = e instanceof Error ? e.message : String(e);
        this.#retryAt = Date.now() + STDERR_RETRY_MS;
        return;
      }
    }
  }

  /** Starts writing the lines still waiting now, without waiting for the write. */
  flush(): void {
    this.#startWrite();
  }

  /**
   * Writes the lines still waiting, and waits until they are written or
   * `ms` have passed (a stderr nobody reads must not keep the process or
   * thread from ending). Call it before the thread or process ends.
   * @param ms the longest wait
   */
  async settled(ms: number): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      this.#startWrite();
      const left = end - Date.now();
      if (left <= 0) return;
      if (!this.#writing) {
        // All out, or stderr failed a moment ago: nothing to wait for.
        if (!this.#pending || this.#gone || Date.now() < this.#retryAt) return;
        // Another thread has the turn: ask again soon.
        await new Promise((r) => setTimeout(r, Math.min(FLUSH_EVERY_MS / 4, left)));
        continue;
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#writing,
        new Promise((r) => timer = setTimeout(r, left)),
      ]);
      clearTimeout(timer);
    }
  }
}

/**
 * How many lines end in `bytes`.
 * @param bytes text
 * @returns its count of LF
 */
function newlines(bytes: Uint8Array): number {
  let n = 0;
  for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) n++;
  return n;
}
