/**
 * RSET (RFC 5321 §4.1.1.5): drop the transaction, keep the session.
 *
 * @module
 */

import { REPLY } from "../../protocol/reply.ts";
import type { CommandResult, Session } from "../session.ts";

/** RSET */
export function handleRset(arg: string, s: Session): CommandResult {
  if (arg.trim() !== "") return { reply: REPLY.noArgsSyntax };
  s.endTransaction();
  return { reply: REPLY.resetOk };
}
