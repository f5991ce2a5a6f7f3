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

import type { Session } from "./session.ts";

const encoder = new TextEncoder();

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
  const client = `${s.peer.name}[${s.peer.address}]`;
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
    ...s.transcript,
    "",
    "For other details, see the local mail logfile",
  ];
  let size = 0;
  for (const l of lines) {
    const bytes = encoder.encode(l);
    size += bytes.length + 2;
    const r = draft.line(bytes, false);
    if (r) await r;
  }
  const result = await draft.finish(size);
  if (result.kind !== "queued") throw new Error(result.reason);
  s.deps.queued();
  return result.id;
}
