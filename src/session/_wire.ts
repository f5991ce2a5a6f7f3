/**
 * Small helpers of the session loop for what comes off the wire.
 *
 * @module
 */

/**
 * Connection-level failures: the client went away or the socket broke.
 * @param err what was thrown
 * @returns true for a broken or closed connection
 */
export function isConnectionError(err: unknown): boolean {
  return err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BrokenPipe ||
    err instanceof Deno.errors.ConnectionAborted || err instanceof Deno.errors.NotConnected ||
    err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted ||
    (err instanceof Error && /timed out writing|closed|reset|broken pipe/i.test(err.message));
}

const decoder = new TextDecoder();

/**
 * A command line as log-safe text.
 * @param bytes the line without CRLF
 * @returns the text, with control characters as "?"
 */
export function printable(bytes: Uint8Array): string {
  return decoder.decode(bytes).replace(/[^\x20-\x7e\u00a0-\uffff]/g, "?");
}
