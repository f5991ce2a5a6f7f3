/**
 * Log lines in syslog's shape (RFC 3164 style, as Postfix writes them):
 * `Mon DD hh:mm:ss host postfix/smtpd[pid]: text`, written to stderr.
 * Severity words follow Postfix: "warning: ", "fatal: ", "error: ".
 *
 * @module
 */

/** Verbosity: 0 normal, 1+ verbose (-v, debug_peer_level). */
export type Verbosity = number;

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
    const line = `${stampNow()} ${this.#host} ${this.#tag}: ${text}\n`;
    for (const sink of this.#sinks) sink(line, severity);
  }
}

/**
 * The default sink: stderr, one write per line.
 * @param line a formatted line
 */
export function stderrSink(line: string): void {
  // Lines logged before the event loop turns go out in one write, in order,
  // after the replies of that turn have been sent (a 250 does not wait for
  // the log write; one system call for a message's four lines).
  pending += line;
  if (!scheduled) {
    scheduled = true;
    setTimeout(flushStderr, 0);
  }
}

let pending = "";
let scheduled = false;

/** Writes the log lines still waiting (before the process exits). */
export function flushStderr(): void {
  scheduled = false;
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
