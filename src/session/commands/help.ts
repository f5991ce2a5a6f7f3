/**
 * HELP (RFC 5321 §4.1.1.8): lists the commands.
 *
 * @module
 */

import { REPLY } from "../../protocol/reply.ts";
import type { CommandResult } from "../session.ts";

/** HELP [topic] */
export function handleHelp(): CommandResult {
  return { reply: REPLY.help };
}
