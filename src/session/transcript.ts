/**
 * A session's transcript for notify_classes: every command and reply
 * (message bodies are never recorded), mailed by notices.ts.
 *
 * @module
 */

import { sanitizeLogText } from "../log/sanitize.ts";

/** Most lines a transcript holds (a session that never flushes it stops recording). */
const LINE_LIMIT = 1000;

/**
 * A session's history of commands and replies. It keeps the strings it is
 * given (a command as received, a reply group as written) and formats its
 * " In:  " / " Out: " lines only when it is mailed, so a session that sends
 * many messages allocates no string per line for a transcript that is almost
 * never mailed.
 */
export class Transcript {
  /**
   * Commands and reply groups, in order. A reply group always ends in CRLF
   * (formatReply); a command never holds one (control characters are
   * replaced before it is recorded), so the two need no other mark.
   */
  #texts: string[] = [];
  #lines = 0;

  /** Lines held (each reply line counts), as Postfix counts its history. */
  get lineCount(): number {
    return this.#lines;
  }

  /**
   * Records a command line.
   * @param text the command as received
   */
  received(text: string): void {
    if (this.#lines >= LINE_LIMIT) return;
    this.#texts.push(text);
    this.#lines++;
  }

  /**
   * Records replies as they are queued.
   * @param text one or more CRLF-terminated reply lines
   */
  sent(text: string): void {
    if (this.#lines >= LINE_LIMIT) return;
    let n = 0;
    for (let at = text.indexOf("\r\n"); at >= 0; at = text.indexOf("\r\n", at + 2)) n++;
    this.#texts.push(text);
    this.#lines += n;
  }

  /** Forgets everything (a flush). */
  clear(): void {
    this.#texts.length = 0;
    this.#lines = 0;
  }

  /**
   * The lines as mailed, each made safe as a log line is (no control,
   * bidi or separator characters can break or disguise the notice).
   * @returns the transcript's lines
   */
  lines(): string[] {
    const out: string[] = [];
    for (const text of this.#texts) {
      if (!text.endsWith("\r\n")) out.push(` In:  ${sanitizeLogText(text)}`);
      else {
        for (const line of text.split("\r\n")) {
          if (line !== "") out.push(` Out: ${sanitizeLogText(line)}`);
        }
      }
    }
    return out;
  }
}
