/**
 * RSET (RFC 5321 §4.1.1.5): drop the transaction, keep the session. An
 * argument is refused by the command table.
 *
 * @module
 */

import { REPLY } from "../../protocol/reply.ts";
import { answer, type CommandResult, type SessionContext } from "../context.ts";

/** RSET */
export function handleRset(_arg: string, ctx: SessionContext): CommandResult {
  ctx.endTransaction();
  return answer(REPLY.resetOk);
}
