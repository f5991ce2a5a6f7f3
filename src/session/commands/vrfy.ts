/**
 * VRFY (RFC 5321 §3.5.3, §4.1.1.6): 502 when disable_vrfy_command is set;
 * otherwise the address is checked against the recipient restrictions and
 * answered with 252 (we cannot verify, but will accept and try).
 *
 * @module
 */

import { addressText, isNullAddress, parsePath } from "../../protocol/address.ts";
import { REPLY, reply } from "../../protocol/reply.ts";
import type { CommandResult, Session } from "../session.ts";

/** VRFY address */
export async function handleVrfy(arg: string, s: Session): Promise<CommandResult> {
  if (s.config.disable_vrfy_command) return { reply: REPLY.vrfyDisabled };
  if (arg.trim() === "") return { reply: REPLY.vrfySyntax };
  const path = parsePath(arg, { strict: false });
  if (!path.ok || isNullAddress(path.address) || path.params !== "") {
    return { reply: REPLY.badRecipient };
  }
  const text = addressText(path.address);
  const refused = await s.checkPolicy("vrfy", "VRFY", { recipient: path.address, to: text });
  if (refused) return { reply: refused };
  return { reply: reply(252, "0.0", text) };
}
