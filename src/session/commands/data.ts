/**
 * DATA (RFC 5321 §4.1.1.4): 354, then the body through the dot reader into
 * the cleanup writer, then "250 2.0.0 Ok: queued as ID" only once the queue
 * file is complete and on stable storage. Too big: 552 after reading to the
 * end. Client gone: the file is removed, nothing half-written stays.
 * smtpd_data_restrictions run before the queue file is opened (no 354 on
 * a refusal); the end of the message (end-of-data restrictions, HOLD,
 * DISCARD, the commit) is in _end_of_data.ts, shared with BDAT.
 * Memory: the session's line buffer (it grows for DATA) and the message's
 * header block and record buffers are reserved against the process's
 * memory budget; without room, 452 4.3.1 at DATA, or after the body when
 * the budget runs out on the way (nothing is queued). The command table
 * refuses DATA outside a transaction, and once BDAT
 * has begun (503 5.5.1 Error: DATA after BDAT, as Postfix); an argument
 * gets 501 here, after the state checks, as in Postfix. Opening and
 * completing the message is shared with BDAT (./_message.ts).
 *
 * @module
 */

import { queuedAs, REPLY } from "../../protocol/reply.ts";
import { answer, type CommandResult, type SessionContext } from "../context.ts";
import { completeMessage, openMessage } from "./_message.ts";
import { inTransaction } from "./_transaction.ts";

/** DATA */
export async function handleData(arg: string, ctx: SessionContext): Promise<CommandResult> {
  const tx = inTransaction(ctx, "DATA");
  if (tx.recipients.length === 0) return answer(REPLY.noValidRecipients);
  // As Postfix's data_cmd: the argument is judged after the state.
  // Any argument, U+00A0 included (parseCommand took the spaces and tabs).
  if (arg !== "") return answer(REPLY.dataSyntax);
  // smtpd_data_restrictions, before the queue file is opened (no 354 on a refusal).
  const refused = await ctx.checkPolicy("data", "DATA", {
    ...(tx.recipients.length === 1 ? { to: tx.recipients[0] } : {}),
  });
  if (refused) return answer(refused);
  const opened = await openMessage(ctx, tx, "DATA");
  if ("code" in opened) return answer(opened);
  const { draft, memory } = opened;
  ctx.send(REPLY.startData);
  try {
    let body;
    try {
      body = await ctx.readBody(draft);
    } catch (err) {
      await draft.abort();
      ctx.endTransaction();
      throw err;
    }
    return await completeMessage(ctx, tx, draft, body, queuedAs);
  } finally {
    memory.release();
    // The line buffer keeps its size for the session: keep what it holds.
    ctx.trimBodyBuffer();
  }
}
