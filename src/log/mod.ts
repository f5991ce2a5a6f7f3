/**
 * Logging: Postfix-shaped lines to stderr.
 *
 * @module
 */

export { Logger, stderrSink } from "./logger.ts";
export type { LineSink } from "./logger.ts";
export { MailLog } from "./mail_log.ts";
export type { LogPeer } from "./mail_log.ts";
