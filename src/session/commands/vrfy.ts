/**
 * VRFY (RFC 5321 §3.5.3, §4.1.1.6): 502 when disable_vrfy_command is set;
 * otherwise the address is checked against the recipient restrictions and
 * answered with 252 (we cannot verify, but will accept and try). A last
 * word SMTPUTF8 (RFC 6531 §3.7.4.2) allows a UTF-8 address, as in Postfix.
 *
 * @module
 */

import {
  addressText,
  isNullAddress,
  parsePath,
  printableArgument,
} from "../../protocol/address.ts";
import { cannotVerify, REPLY } from "../../protocol/reply.ts";
import { answer, type CommandResult, type SessionContext } from "../context.ts";
import { offeredExtensions } from "../extensions.ts";

/** VRFY address */
export async function handleVrfy(arg: string, ctx: SessionContext): Promise<CommandResult> {
  if (ctx.config.disable_vrfy_command) return answer(REPLY.vrfyDisabled);
  let text0 = arg; // without the spaces and tabs around it (parseCommand)
  const utf8 = offeredExtensions(ctx.config, ctx.ehloDiscard).smtputf8 &&
    /(^|[ \t])SMTPUTF8$/i.test(text0);
  if (utf8) text0 = text0.slice(0, -"SMTPUTF8".length).replace(/[ \t]+$/, "");
  if (text0 === "") {
    return answer(ctx.config.smtputf8_enable ? REPLY.vrfySyntaxUtf8 : REPLY.vrfySyntax);
  }
  const path = parsePath(text0, { strict: false, utf8, eightBit: !ctx.config.smtputf8_enable });
  if (!path.ok || isNullAddress(path.address) || path.params !== "") {
    // Postfix's vrfy_cmd joins the words and parses them as one address.
    ctx.log.illegalAddress(ctx.client, "VRFY", printableArgument(text0));
    return answer(REPLY.badRecipient);
  }
  const text = addressText(path.address);
  const refused = await ctx.checkPolicy("vrfy", "VRFY", { recipient: path.address, to: text });
  return answer(refused ?? cannotVerify(text));
}
