/**
 * RSET (RFC 5321 §4.1.1.5): drop the transaction, keep the session. An
 * argument is refused by the command table.
 *
 * @module
 */

import { REPLY } from "../../protocol/reply.ts";
import { answer, type CommandResult, type SessionContext } from "../context.ts";

/** Its answer, made once (a client may pipeline thousands). */
const OK = answer(REPLY.resetOk);

/** RSET */
export function handleRset(_arg: string, ctx: SessionContext): CommandResult {
  ctx.endTransaction();
  return OK;
}
