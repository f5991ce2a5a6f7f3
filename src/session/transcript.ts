/**
 * notify_classes: when a session hits an enabled problem class, a
 * transcript of the session (client, every command and reply; message
 * bodies are never recorded) is queued through the cleanup writer as a
 * message from the mail system to error_notice_recipient: when the session
 * ends, or before a command once the transcript has grown past
 * smtpd_history_flush_threshold lines (then a new transcript starts).
 *
 * @module
 */

import { sanitizeLogText } from "../log/sanitize.ts";
import type { Session } from "./session.ts";

const encoder = new TextEncoder();

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

/**
 * Queues the transcript message.
 * @param s the finished session
 * @param classes the enabled classes it hit
 * @returns the queue ID
 */
export async function sendTranscript(s: Session, classes: readonly string[]): Promise<string> {
  const cfg = s.config;
  const rcpt = cfg.error_notice_recipient.includes("@")
    ? cfg.error_notice_recipient
    : `${cfg.error_notice_recipient}@${cfg.myorigin}`;
  const client = sanitizeLogText(`${s.peer.name}[${s.peer.address}]`);
  const draft = await s.deps.cleanup.begin({
    queue: s.deps.queue,
    sender: "",
    recipients: [rcpt],
    arrival: s.deps.clock(),
    body: "7BIT",
    origin: {
      clientName: "localhost",
      clientAddress: "127.0.0.1",
      clientPort: "0",
      helo: undefined,
      protocol: "ESMTP",
      local: true,
    },
  });
  const lines = [
    `From: Mail Delivery System <MAILER-DAEMON@${cfg.myhostname}>`,
    `To: Postmaster <${rcpt}>`,
    `Subject: ${cfg.mail_name} SMTP server: errors from ${client}`,
    "Auto-Submitted: auto-generated",
    "",
    `Transcript of session follows (${classes.join(", ")} problems).`,
    "",
    ...s.transcript.lines(),
    "",
    "For other details, see the local mail logfile",
  ];
  let size = 0;
  for (const l of lines) {
    const bytes = encoder.encode(l);
    size += bytes.length + 2;
    const r = draft.line(bytes, 0, bytes.length, false);
    if (r) await r;
  }
  const result = await draft.finish(size);
  if (result.kind !== "queued") throw new Error(result.reason);
  s.deps.queued();
  return result.id;
}
