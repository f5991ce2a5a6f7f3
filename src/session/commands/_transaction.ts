/**
 * The transaction of a command that the command table lets run only
 * inside one (RCPT, DATA).
 *
 * @module
 */

import type { SessionContext } from "../context.ts";
import type { Transaction } from "../transaction.ts";

/**
 * The session's transaction; its absence is a bug in the command table.
 * @param ctx the session
 * @param verb the command, for the error
 * @returns the transaction
 */
export function inTransaction(ctx: SessionContext, verb: string): Transaction {
  const tx = ctx.tx;
  if (!tx) throw new Error(`${verb} handler ran outside a mail transaction`);
  return tx;
}
