/**
 * MAIL FROM (RFC 5321 §4.1.1.2, SIZE RFC 1870, BODY RFC 6152, SMTPUTF8
 * RFC 6531, RET/ENVID RFC 3461): TLS when required, reverse-path and
 * parameter syntax (SMTPUTF8 first: a UTF-8 address needs it), the size pre-check,
 * queue_minfree, the sender stage's policy, then a new transaction. The
 * command table refuses a nested MAIL, and MAIL before HELO/EHLO when
 * smtpd_helo_required is set.
 *
 * @module
 */

import { addressText, parsePath, pathToken } from "../../protocol/address.ts";
import { declaresSmtputf8, DSN_RET, parseMailParams } from "../../protocol/esmtp_params.ts";
import { REPLY, type Reply } from "../../protocol/reply.ts";
import { answer, clientOverRate, type CommandResult, type SessionContext } from "../context.ts";
import { offeredExtensions } from "../extensions.ts";

/**
 * Whether the queue file system has room: queue_minfree, and room for
 * 1.5 messages of the largest size, as Postfix asks.
 * @param ctx the session
 * @param declared the SIZE= value, if any
 * @returns the 452 reply when short of space
 */
export function checkSpace(ctx: SessionContext, declared = 0): Reply | undefined {
  const free = ctx.services.freeSpace();
  if (free === undefined) return undefined;
  const cfg = ctx.config;
  const need = Math.max(cfg.queue_minfree, declared, Math.floor(cfg.message_size_limit * 1.5));
  if (free < need) {
    ctx.log.warning(
      `not enough free space in queue file system: ${free} bytes free, ${need} needed`,
    );
    return REPLY.insufficientStorage;
  }
  return undefined;
}

/** MAIL FROM:<address> [SIZE=n] [BODY=7BIT|8BITMIME] */
export function handleMail(
  arg: string,
  ctx: SessionContext,
): CommandResult | Promise<CommandResult> {
  const cfg = ctx.config;
  const m = /^FROM:/i.exec(arg);
  if (!m) return answer(REPLY.mailSyntax);
  // As Postfix: the rate counts every MAIL with "FROM:" and something after
  // it, before the address's syntax is looked at (mail_cmd's 501 for
  // "MAIL TO:<a>" or a bare "MAIL FROM:" comes first and counts nothing).
  if (/[^ \t]/.test(arg.slice(m[0].length))) {
    const overRate = clientOverRate(ctx, "message");
    if (overRate) return answer(overRate);
  }
  const offered = offeredExtensions(cfg, ctx.ehloDiscard);
  // As Postfix: SMTPUTF8 is looked for first, the address syntax depends on
  // it. Where the address ends is found by parsing it (a quoted local part
  // may hold ">" and " SMTPUTF8"); without SMTPUTF8 among the parameters
  // after it, an address with non-ASCII text is parsed again without UTF-8.
  const rest = arg.slice(m[0].length);
  const strict = cfg.strict_rfc821_envelopes;
  // With smtputf8_enable off, an 8-bit local part is taken, as Postfix's smtpd.
  const eightBit = !cfg.smtputf8_enable;
  let path = parsePath(rest, { strict, utf8: offered.smtputf8 === true, eightBit });
  const utf8 = path.ok && declaresSmtputf8(path.params, offered);
  if (!utf8 && offered.smtputf8 && /[^ -~\t]/.test(rest)) {
    path = parsePath(rest, { strict, utf8: false });
  }
  if (!path.ok) {
    ctx.log.illegalAddress(ctx.client, "MAIL", pathToken(rest));
    return answer(REPLY.badSender);
  }
  const params = parseMailParams(path.params, offered);
  if ("code" in params) return answer(params);
  const senderText = addressText(path.address);
  // As Postfix's smtpd_check_size: both refusals are logged as NOQUEUE rejects.
  const tooBig = params.size !== undefined && params.size > cfg.message_size_limit
    ? REPLY.messageTooBig
    : checkSpace(ctx, params.size ?? 0);
  if (tooBig) {
    ctx.logReject({ stage: "MAIL", reply: tooBig, from: senderText });
    return answer(tooBig);
  }
  const begin = (refused: Reply | undefined) => {
    if (refused) return answer(refused);
    ctx.beginTransaction({
      sender: path.address,
      senderText,
      declaredSize: params.size,
      body: params.body,
      smtputf8: params.smtputf8,
      ...(params.ret ? { dsnRet: DSN_RET[params.ret] } : {}),
      ...(params.envid !== undefined ? { dsnEnvid: params.envid } : {}),
      ...(params.auth !== undefined ? { authSender: params.auth } : {}),
    });
    return answer(REPLY.senderOk);
  };
  // No promise when the sender list does not run now (see the session loop).
  const refused = ctx.checkPolicy("sender", "MAIL", { sender: path.address, from: senderText });
  return refused instanceof Promise ? refused.then(begin) : begin(refused);
}
