/**
 * NOOP (RFC 5321 §4.1.1.9); an argument is allowed and ignored.
 *
 * @module
 */

import { REPLY } from "../../protocol/reply.ts";
import { answer, type CommandResult } from "../context.ts";

/** Its answer, made once (a client may pipeline thousands). */
const OK = answer(REPLY.noopOk);

/** NOOP [string] */
export function handleNoop(): CommandResult {
  return OK;
}
