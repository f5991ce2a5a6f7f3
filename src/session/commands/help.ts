/**
 * HELP (RFC 5321 §4.1.1.8): lists the commands.
 *
 * @module
 */

import { REPLY } from "../../protocol/reply.ts";
import { answer, type CommandResult } from "../context.ts";

/** HELP [topic] */
export function handleHelp(): CommandResult {
  return answer(REPLY.help);
}
