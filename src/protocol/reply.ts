/**
 * SMTP replies as values (RFC 5321 §4.2, enhanced status codes RFC 3463 /
 * RFC 2034). Every reply the server sends comes from {@linkcode REPLY} or
 * from {@linkcode reply}; the enhanced code's class digit is derived from
 * the basic code, so the two can never disagree.
 *
 * @module
 */

import { sanitizeLogText } from "../log/sanitize.ts";

/** A reply code of the SMTP protocol. */
export type ReplyCode =
  | 211
  | 214
  | 220
  | 221
  | 235
  | 250
  | 251
  | 252
  | 334
  | 354
  | 421
  | 450
  | 451
  | 452
  | 454
  | 458
  | 459
  | 500
  | 501
  | 502
  | 503
  | 504
  | 521
  | 530
  | 535
  | 550
  | 551
  | 552
  | 553
  | 554
  | 555
  | 556;

/** One SMTP reply: code, enhanced subject.detail, and text (may hold "\n" for multi-line). */
export interface Reply {
  readonly code: ReplyCode;
  /** Enhanced status subject.detail, e.g. "1.1"; undefined for replies that carry none (220, 221 text). */
  readonly detail: `${number}.${number}` | undefined;
  readonly text: string;
}

/**
 * Builds a reply value.
 * @param code the basic reply code
 * @param detail the enhanced status subject.detail, or undefined
 * @param text the human-readable text
 * @returns the reply
 */
export function reply(
  code: ReplyCode,
  detail: `${number}.${number}` | undefined,
  text: string,
): Reply {
  return { code, detail, text };
}

/**
 * The enhanced status code of a reply, e.g. "5.1.1", with the class digit from the basic code.
 * @param r the reply
 * @returns the enhanced status, or "" when the reply has none
 */
export function enhancedStatus(r: Reply): string {
  return r.detail === undefined ? "" : `${Math.floor(r.code / 100)}.${r.detail}`;
}

/**
 * True for 4xx and 5xx replies.
 * @param r the reply
 * @returns whether the reply is an error
 */
export function isError(r: Reply): boolean {
  return r.code >= 400;
}

/**
 * Formats a reply for the wire: one or more CRLF-terminated lines, "-" on all but the last.
 * @param r the reply
 * @param enhanced whether to print the enhanced status code
 * @returns the wire text
 */
export function formatReply(r: Reply, enhanced = true): string {
  if (enhanced) {
    const text = wireText.get(r);
    if (text !== undefined) return text;
  }
  return format(r, enhanced);
}

/**
 * The wire text of the replies made once and sent many times (the catalog
 * below, the 250 to HELO): a client that pipelines NOOP or RSET got a new
 * string per reply, built with a regular expression and a split, and
 * garbage for the collector. Weak: HELO's reply goes when myhostname
 * changes (a reload).
 */
const wireText = new WeakMap<Reply, string>();

/**
 * Formats a reply once and keeps its text for {@linkcode formatReply}.
 * @param r a reply that will be sent many times
 * @returns the reply
 */
function formattedOnce(r: Reply): Reply {
  wireText.set(r, format(r, true));
  return r;
}

function format(r: Reply, enhanced: boolean): string {
  const status = enhanced ? enhancedStatus(r) : "";
  // No control characters reach the wire (table texts are the operator's, but still).
  // deno-lint-ignore no-control-regex
  const lines = r.text.replace(/[\x00-\x09\x0b-\x1f\x7f]/g, " ").split("\n");
  let out = "";
  for (let i = 0; i < lines.length; i++) {
    const sep = i === lines.length - 1 ? " " : "-";
    out += status ? `${r.code}${sep}${status} ${lines[i]}\r\n` : `${r.code}${sep}${lines[i]}\r\n`;
  }
  return out;
}

/**
 * The one-line form used in log records: "554 5.7.1 text".
 * @param r the reply
 * @returns the reply on one line
 */
export function replyForLog(r: Reply): string {
  const status = enhancedStatus(r);
  return `${r.code} ${status ? status + " " : ""}${r.text.replaceAll("\n", " ")}`;
}

/** The catalog of fixed replies. */
export const REPLY = {
  senderOk: reply(250, "1.0", "Ok"),
  recipientOk: reply(250, "1.5", "Ok"),
  resetOk: reply(250, "0.0", "Ok"),
  noopOk: reply(250, "0.0", "Ok"),
  // Postfix sends no enhanced code with any ETRN reply; RFC 2034 asks for one.
  queuingStarted: reply(250, "0.0", "Queuing started"),
  bye: reply(221, "0.0", "Bye"),
  readyForTls: reply(220, "0.0", "Ready to start TLS"),
  help: reply(214, "0.0", "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY ETRN HELP"),
  startData: reply(354, undefined, "End data with <CR><LF>.<CR><LF>"),
  badSyntax: reply(500, "5.2", "Error: bad syntax"),
  badUtf8: reply(500, "5.2", "Error: bad UTF-8 syntax"),
  lineTooLong: reply(500, "5.0", "Error: line too long"),
  unknownCommand: reply(500, "5.2", "Error: command not recognized"),
  // smtpd_forbidden_commands or a header line as a command: Postfix's words, then close.
  nonSmtpCommand: reply(221, "7.0", "Error: I can break rules, too. Goodbye."),
  // A known command that is off (STARTTLS without TLS or discarded): Postfix's text.
  notImplemented: reply(502, "5.1", "Error: command not implemented"),
  heloSyntax: reply(501, "5.4", "Syntax: HELO hostname"),
  ehloSyntax: reply(501, "5.4", "Syntax: EHLO hostname"),
  mailSyntax: reply(501, "5.4", "Syntax: MAIL FROM:<address>"),
  rcptSyntax: reply(501, "5.4", "Syntax: RCPT TO:<address>"),
  vrfySyntax: reply(501, "5.4", "Syntax: VRFY address"),
  // With smtputf8_enable, as Postfix's vrfy_cmd says it.
  vrfySyntaxUtf8: reply(501, "5.4", "Syntax: VRFY address [SMTPUTF8]"),
  dataSyntax: reply(501, "5.4", "Syntax: DATA"),
  etrnSyntax: reply(501, "5.4", "Syntax: ETRN domain"),
  starttlsSyntax: reply(501, "5.4", "Syntax: STARTTLS"),
  rsetSyntax: reply(501, "5.4", "Syntax: RSET"),
  badParameter: reply(501, "5.4", "Error: invalid parameter syntax"),
  badSender: reply(501, "1.7", "Bad sender address syntax"),
  badRecipient: reply(501, "1.3", "Bad recipient address syntax"),
  sendHeloFirst: reply(503, "5.1", "Error: send HELO/EHLO first"),
  nestedMail: reply(503, "5.1", "Error: nested MAIL command"),
  needMail: reply(503, "5.1", "Error: need MAIL command"),
  mailInProgress: reply(503, "5.1", "Error: MAIL transaction in progress"),
  starttlsFirst: reply(530, "7.0", "Must issue a STARTTLS command first"),
  noValidRecipients: reply(554, "5.1", "Error: no valid recipients"),
  tlsActive: reply(554, "5.1", "Error: TLS already active"),
  earlyTalker: reply(
    554,
    "5.1",
    "Error: SMTP protocol synchronization: you talked before the greeting",
  ),
  vrfyDisabled: reply(502, "5.1", "VRFY command is disabled"),
  tooManyRecipients: reply(452, "5.3", "Error: too many recipients"),
  messageTooBig: reply(552, "3.4", "Message size exceeds fixed limit"),
  /** A message past message_size_limit, at its end (Postfix's cleanup status text). */
  messageFileTooBig: reply(552, "3.4", "Error: message file too big"),
  insufficientStorage: reply(452, "3.1", "Insufficient system storage"),
  tooManyHops: reply(554, "4.6", "Too many hops"),
  queueWriteError: reply(451, "3.0", "Error: queue file write error"),
  // What the configuration asks cannot be done (Postfix's words for it).
  configError: reply(451, "3.5", "Server configuration error"),
  localError: reply(451, "3.0", "Error: internal error, try again later"),
  // CHUNKING (RFC 3030; texts as Postfix's bdat_cmd).
  bdatSyntax: reply(521, "5.4", "Syntax: BDAT count [LAST]"),
  // CHUNKING discarded: 521 and hang up, since chunk content would follow.
  bdatNotImplemented: reply(521, "5.1", "Error: command not implemented"),
  bdatNull: reply(551, "7.1", "Null BDAT request"),
  needRcpt: reply(503, "5.1", "Error: need RCPT command"),
  mailAfterBdat: reply(503, "5.1", "Error: MAIL after BDAT"),
  rcptAfterBdat: reply(503, "5.1", "Error: RCPT after BDAT"),
  dataAfterBdat: reply(503, "5.1", "Error: DATA after BDAT"),
  chunkTooBig: reply(552, "3.4", "Chunk exceeds message size limit"),
  etrnNeedsNetwork: reply(458, "7.1", "Unable to queue messages: ETRN needs a network client"),
  // DSN (RFC 3461) parameters of MAIL and RCPT; texts as Postfix's smtpd.
  dsnDisabled: reply(501, "7.1", "DSN support is disabled"),
  badRet: reply(501, "5.4", "Bad RET parameter syntax"),
  badEnvid: reply(501, "5.4", "Bad ENVID parameter syntax"),
  badNotify: reply(501, "5.4", "Error: Bad NOTIFY parameter syntax"),
  badOrcpt: reply(501, "5.4", "Error: Bad ORCPT parameter syntax"),
  // SMTP AUTH (RFC 4954 §4 and §6; texts as Postfix's smtpd).
  authOk: reply(235, "7.0", "Authentication successful"),
  authAborted: reply(501, "7.0", "Authentication aborted"),
  authSyntax: reply(501, "5.4", "Syntax: AUTH mechanism"),
  authBadBase64: reply(501, "5.2", "Error: invalid base64 data in authentication response"),
  authNotEnabled: reply(503, "5.1", "Error: authentication not enabled"),
  authAlready: reply(503, "5.1", "Error: already authenticated"),
  authInTransaction: reply(503, "5.1", "Error: MAIL transaction in progress"),
  authUnsupported: reply(504, "5.4", "Unsupported authentication mechanism"),
  authResponseTooLong: reply(500, "5.6", "SASL response limit exceeded"),
  authMultipleOption: reply(503, "5.4", "Error: multiple AUTH= options"),
} as const satisfies Record<string, Reply>;

for (const r of Object.values(REPLY)) formattedOnce(r);

/**
 * 555 for an unsupported MAIL/RCPT parameter (RFC 5321 §4.1.1.11). The
 * parameter is echoed as the log shows it: what parseCommand lets through
 * may still hold a C1 control (U+009B is a terminal's CSI), a line
 * separator or a bidi control, which go back as "?" (Postfix echoes them raw).
 * A byte that is not UTF-8 (smtputf8_enable off: a `rawByteChar`) goes back
 * as it came, as Postfix's smtpd echoes it, but one of 0x80-0x9f is "?"
 * too: in an 8-bit character set it is a C1 control (0x9b is CSI).
 * @param name the parameter as the client sent it
 * @returns the reply
 */
export function unsupportedOption(name: string): Reply {
  return reply(
    555,
    "5.4",
    `Unsupported option: ${name.replace(NOT_RAW_PRINTABLE, sanitizeLogText)}`,
  );
}

/** The text between the raw bytes 0xa0-0xff (lone U+DCA0-U+DCFF) of a parameter. */
const NOT_RAW_PRINTABLE = /[^\udca0-\udcff]+/gu;

/**
 * 334 with a server challenge (base64, possibly empty) during AUTH (RFC 4954 §4).
 * @param challenge the base64 challenge
 * @returns the reply
 */
export function authChallenge(challenge: string): Reply {
  return reply(334, undefined, challenge);
}

/**
 * 535 for credentials the authentication server refused (RFC 4954 §6).
 * @param reason the reason, printable
 * @returns the reply
 */
export function authFailed(reason: string): Reply {
  return reply(535, "7.8", `Error: authentication failed: ${reason}`);
}

/**
 * 454 when the authentication server could not decide (RFC 4954 §6).
 * @param reason the reason, printable
 * @returns the reply
 */
export function authTemporaryFailure(reason: string): Reply {
  return reply(454, "7.0", `Temporary authentication failure: ${reason}`);
}

/**
 * 450 over smtpd_client_auth_rate_limit (Postfix's text).
 * @param address the client address
 * @returns the reply
 */
export function tooManyAuths(address: string): Reply {
  return reply(450, "7.1", `Error: too many AUTH commands from ${address}`);
}

/**
 * 421 that closes the session, with the host name as RFC 5321 §3.8 asks.
 * @param host our host name
 * @param detail the enhanced subject.detail
 * @param text the reason
 * @returns the reply
 */
export function closing(host: string, detail: `${number}.${number}`, text: string): Reply {
  return reply(421, detail, `${host} ${text}`);
}

/**
 * 421 after smtpd_timeout passed with no command.
 * @param host our host name
 * @returns the reply
 */
export function timeoutExceeded(host: string): Reply {
  return closing(host, "4.2", "Error: timeout exceeded");
}

/**
 * 421 past smtpd_client_connection_count_limit or _rate_limit (Postfix's words).
 * @param host our host name
 * @param address the client address
 * @returns the reply
 */
export function tooManyConnections(host: string, address: string): Reply {
  return closing(host, "7.0", `Error: too many connections from ${address}`);
}

/**
 * 450 past smtpd_client_message_rate_limit.
 * @param address the client address
 * @returns the reply
 */
export function tooMuchMail(address: string): Reply {
  return reply(450, "7.1", `Error: too much mail from ${address}`);
}

/**
 * 450 past smtpd_client_recipient_rate_limit.
 * @param address the client address
 * @returns the reply
 */
export function tooManyRecipientsFrom(address: string): Reply {
  return reply(450, "7.1", `Error: too many recipients from ${address}`);
}

/**
 * 454 past smtpd_client_new_tls_session_rate_limit (STARTTLS refused).
 * @param address the client as Postfix's reply names it: name[address]
 * @returns the reply
 */
export function tooManyTlsSessions(address: string): Reply {
  return reply(454, "7.0", `Error: too many new TLS sessions from ${address}`);
}

/**
 * A message refused for a bare LF (smtpd_forbid_bare_newline = reject), in
 * Postfix's words: the code is smtpd_forbid_bare_newline_reject_code
 * (500-599), the text names our host.
 * @param code the reply code
 * @param host our host name
 * @returns the reply
 */
export function bareLfReceived(code: number, host: string): Reply {
  return reply(code as ReplyCode, "5.2", `${host} Error: bare <LF> received`);
}

/**
 * 421 at smtpd_hard_error_limit.
 * @param host our host name
 * @returns the reply
 */
export function tooManyErrors(host: string): Reply {
  return closing(host, "7.0", "Error: too many errors");
}

/**
 * The 220 greeting (smtpd_banner, already expanded; no enhanced code).
 * @param banner the banner text
 * @returns the reply
 */
export function greeting(banner: string): Reply {
  return reply(220, undefined, banner);
}

/** The last host name {@linkcode heloOk} answered HELO with, and that reply. */
let heloHost: string | undefined;
let heloReply: Reply = reply(250, undefined, "");

/**
 * 250 to HELO, or to EHLO with the keyword lines after our name.
 * @param host our host name
 * @param keywords the EHLO keywords (none for HELO)
 * @returns the reply
 */
export function heloOk(host: string, keywords: readonly string[] = []): Reply {
  if (keywords.length > 0) return reply(250, undefined, [host, ...keywords].join("\n"));
  if (host !== heloHost) {
    heloHost = host;
    heloReply = formattedOnce(reply(250, undefined, host));
  }
  return heloReply;
}

/**
 * 250 once the queue file is complete and on stable storage.
 * @param id the queue ID
 * @returns the reply
 */
export function queuedAs(id: string): Reply {
  return reply(250, "0.0", `Ok: queued as ${id}`);
}

/**
 * 250 to a BDAT chunk that is not the last.
 * @param size the chunk's size
 * @returns the reply
 */
export function chunkOk(size: number): Reply {
  return reply(250, "0.0", `Ok: ${size} bytes`);
}

/**
 * 250 to BDAT LAST once the queue file is complete and on stable storage.
 * @param size the message's octets, all chunks together
 * @param id the queue ID
 * @returns the reply
 */
export function chunksQueuedAs(size: number, id: string): Reply {
  return reply(250, "0.0", `Ok: ${size} bytes queued as ${id}`);
}

/**
 * 551 to a BDAT chunk after an earlier chunk of the message was refused.
 * @param size the chunk's size
 * @returns the reply
 */
export function chunkDiscarded(size: number | bigint): Reply {
  return reply(551, "0.0", `Discarded ${size} bytes after earlier error`);
}

/**
 * 252 to VRFY: cannot verify the address, will accept and try (RFC 5321 §3.5.3).
 * @param address the address in internal form
 * @returns the reply
 */
export function cannotVerify(address: string): Reply {
  return reply(252, "0.0", address);
}

/**
 * 459 to "ETRN #queue": queue names are not supported.
 * @param arg the argument as the client gave it
 * @returns the reply
 */
export function etrnQueueName(arg: string): Reply {
  return reply(459, "7.1", `<${arg}>: queue names are not supported; give a domain`);
}

/**
 * 458 when the queue manager cannot be triggered for ETRN.
 * @param domain the domain asked for
 * @returns the reply
 */
export function etrnUnavailable(domain: string): Reply {
  return reply(458, "0.0", `Unable to queue messages for node ${domain}`);
}
