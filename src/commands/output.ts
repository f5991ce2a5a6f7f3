/**
 * The command line's own output: result lines on stdout, problems on
 * stderr (the server's log lines go through the logger instead).
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Writes a result line on stdout.
 * @param text the line
 */
export function out(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text.endsWith("\n") ? text : text + "\n"));
}

/**
 * Writes a problem on stderr.
 * @param text the line
 */
export function err(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text.endsWith("\n") ? text : text + "\n"));
}
