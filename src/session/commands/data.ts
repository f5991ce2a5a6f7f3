/**
 * DATA (RFC 5321 §4.1.1.4): 354, then the body through the dot reader into
 * the cleanup writer, then "250 2.0.0 Ok: queued as ID" only once the queue
 * file is complete and on stable storage. Too big: 552 after reading to the
 * end. Client gone: the file is removed, nothing half-written stays.
 * Memory: the session's line buffer (it grows for DATA) and the message's
 * header block and record buffers are reserved against the process's
 * memory budget; without room, 452 4.3.1 at DATA, or after the body when
 * the budget runs out on the way (nothing is queued). The command table
 * refuses DATA with an argument, and outside a transaction.
 *
 * @module
 */

import { DRAFT_FIRST_MEMORY, type MessageDraft } from "../../cleanup/mod.ts";
import { queuedAs, REPLY, type Reply } from "../../protocol/reply.ts";
import { QueueWriteError } from "../../queue/mod.ts";
import { answer, type CommandResult, type SessionContext } from "../context.ts";
import type { Transaction } from "../transaction.ts";
import { inTransaction } from "./_transaction.ts";
import { checkSpace } from "./mail.ts";

/** DATA */
export async function handleData(_arg: string, ctx: SessionContext): Promise<CommandResult> {
  const tx = inTransaction(ctx, "DATA");
  if (tx.recipients.length === 0) return answer(REPLY.noValidRecipients);
  const space = checkSpace(ctx);
  if (space) return answer(space);
  const { log, client } = ctx;
  const budget = ctx.services.memory;
  const memory = budget.hold();
  if (!ctx.reserveBodyBuffer() || !memory.ensure(DRAFT_FIRST_MEMORY)) {
    memory.release();
    ctx.logReject({ stage: "DATA", reply: REPLY.insufficientStorage, from: tx.senderText });
    log.warning(
      `memory budget exhausted: ${budget.used} of ${budget.limit} bytes (smtpd_memory_budget) held by messages in progress`,
    );
    return answer(REPLY.insufficientStorage);
  }
  const arrival = ctx.services.clock();
  let draft: MessageDraft;
  try {
    draft = await ctx.services.cleanup.begin({
      queue: ctx.services.queue,
      // Unqualified senders get @$myorigin, as Postfix's cleanup appends it.
      sender: qualifiedSender(tx.senderText, ctx.config.myorigin),
      recipients: tx.recipients,
      arrival,
      body: tx.body,
      origin: {
        clientName: client.name,
        clientAddress: client.address,
        clientPort: client.port,
        helo: ctx.helo,
        protocol: ctx.protocol,
        local: client.local,
        ...(ctx.tls ? { tls: ctx.tls } : {}),
        ...(ctx.sasl
          ? {
            sasl: {
              ...ctx.sasl,
              ...(tx.authSender !== undefined ? { sender: tx.authSender } : {}),
            },
          }
          : {}),
      },
    }, memory);
  } catch (err) {
    memory.release();
    log.warning(`cannot create queue file: ${(err as Error).message}`);
    return answer(err instanceof QueueWriteError ? REPLY.queueWriteError : REPLY.localError);
  }
  log.client(draft.id, client, ctx.sasl && { ...ctx.sasl, sender: tx.authSender });
  ctx.send(REPLY.startData);
  try {
    return await receive(ctx, tx, draft);
  } finally {
    memory.release();
    // The line buffer keeps its size for the session: keep what it holds.
    ctx.trimBodyBuffer();
  }
}

/** 354, the body, then the queue file committed or thrown away. */
async function receive(
  ctx: SessionContext,
  tx: Transaction,
  draft: MessageDraft,
): Promise<CommandResult> {
  let body;
  try {
    body = await ctx.readBody(draft);
  } catch (err) {
    await draft.abort();
    ctx.endTransaction();
    throw err;
  }
  ctx.endTransaction();
  const reject = (reply: Reply): CommandResult => {
    ctx.logReject({ id: draft.id, stage: "END-OF-MESSAGE", reply, from: tx.senderText });
    return answer(reply);
  };
  switch (body.kind) {
    case "disconnected":
      await draft.abort();
      ctx.log.lostConnection(ctx.client, "DATA");
      return { kind: "gone" };
    case "tooBig":
      await draft.abort();
      return reject(REPLY.messageTooBig);
    case "bareNewline":
      await draft.abort();
      return reject(REPLY.bareLf);
    case "complete":
      break;
  }
  const result = await draft.finish(body.size);
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
  ctx.log.queued(result.id, tx.senderText, result.size, result.recipients);
  return answer(queuedAs(result.id));
}

/**
 * The sender as queued: an address without a domain gets @$myorigin (the
 * null sender stays null).
 * @param sender the sender in internal form
 * @param myorigin the domain to append
 * @returns the queued sender
 */
export function qualifiedSender(sender: string, myorigin: string): string {
  return sender === "" || sender.includes("@") ? sender : `${sender}@${myorigin}`;
}
