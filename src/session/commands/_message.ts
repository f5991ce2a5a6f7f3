/**
 * What DATA and BDAT share: opening a message (queue space, memory, the
 * queue file) and completing it ("message complete → checks → durable
 * commit"). The 250 is sent only once the queue file is complete and on
 * stable storage; any other outcome removes the file.
 *
 * @module
 */

import { DRAFT_FIRST_MEMORY, type MessageDraft } from "../../cleanup/mod.ts";
import type { DotBodyResult } from "../../io/dot_reader.ts";
import { withoutTrailingDot } from "../../protocol/hostname.ts";
import { bareLfReceived, REPLY, type Reply } from "../../protocol/reply.ts";
import { QueueWriteError } from "../../queue/mod.ts";
import { answer, type CommandResult, type SessionContext } from "../context.ts";
import type { MemoryHold } from "../memory_budget.ts";
import type { Transaction } from "../transaction.ts";
import { checkSpace } from "./mail.ts";
import { endOfData } from "./_end_of_data.ts";

/** An open message: its queue file in the making and its memory. */
export interface OpenMessage {
  readonly draft: MessageDraft;
  readonly memory: MemoryHold;
}

/**
 * Checks queue space and memory, then creates the queue file.
 * @param ctx the session
 * @param tx the transaction (with at least one recipient)
 * @param stage the command, for the log ("DATA" or "BDAT")
 * @returns the open message, or the refusal (nothing is held then)
 */
export async function openMessage(
  ctx: SessionContext,
  tx: Transaction,
  stage: string,
): Promise<OpenMessage | Reply> {
  const space = checkSpace(ctx);
  if (space) return space;
  const { log, client } = ctx;
  const budget = ctx.services.memory;
  const memory = budget.hold();
  if (!ctx.reserveBodyBuffer() || !memory.ensure(DRAFT_FIRST_MEMORY)) {
    memory.release();
    ctx.logReject({ stage, reply: REPLY.insufficientStorage, from: tx.senderText });
    log.warning(
      `memory budget exhausted: ${budget.used} of ${budget.limit} bytes (smtpd_memory_budget) held by messages in progress`,
    );
    return REPLY.insufficientStorage;
  }
  try {
    const draft = await ctx.services.cleanup.begin({
      queue: ctx.services.queue,
      // Unqualified senders get @$myorigin, as Postfix's cleanup appends it.
      sender: qualifiedSender(tx.senderText, ctx.config.myorigin),
      recipients: tx.recipients,
      arrival: ctx.services.clock(),
      body: tx.body,
      prepend: tx.actions.prepend,
      smtputf8: tx.smtputf8 === true,
      ...(tx.recipientDsn ? { recipientDsn: tx.recipientDsn } : {}),
      ...(tx.dsnRet ? { dsnRet: tx.dsnRet } : {}),
      ...(tx.dsnEnvid !== undefined ? { dsnEnvid: tx.dsnEnvid } : {}),
      ...(stage === "BDAT" ? { chunked: true } : {}),
      origin: {
        clientName: client.name,
        clientAddress: client.address,
        clientPort: client.port,
        helo: ctx.helo,
        protocol: ctx.protocol,
        local: client.local,
        ...(ctx.tls ? { tls: ctx.tls } : {}),
        ...(ctx.sasl ? { sasl: ctx.sasl } : {}),
        ...(tx.authSender !== undefined ? { saslSender: tx.authSender } : {}),
      },
    }, memory);
    log.client(draft.id, client, { ...ctx.sasl, sender: tx.authSender });
    return { draft, memory };
  } catch (err) {
    memory.release();
    log.warning(`cannot create queue file: ${(err as Error).message}`);
    return err instanceof QueueWriteError ? REPLY.queueWriteError : REPLY.localError;
  }
}

/**
 * The body is in: refuse it or commit it, and end the transaction. The one
 * path from "message complete" to the 250 for DATA and BDAT LAST: a body
 * that is too big or has a bare newline is refused; a complete one goes
 * through the end-of-data restrictions, DISCARD and HOLD
 * (`_end_of_data.ts`) to the durable commit.
 * @param ctx the session (its transaction still open)
 * @param tx the transaction the message belongs to
 * @param draft the queue file
 * @param body how the body ended
 * @param queued the 250 once committed, from the queue ID
 * @returns the reply
 */
export async function completeMessage(
  ctx: SessionContext,
  tx: Transaction,
  draft: MessageDraft,
  body: DotBodyResult,
  queued: (id: string) => Reply,
): Promise<CommandResult> {
  if (body.kind === "complete") return await endOfData(ctx, tx, draft, body.size, queued);
  ctx.endTransaction();
  await draft.abort();
  switch (body.kind) {
    case "disconnected":
      ctx.log.lostConnection(ctx.client, "DATA", body.size);
      return { kind: "gone" };
    case "tooBig": {
      const reply = REPLY.messageFileTooBig;
      ctx.logReject({ id: draft.id, stage: "END-OF-MESSAGE", reply, from: tx.senderText });
      return answer(reply);
    }
    case "bareNewline":
      ctx.logBareLf("END-OF-MESSAGE", { id: draft.id, tx });
      return answer(bareLfReply(ctx));
  }
}

/**
 * The refusal of a message with a bare LF (smtpd_forbid_bare_newline =
 * reject), DATA's and BDAT's.
 * @param ctx the session
 * @returns the reply
 */
export function bareLfReply(ctx: SessionContext): Reply {
  const { config } = ctx;
  return bareLfReceived(config.smtpd_forbid_bare_newline_reject_code, config.myhostname);
}

/**
 * The sender as queued: an address without a domain gets @$myorigin, a
 * trailing dot on the domain goes, as Postfix's canonical rewriting leaves
 * them (the null sender stays null).
 * @param sender the sender in internal form
 * @param myorigin the domain to append
 * @returns the queued sender
 */
export function qualifiedSender(sender: string, myorigin: string): string {
  if (sender === "") return sender;
  return sender.includes("@") ? withoutTrailingDot(sender) : `${sender}@${myorigin}`;
}
