/**
 * RCPT TO (RFC 5321 §4.1.1.3): sequence, forward-path syntax, the
 * recipient limit (smtpd_recipient_limit), then the recipient stage's
 * policy (relay control). Unqualified recipients get @$myorigin. The
 * recipient list counts against the memory budget (smtpd_memory_budget):
 * without room, 452 4.3.1.
 *
 * @module
 */

import { addressText, isNullAddress, parsePath } from "../../protocol/address.ts";
import { checkRcptParams } from "../../protocol/esmtp_params.ts";
import { REPLY } from "../../protocol/reply.ts";
import type { CommandResult, Session } from "../session.ts";

/** RCPT TO:<address> */
export async function handleRcpt(arg: string, s: Session): Promise<CommandResult> {
  const tx = s.tx;
  if (!tx) return { reply: REPLY.needMail };
  const m = /^TO:/i.exec(arg);
  if (!m) return { reply: REPLY.rcptSyntax };
  const path = parsePath(arg.slice(m[0].length), { strict: s.config.strict_rfc821_envelopes });
  if (!path.ok || isNullAddress(path.address)) return { reply: REPLY.badRecipient };
  const bad = checkRcptParams(path.params);
  if (bad) return { reply: bad };
  if (tx.recipients.length >= s.config.smtpd_recipient_limit) {
    return { reply: REPLY.tooManyRecipients };
  }
  const given = addressText(path.address);
  const refused = await s.checkPolicy("recipient", "RCPT", { recipient: path.address, to: given });
  if (refused) return { reply: refused };
  const recipient = path.address.domain ? given : `${given}@${s.config.myorigin}`;
  // The list is held until the end of DATA: reserve it against the budget.
  const held = s.envelopeBytes + RECIPIENT_OVERHEAD + 2 * recipient.length;
  if (!s.envelopeMemory.ensure(held)) {
    const budget = s.deps.memory;
    s.deps.log.reject({
      stage: "RCPT",
      peer: s.peer,
      reply: REPLY.insufficientStorage,
      from: tx.senderText,
      to: given,
      proto: s.protocol,
      helo: s.helo,
    });
    s.deps.log.warning(
      `memory budget exhausted: ${budget.used} of ${budget.limit} bytes (smtpd_memory_budget) held by messages in progress`,
    );
    return { reply: REPLY.insufficientStorage };
  }
  s.envelopeBytes = held;
  tx.recipients.push(recipient);
  return { reply: REPLY.recipientOk };
}

/** What one recipient costs beyond its text (the array slot, the string's header). */
const RECIPIENT_OVERHEAD = 32;
