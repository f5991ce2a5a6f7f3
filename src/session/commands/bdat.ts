/**
 * BDAT (RFC 3030 CHUNKING), as Postfix's bdat_cmd: `BDAT size [LAST]`,
 * then exactly `size` octets that are message content, never commands.
 * Chunks may be pipelined. The first chunk runs smtpd_data_restrictions
 * and opens the message as DATA does (queue space, memory, the queue
 * file); each chunk is streamed to the cleanup writer through the line
 * reader's buffer, so an announced size allocates nothing. A chunk that is not the last gets "250 2.0.0 Ok: N
 * bytes"; LAST completes the message on DATA's path (./_message.ts): the
 * 250 comes once the queue file is on stable storage.
 *
 * Refusals keep the client in step: the chunk is read and dropped, and
 * later chunks of the message get 551 until LAST or RSET. A chunk that
 * would take the message past 1.5 × message_size_limit is not read: the
 * reply is sent and the connection closed (Postfix shuts the input down).
 * A malformed BDAT line gets 521 and the connection is closed: what
 * follows is content of unknown length. So does any BDAT when
 * smtpd_discard_ehlo_keywords (or the client's
 * smtpd_discard_ehlo_keyword_address_maps value) takes CHUNKING away:
 * "521 5.5.1 Error: command not implemented", checked before the syntax,
 * as Postfix's bdat_cmd does.
 *
 * @module
 */

import {
  chunkDiscarded,
  chunkOk,
  chunksQueuedAs,
  REPLY,
  type Reply,
} from "../../protocol/reply.ts";
import { asciiUpperCase } from "../../protocol/esmtp_params.ts";
import { trimBlanks } from "../../protocol/parse_command.ts";
import { answer, type CommandResult, type SessionContext } from "../context.ts";
import { bareLfReply, completeMessage, openMessage } from "./_message.ts";

/** A BDAT argument: the chunk size and whether it is the last. */
export interface BdatArg {
  /**
   * The chunk size; past 2^53 not exact, which only the size checks see
   * (such a chunk is never read: it is past any message_size_limit).
   */
  readonly size: number;
  /** The chunk size, exact (for "Discarded N bytes"). */
  readonly count: bigint;
  readonly last: boolean;
}

/** Postfix's largest chunk size: its off_t (off_cvt_string refuses more). */
const OFF_T_MAX = 9223372036854775807n;

/**
 * Parses `size [LAST]` (digits only; LAST in any case). As Postfix's
 * bdat_cmd (RFC 3030: chunk-size = 1*DIGIT): leading zeros are allowed,
 * whatever their number, and any size up to 2^63 - 1 is well formed (a
 * size past the limits is refused as too big, not as a syntax error).
 * @param arg the argument text
 * @returns the parsed argument, or undefined when malformed
 */
export function parseBdatArg(arg: string): BdatArg | undefined {
  // Blanks are space and tab only (String.trim() would also take U+00A0 and the like).
  const words = trimBlanks(arg).split(/[ \t]+/);
  if (words.length < 1 || words.length > 2) return undefined;
  const [digits, last] = words as [string, string | undefined];
  if (!/^[0-9]+$/.test(digits)) return undefined;
  if (last !== undefined && asciiUpperCase(last) !== "LAST") return undefined;
  const count = BigInt(digits);
  if (count > OFF_T_MAX) return undefined;
  return { size: Number(count), count, last: last !== undefined };
}

/**
 * A BDAT line that cannot be read as one (malformed, or too long to read
 * whole): logged, then 521 and the connection closed, since what follows is
 * content of unknown length.
 * @param arg the argument text as far as it was read (log-safe)
 * @param ctx the session
 * @returns the closing reply
 */
export function malformedBdat(arg: string, ctx: SessionContext): CommandResult {
  // CHUNKING turned off comes first, as in handleBdat.
  if (ctx.ehloDiscard.has("CHUNKING")) return { kind: "close", reply: REPLY.bdatNotImplemented };
  ctx.log.warning(
    `NOQUEUE: malformed BDAT command syntax from ${ctx.client.name}[${ctx.client.address}]: ${
      `BDAT ${arg}`.slice(0, 100)
    }`,
  );
  ctx.setBdat(undefined);
  return { kind: "close", reply: REPLY.bdatSyntax };
}

/** BDAT */
export async function handleBdat(arg: string, ctx: SessionContext): Promise<CommandResult> {
  if (ctx.ehloDiscard.has("CHUNKING")) return { kind: "close", reply: REPLY.bdatNotImplemented };
  const parsed = parseBdatArg(arg);
  if (!parsed) return malformedBdat(arg, ctx);
  const { size, last } = parsed;
  // Level encrypt, before STARTTLS (the command table leaves this to us): the chunk is read away.
  if (ctx.config.smtpd_tls_security_level === "encrypt" && !ctx.tls) {
    return await skip(ctx, size, last, REPLY.starttlsFirst);
  }
  let progress = ctx.bdat;
  if (size === 0 && !last) {
    // As Postfix's bdat_cmd, which logs it before refusing it.
    const id = progress?.kind === "receiving" ? progress.draft.id : "NOQUEUE";
    ctx.log.warning(`${id}: null BDAT request from ${ctx.client.name}[${ctx.client.address}]`);
    return await skip(ctx, size, last, REPLY.bdatNull);
  }
  if (progress?.kind === "failed") return await skip(ctx, size, last, chunkDiscarded(parsed.count));
  const tx = ctx.tx;
  if (!progress) {
    if (!tx) return await skip(ctx, size, last, REPLY.needRcpt);
    if (tx.recipients.length === 0) return await skip(ctx, size, last, REPLY.noValidRecipients);
    // As Postfix's bdat_cmd: the first chunk of a message runs
    // smtpd_data_restrictions, as DATA does (BDAT must not be a way past them).
    const refused = await ctx.checkPolicy("data", "BDAT", {
      ...(tx.recipients.length === 1 ? { to: tx.recipients[0] } : {}),
    });
    if (refused) return await skip(ctx, size, last, refused);
  }
  // As Postfix: a chunk that would pass the limit is refused before any of it is stored.
  const octets = progress ? progress.body.octets : 0;
  if (octets > ctx.config.message_size_limit - size) {
    const id = progress ? progress.draft.id : undefined;
    ctx.log.warning(
      `${
        id ?? "NOQUEUE"
      }: BDAT request from ${ctx.client.name}[${ctx.client.address}] exceeds message size limit`,
    );
    ctx.logReject({ id, stage: "BDAT", reply: REPLY.chunkTooBig, from: tx?.senderText });
    return await skip(ctx, size, last, REPLY.chunkTooBig);
  }
  if (!progress) {
    const opened = await openMessage(ctx, tx!, "BDAT");
    if ("code" in opened) return await skip(ctx, size, last, opened);
    progress = { kind: "receiving", ...opened, body: ctx.bdatBody(opened.draft) };
    ctx.setBdat(progress);
  }
  const { draft, body, memory } = progress;
  let complete;
  try {
    complete = await ctx.readChunk(body, size);
  } catch (err) {
    ctx.setBdat(undefined); // the queue file goes
    throw err;
  }
  if (!complete) {
    ctx.setBdat(undefined);
    // As Postfix: "after BDAT (N bytes)", the chunk octets received.
    ctx.log.lostConnection(ctx.client, "BDAT", body.octets);
    return { kind: "gone" };
  }
  if (!last) {
    // As Postfix's bdat_cmd: a chunk that leaves the message too big (a bare
    // LF stored as a line end counts 2) or with a bare LF that is refused
    // ends the message now, not at LAST. A 250 here told the client the
    // chunk was taken, and it sent the rest of the message for nothing.
    const failure = body.failure;
    if (failure) {
      const reply = failure === "tooBig" ? REPLY.messageFileTooBig : bareLfReply(ctx);
      if (failure === "tooBig") {
        ctx.log.warning(`${draft.id}: queue file size limit exceeded`);
        ctx.logReject({ id: draft.id, stage: "BDAT", reply, from: tx!.senderText });
      } else {
        // As Postfix 3.7.11 logs it: "reject: BDAT content from ...".
        ctx.logBareLf("BDAT content", { id: draft.id, tx: tx! });
      }
      ctx.endTransaction(); // the queue file goes
      // Later chunks are read and dropped (551) until LAST or RSET.
      ctx.setBdat({ kind: "failed", octets: body.octets, id: draft.id });
      return answer(reply);
    }
    return answer(chunkOk(size));
  }
  // LAST: the message is complete; the transaction ends whatever happens.
  ctx.setBdat(undefined, true);
  try {
    const result = await body.finish();
    return await completeMessage(
      ctx,
      tx!,
      draft,
      result,
      // As Postfix: the size counted as stored (its act_size), not the octets.
      (id) => chunksQueuedAs(body.queuedSize, id),
    );
  } catch (err) {
    await draft.abort();
    throw err;
  } finally {
    memory.release();
    ctx.trimBodyBuffer();
  }
}

/**
 * A refused chunk: read and dropped (unless too big to wait for), then the
 * reply. LAST ends the transaction; otherwise later chunks are dropped too.
 */
async function skip(
  ctx: SessionContext,
  size: number,
  last: boolean,
  reply: Reply,
): Promise<CommandResult> {
  const progress = ctx.bdat;
  // As Postfix's skip_bdat: the chunks dropped after a refusal count too, so
  // a client cannot stream without end in chunks that are each under the cut-off.
  const before = progress === undefined
    ? 0
    : progress.kind === "receiving"
    ? progress.body.octets
    : progress.octets;
  // Postfix keeps the queue ID of a message refused part-way until its end.
  const id = progress === undefined
    ? undefined
    : progress.kind === "receiving"
    ? progress.draft.id
    : progress.id;
  if (before + size > 1.5 * ctx.config.message_size_limit) {
    ctx.log.warning(
      `${
        id ?? "NOQUEUE"
      }: too much BDAT content -- disabling further input from ${ctx.client.name}[${ctx.client.address}]`,
    );
    ctx.endTransaction();
    return { kind: "close", reply };
  }
  if (last) ctx.endTransaction();
  else ctx.setBdat({ kind: "failed", octets: before + size, ...(id ? { id } : {}) });
  if (!(await ctx.discardChunk(size))) {
    ctx.log.lostConnection(ctx.client, "BDAT");
    return { kind: "gone" };
  }
  return answer(reply);
}
