/**
 * Log lines in syslog's shape (RFC 3164 style, as Postfix writes them):
 * `Mon DD hh:mm:ss host postfix/smtpd[pid]: text`, written to stderr.
 * Severity words follow Postfix: "warning: ", "fatal: ", "error: ".
 *
 * @module
 */

/** Verbosity: 0 normal, 1+ verbose (-v, debug_peer_level). */
export type Verbosity = number;

/** Where formatted lines go. */
export type LineSink = (line: string) => void;

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const encoder = new TextEncoder();

/** Formats and emits log lines. */
export class Logger {
  #tag: string;
  #host: string;
  #sink: LineSink;
  readonly verbosity: Verbosity;

  /**
   * @param options program tag ("postfix/smtpd"), host, verbosity, sink
   */
  constructor(options: { tag: string; host: string; verbosity?: number; sink?: LineSink }) {
    this.#tag = `${options.tag}[${Deno.pid}]`;
    this.#host = options.host;
    this.verbosity = options.verbosity ?? 0;
    this.#sink = options.sink ?? stderrSink;
  }

  /** Logs a normal event. */
  info(text: string): void {
    this.#emit(text);
  }

  /** Logs a warning ("warning: text"). */
  warning(text: string): void {
    this.#emit(`warning: ${text}`);
  }

  /** Logs an error ("error: text"). */
  error(text: string): void {
    this.#emit(`error: ${text}`);
  }

  /** Logs when verbosity is at least `level`. */
  debug(text: string, level = 1): void {
    if (this.verbosity >= level) this.#emit(text);
  }

  #emit(text: string): void {
    const d = new Date();
    const stamp = `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, " ")} ${
      String(d.getHours()).padStart(2, "0")
    }:${String(d.getMinutes()).padStart(2, "0")}:${String(d.getSeconds()).padStart(2, "0")}`;
    this.#sink(`${stamp} ${this.#host} ${this.#tag}: ${text}\n`);
  }
}

/**
 * The default sink: stderr, one write per line.
 * @param line a formatted line
 */
export function stderrSink(line: string): void {
  try {
    const bytes = encoder.encode(line);
    let off = 0;
    while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
  } catch {
    // stderr gone: nothing sensible to do
  }
}
