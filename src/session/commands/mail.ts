/**
 * MAIL FROM (RFC 5321 §4.1.1.2, SIZE RFC 1870, BODY RFC 6152): sequence
 * checks, reverse-path and parameter syntax, the size pre-check,
 * queue_minfree, the sender stage's policy, then a new transaction.
 *
 * @module
 */

import { addressText, parsePath } from "../../protocol/address.ts";
import { parseMailParams } from "../../protocol/esmtp_params.ts";
import { REPLY, type Reply, reply } from "../../protocol/reply.ts";
import type { CommandResult, Session } from "../session.ts";

/**
 * Whether the queue file system has room: queue_minfree, and room for
 * 1.5 messages of the largest size, as Postfix asks.
 * @param s the session
 * @param declared the SIZE= value, if any
 * @returns the 452 reply when short of space
 */
export function checkSpace(s: Session, declared = 0): Reply | undefined {
  const free = s.deps.freeSpace();
  if (free === undefined) return undefined;
  const cfg = s.config;
  const need = Math.max(cfg.queue_minfree, declared, Math.floor(cfg.message_size_limit * 1.5));
  if (free < need) {
    s.deps.log.warning(
      `not enough free space in queue file system: ${free} bytes free, ${need} needed`,
    );
    return REPLY.insufficientStorage;
  }
  return undefined;
}

/** MAIL FROM:<address> [SIZE=n] [BODY=7BIT|8BITMIME] */
export async function handleMail(arg: string, s: Session): Promise<CommandResult> {
  if (s.config.smtpd_helo_required && s.helo === undefined) return { reply: REPLY.sendHeloFirst };
  if (s.phase.kind === "inMail") return { reply: REPLY.nestedMail };
  if (s.config.smtpd_tls_security_level === "encrypt" && !s.transport.tls) {
    return { reply: reply(530, "7.0", "Must issue a STARTTLS command first") };
  }
  const m = /^FROM:/i.exec(arg);
  if (!m) return { reply: REPLY.mailSyntax };
  const path = parsePath(arg.slice(m[0].length), { strict: s.config.strict_rfc821_envelopes });
  if (!path.ok) return { reply: REPLY.badSender };
  const params = parseMailParams(path.params);
  if ("code" in params) return { reply: params };
  if (params.size !== undefined && params.size > s.config.message_size_limit) {
    return { reply: REPLY.messageTooBig };
  }
  const space = checkSpace(s, params.size ?? 0);
  if (space) return { reply: space };
  const senderText = addressText(path.address);
  const refused = await s.checkPolicy("sender", "MAIL", {
    sender: path.address,
    from: senderText,
  });
  if (refused) return { reply: refused };
  s.beginTransaction({
    sender: path.address,
    senderText,
    recipients: [],
    declaredSize: params.size,
    body: params.body,
  });
  return { reply: REPLY.senderOk };
}
