/**
 * MAIL FROM parameters: SIZE= (RFC 1870), BODY= (RFC 6152, formerly
 * 1652) and, when AUTH is offered, AUTH= (RFC 4954 §5). Anything else is
 * refused with 555 (RFC 5321 §4.1.1.11).
 *
 * @module
 */

import { REPLY, type Reply, reply, unsupportedOption } from "./reply.ts";

/** Parsed MAIL parameters. */
export interface MailParams {
  readonly size: number | undefined;
  readonly body: "7BIT" | "8BITMIME" | undefined;
  /** AUTH= (RFC 4954 §5), as sent (xtext, not decoded, as Postfix keeps it); not for "<>". */
  readonly auth?: string;
}

/** What the session allows among MAIL parameters. */
export interface MailParamOptions {
  /** AUTH= is understood (AUTH is offered); otherwise it is an unsupported option. */
  readonly auth?: boolean;
}

/**
 * Parses the parameter text after the reverse-path.
 * @param text e.g. "SIZE=1000 BODY=8BITMIME"
 * @returns the parameters, or the error reply
 */
export function parseMailParams(text: string, options: MailParamOptions = {}): MailParams | Reply {
  let size: number | undefined;
  let body: MailParams["body"];
  let auth: string | undefined;
  let authSeen = false;
  for (const item of text.split(/[ \t]+/)) {
    if (item === "") continue;
    const eq = item.indexOf("=");
    const name = (eq < 0 ? item : item.slice(0, eq)).toUpperCase();
    const value = eq < 0 ? undefined : item.slice(eq + 1);
    if (name === "SIZE") {
      if (value === undefined || !/^\d{1,15}$/.test(value)) {
        return reply(501, "5.4", "Bad message size syntax");
      }
      size = Number(value);
    } else if (name === "BODY") {
      const v = value?.toUpperCase();
      if (v !== "7BIT" && v !== "8BITMIME") {
        return reply(501, "5.4", "Unsupported BODY parameter value");
      }
      body = v;
    } else if (name === "AUTH" && options.auth && value !== undefined) {
      // As Postfix's smtpd_sasl_mail_opt: a second AUTH= is refused, <> is no sender.
      if (authSeen) return REPLY.authMultipleOption;
      authSeen = true;
      if (value !== "<>") auth = printableAscii(value);
    } else {
      return unsupportedOption(item);
    }
  }
  return auth === undefined ? { size, body } : { size, body, auth };
}

/** As Postfix's printable(): anything but printable ASCII becomes "?". */
function printableAscii(text: string): string {
  return text.replace(/[^\x21-\x7e]/g, "?");
}

/**
 * Parses RCPT TO parameters: none are supported.
 * @param text the parameter text
 * @returns undefined when empty, else the 555 reply
 */
export function checkRcptParams(text: string): Reply | undefined {
  const first = text.split(/[ \t]+/).find((s) => s !== "");
  return first === undefined ? undefined : unsupportedOption(first);
}
