/**
 * Logging: Postfix-shaped lines to stderr.
 *
 * @module
 */

export { Logger, SEVERITY, StderrSink, StderrTurn } from "./logger.ts";
export { FACILITY, parseSyslogServer, syslogSink } from "./syslog_sink.ts";
export type { SyslogTarget } from "./syslog_sink.ts";
export type { LineSink } from "./logger.ts";
export { type CommandCount, MailLog } from "./mail_log.ts";
export type { LogPeer } from "./mail_log.ts";
export { asciiLogText, sanitizeLogText } from "./sanitize.ts";
export { quoteAddress } from "./quote_address.ts";
