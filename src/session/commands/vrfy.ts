/**
 * VRFY (RFC 5321 §3.5.3, §4.1.1.6): 502 when disable_vrfy_command is set;
 * otherwise the address is checked against the recipient restrictions and
 * answered with 252 (we cannot verify, but will accept and try).
 *
 * @module
 */

import { addressText, isNullAddress, parsePath } from "../../protocol/address.ts";
import { cannotVerify, REPLY } from "../../protocol/reply.ts";
import { answer, type CommandResult, type SessionContext } from "../context.ts";

/** VRFY address */
export async function handleVrfy(arg: string, ctx: SessionContext): Promise<CommandResult> {
  if (ctx.config.disable_vrfy_command) return answer(REPLY.vrfyDisabled);
  if (arg.trim() === "") return answer(REPLY.vrfySyntax);
  const path = parsePath(arg, { strict: false });
  if (!path.ok || isNullAddress(path.address) || path.params !== "") {
    return answer(REPLY.badRecipient);
  }
  const text = addressText(path.address);
  const refused = await ctx.checkPolicy("vrfy", "VRFY", { recipient: path.address, to: text });
  return answer(refused ?? cannotVerify(text));
}
