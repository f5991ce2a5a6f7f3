/**
 * RCPT TO (RFC 5321 §4.1.1.3): forward-path syntax (UTF-8 only in a
 * transaction with SMTPUTF8), NOTIFY= and ORCPT= (RFC 3461), the recipient limit
 * (smtpd_recipient_limit), then the recipient stage's policy (relay
 * control). Unqualified recipients get @$myorigin. The recipient list
 * counts against the memory budget (smtpd_memory_budget): without room,
 * 452 4.3.1. The command table refuses RCPT outside a transaction.
 *
 * @module
 */

import { addressText, isNullAddress, parsePath, pathToken } from "../../protocol/address.ts";
import { parseRcptParams } from "../../protocol/esmtp_params.ts";
import { withoutTrailingDot } from "../../protocol/hostname.ts";
import { REPLY } from "../../protocol/reply.ts";
import { answer, clientOverRate, type CommandResult, type SessionContext } from "../context.ts";
import { offeredExtensions } from "../extensions.ts";
import { inTransaction } from "./_transaction.ts";

/** RCPT TO:<address> */
export async function handleRcpt(arg: string, ctx: SessionContext): Promise<CommandResult> {
  const tx = inTransaction(ctx, "RCPT");
  const m = /^TO:/i.exec(arg);
  if (!m) return answer(REPLY.rcptSyntax);
  // As Postfix: the rate counts every RCPT with "TO:" and something after
  // it, before the address's syntax is looked at (rcpt_cmd's 501 for
  // "RCPT FROM:<a>" or a bare "RCPT TO:" comes first and counts nothing).
  if (/[^ \t]/.test(arg.slice(m[0].length))) {
    const overRate = clientOverRate(ctx, "recipient");
    if (overRate) return answer(overRate);
  }
  const text = arg.slice(m[0].length);
  const path = parsePath(text, {
    strict: ctx.config.strict_rfc821_envelopes,
    utf8: tx.smtputf8 === true,
    // With smtputf8_enable off, an 8-bit local part is taken, as Postfix's smtpd.
    eightBit: !ctx.config.smtputf8_enable,
  });
  if (!path.ok || isNullAddress(path.address)) {
    ctx.log.illegalAddress(ctx.client, "RCPT", pathToken(text));
    return answer(REPLY.badRecipient);
  }
  const params = parseRcptParams(path.params, offeredExtensions(ctx.config, ctx.ehloDiscard));
  if ("code" in params) return answer(params);
  if (tx.recipients.length >= ctx.config.smtpd_recipient_limit) {
    return answer(REPLY.tooManyRecipients);
  }
  const given = addressText(path.address);
  const refused = await ctx.checkPolicy("recipient", "RCPT", {
    recipient: path.address,
    to: given,
  });
  if (refused) return answer(refused);
  // Queued as Postfix's canonical rewriting leaves it: @$myorigin appended
  // to a bare local part, a trailing dot dropped from the domain.
  const recipient = path.address.domain
    ? withoutTrailingDot(given)
    : `${given}@${ctx.config.myorigin}`;
  // The list is held until the end of DATA: it is reserved against the budget.
  // As Postfix's smtpd: without ORCPT=, the original recipient is the address
  // as sent, source route, comments and white space included (the text
  // between the brackets).
  const a = path.address;
  const route = a.route.length ? `${a.route.map((h) => `@${h}`).join(",")}:` : "";
  const sent = path.sent ?? route +
      (a.quoted
        ? `"${a.local.replace(/(["\\])/g, "\\$1")}"${a.domain ? "@" + a.domain : ""}`
        : given);
  const orcpt = params.orcpt ? `${params.orcpt.type};${params.orcpt.address}` : `rfc822;${sent}`;
  // The O record keeps the address as sent when rewriting changed it (Postfix's cleanup).
  const original = recipient === given ? {} : { original: given };
  const dsn = params.notify === undefined
    ? { orcpt, ...original }
    : { notify: params.notify, orcpt, ...original };
  if (!ctx.addRecipient(recipient, dsn, a)) {
    const budget = ctx.services.memory;
    ctx.logReject({
      stage: "RCPT",
      reply: REPLY.insufficientStorage,
      from: tx.senderText,
      to: given,
    });
    ctx.log.warning(
      `memory budget exhausted: ${budget.used} of ${budget.limit} bytes (smtpd_memory_budget) held by messages in progress`,
    );
    return answer(REPLY.insufficientStorage);
  }
  return answer(REPLY.recipientOk);
}
