/**
 * The end of a message, shared by DATA (after the final dot) and BDAT
 * LAST: smtpd_end_of_data_restrictions run first (the queue file is
 * complete but not committed; a refusal removes it and the client gets
 * the reply, nothing half-written stays), then the access actions decide
 * where the message goes: DISCARD drops it and answers 250 as if queued,
 * HOLD commits it into hold/, otherwise it is committed to its queue, with
 * the FILTER, REDIRECT and BCC records Postfix's qmgr acts on (a maildrop/
 * file cannot carry FILTER or REDIRECT: 451, see lostInMaildrop).
 * Only then "250 2.0.0 Ok: queued as ID" and the log lines.
 *
 * @module
 */

import type { MessageDraft } from "../../cleanup/mod.ts";
import { REPLY, type Reply } from "../../protocol/reply.ts";
import { answer, type CommandResult, type SessionContext } from "../context.ts";
import type { Transaction } from "../transaction.ts";

/**
 * What a stand-alone session cannot do with the access actions met: Postfix's
 * pickup drops FILTER and REDIRECT records from a maildrop/ file (as after
 * `postsuper -r`), so the message would reach its recipients without the
 * content filter or the redirect the operator asked for. It is deferred
 * instead (BCC goes through).
 * @param ctx the session
 * @param tx the transaction
 * @returns why the message cannot be queued, or undefined
 */
function lostInMaildrop(ctx: SessionContext, tx: Transaction): string | undefined {
  const { filter, redirect } = tx.actions;
  if (ctx.services.queue !== "maildrop" || (filter === undefined && redirect === undefined)) {
    return undefined;
  }
  const lost = [
    filter !== undefined && `FILTER ${filter}`,
    redirect !== undefined && `REDIRECT ${redirect}`,
  ]
    .filter(Boolean).join(" and ");
  return `${lost} cannot be kept: Postfix's pickup drops such records from maildrop files`;
}

/**
 * Finishes a message whose body has been read completely. Ends the
 * transaction.
 * @param ctx the session
 * @param tx the transaction (still the session's)
 * @param draft the message, every body line written
 * @param size the message size
 * @param queued the 250 for a queue ID (DATA's, or BDAT LAST's with the octets)
 * @returns the reply to the end of data
 */
export async function endOfData(
  ctx: SessionContext,
  tx: Transaction,
  draft: MessageDraft,
  size: number,
  queued: (id: string) => Reply,
): Promise<CommandResult> {
  let refused;
  try {
    refused = await ctx.checkPolicy("eod", "END-OF-MESSAGE", {
      queueId: draft.id,
      // As Postfix's smtpd: the size received, where MAIL's SIZE= was sent before.
      size,
      ...(tx.recipients.length === 1 ? { to: tx.recipients[0] } : {}),
    });
  } catch (err) {
    await draft.abort();
    throw err;
  } finally {
    ctx.endTransaction();
  }
  if (refused) {
    await draft.abort();
    return answer(refused);
  }
  if (tx.actions.discard) {
    // Postfix's cleanup reports success for a discarded message.
    await draft.abort();
    return answer(queued(draft.id));
  }
  const lost = lostInMaildrop(ctx, tx);
  if (lost) {
    await draft.abort();
    ctx.logReject({
      id: draft.id,
      stage: "END-OF-MESSAGE",
      reply: REPLY.configError,
      from: tx.senderText,
    });
    ctx.log.warning(`${draft.id}: ${lost}`);
    return answer(REPLY.configError);
  }
  const { hold, filter, redirect, bcc } = tx.actions;
  const result = await draft.finish({ hold, filter, redirect, bcc });
  if (result.kind === "refused") {
    ctx.logReject({
      id: draft.id,
      stage: "END-OF-MESSAGE",
      reply: result.reply,
      from: tx.senderText,
    });
    if (result.reply.code < 500) ctx.log.warning(`${draft.id}: ${result.reason}`);
    return answer(result.reply);
  }
  ctx.messageQueued();
  ctx.log.messageId(result.id, result.messageId);
  // Postfix's qmgr logs this line when the file enters its active queue,
  // which a held file (hold/) does not until it is released.
  if (!hold) ctx.log.queued(result.id, tx.senderText, result.size, result.recipients);
  return answer(queued(result.id));
}
