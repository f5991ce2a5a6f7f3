/**
 * Log lines in syslog's shape (RFC 3164 style, as Postfix writes them):
 * `Mon DD hh:mm:ss host postfix/smtpd[pid]: text`, written to stderr.
 * Severity words follow Postfix: "warning: ", "fatal: ", "error: ".
 * Every line's text passes {@linkcode sanitizeLogText} before any sink,
 * cut to {@linkcode MAX_RECORD_TEXT} characters first.
 *
 * @module
 */

import { sanitizeLogText } from "./sanitize.ts";

/** Verbosity: 0 normal, 1+ verbose (-v, debug_peer_level). */
export type Verbosity = number;

/**
 * The longest text of one log record, as Postfix's MSG_SYSLOG_RECLEN (2000);
 * the rest is cut. A syslog server that cuts a longer record itself
 * (rsyslog at 8 KB over TCP) reads the rest as a record of its own, whose
 * every byte the client chose: a Message-ID of 8 KB could forge a line.
 */
export const MAX_RECORD_TEXT = 2000;

/** Syslog severities (RFC 5424 §6.2.1). */
export const SEVERITY = { error: 3, warning: 4, info: 6, debug: 7 } as const;

/**
 * Where formatted lines go: the RFC 3164 line after the priority
 * ("Mon DD hh:mm:ss host tag[pid]: text\n") and its severity.
 */
export type LineSink = (line: string, severity: number) => void;

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const encoder = new TextEncoder();
let stampSecond = -1;
let stamp = "";

/** "Mon DD hh:mm:ss", formatted once per second. */
function stampNow(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== stampSecond) {
    stampSecond = second;
    const d = new Date(now);
    stamp = `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, " ")} ${
      String(d.getHours()).padStart(2, "0")
    }:${String(d.getMinutes()).padStart(2, "0")}:${String(d.getSeconds()).padStart(2, "0")}`;
  }
  return stamp;
}

/** Formats and emits log lines. */
export class Logger {
  #tag: string;
  #host: string;
  #sinks: LineSink[];
  readonly verbosity: Verbosity;

  /**
   * @param options program tag ("postfix/smtpd"), host, verbosity, sink
   */
  constructor(
    options: { tag: string; host: string; verbosity?: number; sinks?: LineSink[] },
  ) {
    this.#tag = `${options.tag}[${Deno.pid}]`;
    this.#host = options.host;
    this.verbosity = options.verbosity ?? 0;
    this.#sinks = options.sinks ?? [stderrSink];
  }

  /** Logs a normal event. */
  info(text: string): void {
    this.#emit(text, SEVERITY.info);
  }

  /** Logs a warning ("warning: text"). */
  warning(text: string): void {
    this.#emit(`warning: ${text}`, SEVERITY.warning);
  }

  /** Logs an error ("error: text"). */
  error(text: string): void {
    this.#emit(`error: ${text}`, SEVERITY.error);
  }

  /** Logs when verbosity is at least `level`. */
  debug(text: string, level = 1): void {
    if (this.verbosity >= level) this.#emit(text, SEVERITY.debug);
  }

  #emit(text: string, severity: number): void {
    // Every line, whatever wrote it, is made safe here, before any sink.
    const cut = text.length > MAX_RECORD_TEXT ? text.slice(0, MAX_RECORD_TEXT) : text;
    const line = `${stampNow()} ${this.#host} ${this.#tag}: ${sanitizeLogText(cut)}\n`;
    for (const sink of this.#sinks) sink(line, severity);
  }
}

/**
 * The default sink: stderr. Lines are collected and written together every
 * {@linkcode FLUSH_EVERY_MS} ms, so a reply never waits for a log write and
 * a busy thread makes one write for many messages' lines. (A timer per
 * event-loop turn cost 6-8% of a listener thread's time with one message
 * per connection: every message logs in three or four turns.) The timer
 * stops after a second without lines; pending lines are flushed before exit.
 * @param line a formatted line
 */
export function stderrSink(line: string): void {
  pending += line;
  if (flusher === undefined) {
    const timer = setInterval(tick, FLUSH_EVERY_MS);
    Deno.unrefTimer(timer);
    flusher = timer;
  }
}

/** How often collected log lines are written. */
const FLUSH_EVERY_MS = 20;

let pending = "";
let flusher: ReturnType<typeof setInterval> | undefined;
let idleTicks = 0;

function tick(): void {
  if (pending) {
    idleTicks = 0;
    flushStderr();
  } else if (++idleTicks >= 1000 / FLUSH_EVERY_MS) {
    clearInterval(flusher);
    flusher = undefined;
    idleTicks = 0;
  }
}

/** Writes the log lines still waiting (before the process exits). */
export function flushStderr(): void {
  if (!pending) return;
  const text = pending;
  pending = "";
  try {
    const bytes = encoder.encode(text);
    let off = 0;
    while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
  } catch {
    // stderr gone: nothing sensible to do
  }
}
