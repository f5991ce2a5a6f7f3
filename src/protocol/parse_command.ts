/**
 * Splits a command line into verb and argument text. Lines with NUL or
 * other control bytes are refused here (500), and so are lines with invalid
 * UTF-8 when SMTPUTF8 is on (Postfix's "bad UTF-8 syntax"), so no handler
 * ever sees them. With smtputf8_enable off, Postfix reads such a line as
 * any other; here each byte that is not part of a UTF-8 character becomes
 * one character that stands for it (`rawByteChar`, written back as the
 * byte where Postfix writes it: an echoing reply, the queue file; one "?"
 * in the log, as Postfix's printable()), and the command answers as for
 * other 8-bit text (NOOP and QUIT take it, an unknown word is unknown). The verb is the first word, whatever it holds, as
 * Postfix's first token: `MA-IL x` is an unknown command, and `Subject:`
 * or `{"a":1}` reach the session's non-SMTP command check.
 *
 * @module
 */

import { decodeWireBytes } from "../io/wire_text.ts";
import { asciiUpperCase } from "./esmtp_params.ts";
import { REPLY, type Reply } from "./reply.ts";

/** A command line, split. */
export interface CommandLine {
  /** The first word, its ASCII letters upper-cased. */
  readonly verb: string;
  /** The text after the verb and one space (may be ""). */
  readonly arg: string;
  /**
   * The whole line as text when it was read as sent (ASCII, or UTF-8);
   * undefined when bytes that are not UTF-8 were replaced (smtputf8_enable off).
   */
  readonly text?: string;
}

/**
 * The longest ASCII line made into text by String.fromCharCode: for a
 * command line of a few words it takes a tenth of a TextDecoder call, whose
 * fixed cost (about 0.3 µs, 0.7 µs for Latin-1) was the largest part of
 * parsing a short command.
 */
const SHORT_ASCII = 256;

// ignoreBOM: a leading U+FEFF stays part of the first word, as Postfix
// reads it ("\ufeffRCPT" is no RCPT).
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Parses one command line (without CRLF).
 * @param line the raw bytes
 * @param strictUtf8 whether a line that is not UTF-8 is refused
 *   (smtputf8_enable), else read with a `rawByteChar` for each byte that is
 *   not part of a UTF-8 character
 * @returns the verb and argument, or an error reply
 */
export function parseCommand(
  line: Uint8Array,
  strictUtf8 = true,
): CommandLine | { error: Reply } {
  let ascii = true;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as number;
    if (c < 32 && c !== 9) return { error: REPLY.badSyntax };
    if (c === 127) return { error: REPLY.badSyntax };
    if (c > 127) ascii = false;
  }
  let whole: string | undefined;
  if (ascii) {
    whole = line.length <= SHORT_ASCII
      ? String.fromCharCode.apply(null, line as unknown as number[])
      : utf8.decode(line);
  } else {
    try {
      whole = utf8.decode(line);
    } catch {
      if (strictUtf8) return { error: REPLY.badUtf8 };
    }
  }
  const text = trimBlanks(whole ?? decodeWireBytes(line));
  // The first word, then the rest after the blanks that follow it (the
  // line has none at either end now).
  let end = 0;
  while (end < text.length && !isBlank(text.charCodeAt(end))) end++;
  if (end === 0) return { error: REPLY.badSyntax };
  let from = end;
  while (from < text.length && isBlank(text.charCodeAt(from))) from++;
  const word = text.slice(0, end);
  // Only ASCII letters change case, as in Postfix's strcasecmp against its
  // command table: "QU\u0131T" (a dotless i) or "\u017fTARTTLS" (a long s)
  // is an unknown word, not QUIT or STARTTLS.
  const verb = ascii ? word.toUpperCase() : asciiUpperCase(word);
  return { verb, arg: text.slice(from), text: whole };
}

/** A space or a tab: the blanks between Postfix's tokens. */
function isBlank(c: number): boolean {
  return c === 32 || c === 9;
}

/**
 * Text without the spaces and tabs around it, in linear time (a regex such
 * as `[ \t]+$` is quadratic on long inner runs of blanks: found by the
 * fuzzer). Not String.trim(): that also takes U+00A0, U+2028, U+3000,
 * U+FEFF and the like, so "SMTPUTF8\u00a0" would pass for SMTPUTF8
 * (Postfix's blanks are SP and HT).
 * @param text the text
 * @returns it without blanks at either end
 */
export function trimBlanks(text: string): string {
  let end = text.length;
  while (end > 0 && isBlank(text.charCodeAt(end - 1))) end--;
  let start = 0;
  while (start < end && isBlank(text.charCodeAt(start))) start++;
  return text.slice(start, end);
}
