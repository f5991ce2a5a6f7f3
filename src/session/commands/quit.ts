/**
 * QUIT (RFC 5321 §4.1.1.10): 221 and close.
 *
 * @module
 */

import { REPLY } from "../../protocol/reply.ts";
import type { CommandResult } from "../context.ts";

/** QUIT */
export function handleQuit(): CommandResult {
  return { kind: "close", reply: REPLY.bye };
}
