/**
 * The SMTP session.
 *
 * @module
 */

export { runSession } from "./session.ts";
export type { CommandResult, SessionContext, SessionDeps } from "./session.ts";
export { COMMANDS } from "./command_table.ts";
