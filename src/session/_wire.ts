/**
 * Small helpers of the session loop for what comes off the wire.
 *
 * @module
 */

import { authCommandForLog } from "../sasl/mod.ts";

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

// ignoreBOM: the log shows a leading U+FEFF that the command holds.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * A command line as log-safe text.
 * @param bytes the line without CRLF
 * @returns the text, with control characters as "?"
 */
export function printable(bytes: Uint8Array): string {
  return printableText(decoder.decode(bytes));
}

/** Postfix's ISSPACE: the bytes its command tokenizer splits words at. */
function isAsciiSpace(b: number): boolean {
  return b === 32 || (b >= 9 && b <= 13);
}

/**
 * A command line whose first word is BDAT (in any case), as Postfix's
 * tokenizer (smtpd_token.c) finds the words: after any leading white space,
 * up to the next, white space being a space, tab, newline, vertical tab,
 * form feed or carriage return. Its arguments come back with each of those
 * as a space, log-safe (other control characters and bytes that are not
 * UTF-8 as "?"), for BDAT's own syntax check.
 * @param bytes the line without CRLF
 * @returns the arguments' text, or undefined when the line is no BDAT line
 */
export function bdatArguments(bytes: Uint8Array): string | undefined {
  let at = 0;
  while (at < bytes.length && isAsciiSpace(bytes[at] as number)) at++;
  if (bytes.length - at < 4) return undefined;
  for (let i = 0; i < 4; i++) {
    if (((bytes[at + i] as number) & 0xdf) !== "BDAT".charCodeAt(i)) return undefined;
  }
  at += 4;
  if (at === bytes.length) return "";
  if (!isAsciiSpace(bytes[at] as number)) return undefined;
  return printable(bytes.subarray(at + 1).map((b) => isAsciiSpace(b) ? 32 : b));
}

/**
 * A command line already read as text (as sent: ASCII or UTF-8) as
 * {@linkcode printable} shows its bytes.
 * @param text the line's text
 * @returns the text, with control characters as "?"
 */
export function printableText(text: string): string {
  return text.replace(/[^\x20-\x7e\u00a0-\uffff]/g, "?");
}

/** The letters Postfix's escape() gives the control characters that have one. */
const ESCAPES: Record<number, string> = {
  7: "\\a",
  8: "\\b",
  9: "\\t",
  10: "\\n",
  11: "\\v",
  12: "\\f",
  13: "\\r",
};

/**
 * A command line as Postfix's escape() writes it into the non-SMTP command
 * warning: printable ASCII as is (a backslash doubled), `\t` and the other
 * C escapes, every other byte (8-bit ones too) as `\ooo` in octal. The
 * result is ASCII, so cutting it never splits a character.
 * @param bytes the line without CRLF
 * @returns the escaped text
 */
export function escaped(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) {
    if (b >= 0x20 && b < 0x7f) out += b === 0x5c ? "\\\\" : String.fromCharCode(b);
    else out += ESCAPES[b] ?? `\\${b.toString(8).padStart(3, "0")}`;
  }
  return out;
}

const latin1 = new TextDecoder("latin1");

/**
 * What a client pipelined too early, for the improper pipelining log line:
 * its bytes as {@linkcode escaped} writes them, but cut at the first AUTH
 * command, since its initial response and the lines after it may be
 * credentials: that line shows as "AUTH MECH ****" and nothing follows.
 * When the early command is AUTH itself, what follows it may be its
 * responses (the user name and password of AUTH LOGIN), so none of it is
 * shown: "****".
 * @param bytes the start of the buffered input
 * @param after the command the input came too early after ("CONNECT", a verb)
 * @returns the text to log
 */
export function pipelinedForLog(bytes: Uint8Array, after = ""): string {
  if (after.toUpperCase() === "AUTH") return "****";
  const text = latin1.decode(bytes);
  // The AUTH line is found by its start alone: the peeked bytes may end
  // anywhere in it (after its CR, before its LF).
  const m = /(^|\n)[ \t]*AUTH(?=[ \t\r\n]|$)/i.exec(text);
  if (!m) return escaped(bytes);
  const start = m.index + (m[1] as string).length;
  const rest = text.slice(m.index + m[0].length);
  const end = rest.search(/[\r\n]/);
  return escaped(bytes.subarray(0, start)) + authCommandForLog(end < 0 ? rest : rest.slice(0, end));
}
