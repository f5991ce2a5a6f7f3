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

import { type LogPeer, sanitizeLogText } from "../log/mod.ts";
import { REPLY, type Reply } from "../protocol/reply.ts";
import type { SessionDeps } from "./deps.ts";
import { Transcript } from "./transcript.ts";

/** The notify_classes a session can hit. */
export type NoticeClass = "policy" | "protocol" | "resource" | "software" | "data";

/** What mailing a transcript needs. */
export type NoticeDeps = Pick<
  SessionDeps,
  "config" | "cleanup" | "queue" | "clock" | "queued" | "log"
>;

const encoder = new TextEncoder();

/** The problem classes a session hit, and its transcript. */
export class SessionNotices {
  /** Every command and reply (message bodies left out). */
  readonly transcript = new Transcript();
  #classes = new Set<NoticeClass>();
  /** Refusals of the restriction lists, filed by refusal(), not by their code. */
  #refusals = new WeakSet<Reply>();

  /**
   * Records a problem of a class.
   * @param c the class
   */
  add(c: NoticeClass): void {
    this.#classes.add(c);
  }

  /**
   * Files a refusal of the restriction lists under Postfix's class for it:
   * software for a configuration error (its reject_server_error: an
   * unknown action, a bad table result), data for a table that cannot
   * answer (its reject_dict_retry: 451 4.3.0), policy for the rest, a policy
   * server's default action (`451 4.3.5 Server configuration problem`)
   * and table values of any code included. classify() then leaves it be.
   * @param r the refusal
   */
  refusal(r: Reply): void {
    if (r.code === 451 && r.detail === "3.5" && r.text === REPLY.configError.text) {
      this.add("software");
    } else if (
      r.code === 451 && r.detail === "3.0" && r.text.endsWith("Temporary lookup failure")
    ) {
      this.add("data");
    } else {
      this.add("policy");
    }
    this.#refusals.add(r);
  }

  /**
   * Files an error reply under its class: protocol (500-503, 555, 550 5.5.2),
   * software (451 4.3.5, a configuration error) or resource (other 451/452
   * 4.3.x).
   * @param r an error reply about to be sent
   */
  classify(r: Reply): void {
    if (this.#refusals.has(r)) return;
    if ([500, 501, 502, 503, 555].includes(r.code) || (r.code === 550 && r.detail === "5.2")) {
      this.add("protocol");
    } else if (r.code === 451 && r.detail === "3.5") {
      // "Server configuration error": Postfix's smtpd counts it as software.
      this.add("software");
    } else if ((r.code === 451 || r.code === 452) && r.detail?.startsWith("3.")) {
      this.add("resource");
    }
  }

  /**
   * Mails the transcript if it holds a problem of an enabled class; a
   * failure is logged, never thrown.
   * @param deps configuration and services
   * @param client the client, for the subject
   */
  async send(deps: NoticeDeps, client: LogPeer): Promise<void> {
    const wanted = this.#wanted(deps);
    if (wanted.length === 0) return;
    try {
      const id = await sendTranscript(deps, client, this.transcript, wanted);
      if (id) {
        deps.log.info(
          `${id}: notice of ${
            wanted.join(", ")
          } problems sent to ${deps.config.error_notice_recipient}`,
        );
      }
    } catch (err) {
      deps.log.warning(`cannot queue the session transcript: ${(err as Error).message}`);
    }
  }

  /**
   * Whether {@linkcode send} has a transcript to mail.
   * @param deps the configuration (notify_classes)
   * @returns true when the session hit an enabled class
   */
  due(deps: Pick<NoticeDeps, "config">): boolean {
    return this.#wanted(deps).length > 0;
  }

  #wanted(deps: Pick<NoticeDeps, "config">): string[] {
    return deps.config.notify_classes.filter((c) => this.#classes.has(c as NoticeClass));
  }

  /**
   * Mails the transcript if it holds a problem, then starts a new one.
   * @param deps configuration and services
   * @param client the client, for the subject
   */
  async flush(deps: NoticeDeps, client: LogPeer): Promise<void> {
    await this.send(deps, client);
    this.#classes.clear();
    this.transcript.clear();
  }
}

/**
 * Queues the transcript message.
 * @returns the queue ID
 */
async function sendTranscript(
  deps: NoticeDeps,
  client: LogPeer,
  transcript: Transcript,
  classes: readonly string[],
): Promise<string> {
  const cfg = deps.config;
  const rcpt = cfg.error_notice_recipient.includes("@")
    ? cfg.error_notice_recipient
    : `${cfg.error_notice_recipient}@${cfg.myorigin}`;
  const who = sanitizeLogText(`${client.name}[${client.address}]`);
  const draft = await deps.cleanup.begin({
    queue: deps.queue,
    sender: "",
    recipients: [rcpt],
    arrival: deps.clock(),
    // No BODY= claim, as Postfix's own notice has none: the transcript
    // holds the client's UTF-8 (SMTPUTF8 addresses, any command text).
    body: undefined,
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
    `Subject: ${cfg.mail_name} SMTP server: errors from ${who}`,
    "Auto-Submitted: auto-generated",
    "",
    `Transcript of session follows (${classes.join(", ")} problems).`,
    "",
    ...transcript.lines(),
    "",
    "For other details, see the local mail logfile",
  ];
  for (const l of lines) {
    const bytes = encoder.encode(l);
    const r = draft.line(bytes, 0, bytes.length, false);
    if (r) await r;
  }
  const result = await draft.finish();
  if (result.kind !== "queued") throw new Error(result.reason);
  deps.queued();
  return result.id;
}
