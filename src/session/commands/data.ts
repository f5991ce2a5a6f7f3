/**
 * DATA (RFC 5321 §4.1.1.4): 354, then the body through the dot reader into
 * the cleanup writer, then "250 2.0.0 Ok: queued as ID" only once the queue
 * file is complete and on stable storage. Too big: 552 after reading to the
 * end. Client gone: the file is removed, nothing half-written stays.
 * Memory: the session's line buffer (it grows for DATA) and the message's
 * header block and record buffers are reserved against the process's
 * memory budget; without room, 452 4.3.1 at DATA, or after the body when
 * the budget runs out on the way (nothing is queued).
 *
 * @module
 */

import { DRAFT_FIRST_MEMORY, type MessageDraft } from "../../cleanup/mod.ts";
import { readDotBody } from "../../io/dot_reader.ts";
import { formatReply, REPLY, reply } from "../../protocol/reply.ts";
import { QueueWriteError } from "../../queue/mod.ts";
import type { CommandResult, Session } from "../session.ts";
import { checkSpace } from "./mail.ts";

/** DATA */
export async function handleData(arg: string, s: Session): Promise<CommandResult> {
  if (arg.trim() !== "") return { reply: REPLY.dataSyntax };
  const tx = s.tx;
  if (!tx) return { reply: REPLY.needMail };
  if (tx.recipients.length === 0) return { reply: REPLY.noValidRecipients };
  const space = checkSpace(s);
  if (space) return { reply: space };
  const log = s.deps.log;
  const memory = s.deps.memory.hold();
  if (!s.memory.ensure(lineBufferBytes(s)) || !memory.ensure(DRAFT_FIRST_MEMORY)) {
    memory.release();
    const budget = s.deps.memory;
    log.reject({
      stage: "DATA",
      peer: s.peer,
      reply: REPLY.insufficientStorage,
      from: tx.senderText,
      proto: s.protocol,
      helo: s.helo,
    });
    log.warning(
      `memory budget exhausted: ${budget.used} of ${budget.limit} bytes (smtpd_memory_budget) held by messages in progress`,
    );
    return { reply: REPLY.insufficientStorage };
  }
  const arrival = s.deps.clock();
  let draft: MessageDraft;
  try {
    draft = await s.deps.cleanup.begin({
      queue: s.deps.queue,
      sender: tx.senderText,
      recipients: tx.recipients,
      arrival,
      body: tx.body,
      origin: {
        clientName: s.peer.name,
        clientAddress: s.peer.address,
        clientPort: s.clientPort,
        helo: s.helo,
        protocol: s.protocol,
        local: s.local,
        ...(s.transport.tls ? { tls: s.transport.tls } : {}),
      },
    }, memory);
  } catch (err) {
    memory.release();
    log.warning(`cannot create queue file: ${(err as Error).message}`);
    return { reply: err instanceof QueueWriteError ? REPLY.queueWriteError : REPLY.localError };
  }
  log.client(draft.id, s.peer);
  s.writer.push(formatReply(REPLY.startData));
  try {
    return await receive(s, draft);
  } finally {
    memory.release();
    // The line buffer keeps its size for the session: keep what it holds.
    s.memory.trim(s.reader.buffer.byteLength);
  }
}

/**
 * The most the line reader's buffer grows to in DATA: 64 KiB, or twice a
 * line when line_length_limit is larger.
 */
function lineBufferBytes(s: Session): number {
  return Math.max(65536, 2 * (s.config.line_length_limit + 2));
}

/** 354, the body, then the queue file committed or thrown away. */
async function receive(s: Session, draft: MessageDraft): Promise<CommandResult> {
  const tx = s.tx;
  if (!tx) return { reply: REPLY.needMail };
  const log = s.deps.log;
  let body;
  try {
    body = await readDotBody(s.reader, draft, {
      maxBytes: s.config.message_size_limit,
      maxLine: s.config.line_length_limit,
      bareNewline: s.config.smtpd_forbid_bare_newline,
    });
  } catch (err) {
    await draft.abort();
    s.endTransaction();
    throw err;
  }
  s.endTransaction();
  switch (body.kind) {
    case "disconnected":
      await draft.abort();
      log.lostConnection(s.peer, "DATA");
      return { reply: REPLY.localError, gone: true };
    case "tooBig":
      await draft.abort();
      log.reject({
        id: draft.id,
        stage: "END-OF-MESSAGE",
        peer: s.peer,
        reply: REPLY.messageTooBig,
        from: tx.senderText,
        proto: s.protocol,
        helo: s.helo,
      });
      return { reply: REPLY.messageTooBig };
    case "bareNewline":
      await draft.abort();
      log.reject({
        id: draft.id,
        stage: "END-OF-MESSAGE",
        peer: s.peer,
        reply: REPLY.bareLf,
        from: tx.senderText,
        proto: s.protocol,
        helo: s.helo,
      });
      return { reply: REPLY.bareLf };
    case "complete":
      break;
  }
  const result = await draft.finish(body.size);
  if (result.kind === "refused") {
    log.reject({
      id: draft.id,
      stage: "END-OF-MESSAGE",
      peer: s.peer,
      reply: result.reply,
      from: tx.senderText,
      proto: s.protocol,
      helo: s.helo,
    });
    if (result.reply.code < 500) log.warning(`${draft.id}: ${result.reason}`);
    return { reply: result.reply };
  }
  s.deps.queued();
  log.messageId(result.id, result.messageId);
  log.queued(result.id, tx.senderText, result.size, result.recipients);
  s.errorCount = 0;
  s.junkCommands = 0;
  return { reply: reply(250, "0.0", `Ok: queued as ${result.id}`) };
}
