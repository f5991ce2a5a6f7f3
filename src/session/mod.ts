/**
 * The SMTP session.
 *
 * @module
 */

export { runSession, Session } from "./session.ts";
export type { CommandResult, SessionDeps } from "./session.ts";
export { COMMANDS } from "./command_table.ts";
