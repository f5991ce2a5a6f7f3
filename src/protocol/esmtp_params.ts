/**
 * MAIL FROM parameters: SIZE= (RFC 1870), BODY= (RFC 6152, formerly 1652),
 * SMTPUTF8 (RFC 6531 §3.4), RET= and ENVID= (RFC 3461 §4.3, §4.4); RCPT TO
 * parameters: NOTIFY= and ORCPT= (RFC 3461 §4.1, §4.2); AUTH= on MAIL
 * (RFC 4954 §5), whether or not AUTH is offered, as Postfix's smtpd (built
 * with SASL) takes it with smtpd_sasl_auth_enable off. Anything else is
 * refused with 555 (RFC 5321 §4.1.1.11). Replies as Postfix's smtpd: a DSN
 * parameter given twice or malformed is 501 5.5.4; with DSN discarded by
 * smtpd_discard_ehlo_keywords it is 501 5.7.1; SMTPUTF8 when it is off
 * (smtputf8_enable = no or discarded) is an unsupported option.
 *
 * @module
 */

import { REPLY, type Reply, reply, unsupportedOption } from "./reply.ts";
import { decodeUtf8AddrXtext, decodeXtext } from "./xtext.ts";

/** Parsed MAIL parameters. */
export interface MailParams {
  readonly size: number | undefined;
  readonly body: "7BIT" | "8BITMIME" | undefined;
  /** SMTPUTF8 was given (RFC 6531). */
  readonly smtputf8: boolean;
  /** RET= (RFC 3461 §4.3). */
  readonly ret: "FULL" | "HDRS" | undefined;
  /** ENVID=, xtext-decoded (RFC 3461 §4.4). */
  readonly envid: string | undefined;
  /** AUTH= (RFC 4954 §5), as sent (xtext, not decoded, as Postfix keeps it); not for "<>". */
  readonly auth?: string;
}

/** The extensions this session offers (what EHLO announced). */
export interface ParamOptions {
  /** SMTPUTF8 is on (smtputf8_enable, not discarded). @default {false} */
  readonly smtputf8?: boolean;
  /** DSN is on (not discarded). @default {false} */
  readonly dsn?: boolean;
  /**
   * smtputf8_enable is off: an ORCPT may hold bytes that are not UTF-8, kept
   * as they are (as Postfix). @default {false}
   */
  readonly eightBit?: boolean;
}

/**
 * RFC 3461 §4.4: an ENVID is at most 100 characters before its xtext
 * encoding (Postfix's smtp client sends "+" and "=" as +2B and +3D).
 */
const ENVID_MAX = 100;
/**
 * RFC 3461 §4.2: ORCPT's address is at most 500 characters before its
 * encoding (Postfix's smtp client sends each byte of a UTF-8 character as
 * +HH, three characters, and unitext each character as \x{HEX}).
 */
const ORCPT_MAX = 500;
/**
 * ORCPT's address type (RFC 3461 §4.2: an atom, as "rfc822" or RFC 6533's
 * "utf-8"), in the ASCII an ESMTP value allows: it goes into the queue
 * file as sent, so no control character or 8-bit byte may pass.
 */
const ADDR_TYPE = /^[A-Za-z0-9!#$%&'*+\/?^_`{|}~.-]+$/;

/**
 * Upper case for ESMTP keywords and values: only the ASCII letters change,
 * as Postfix's strcasecmp compares them. JavaScript's toUpperCase() maps
 * some non-ASCII letters to ASCII ones (U+017F long s to "S", U+0131 dotless
 * i to "I"), which would take "\u017fMTPUTF8" for SMTPUTF8 or "LA\u017fT" for LAST.
 * @param text a keyword or value as sent
 * @returns the text with a-z in upper case, nothing else changed
 */
export function asciiUpperCase(text: string): string {
  return text.replace(/[a-z]+/g, (w) => w.toUpperCase());
}

/**
 * Whether the parameter text holds SMTPUTF8 (looked at before the
 * address, whose syntax depends on it, as Postfix does).
 * @param text the parameter text
 * @param options what the session offers
 * @returns true when SMTPUTF8 is given and on
 */
export function declaresSmtputf8(text: string, options: ParamOptions = {}): boolean {
  return options.smtputf8 === true &&
    text.split(/[ \t]+/).some((item) => asciiUpperCase(item) === "SMTPUTF8");
}

/**
 * Parses the parameter text after the reverse-path.
 * @param text e.g. "SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=x"
 * @param options what the session offers
 * @returns the parameters, or the error reply
 */
export function parseMailParams(text: string, options: ParamOptions = {}): MailParams | Reply {
  let size: number | undefined;
  let body: MailParams["body"];
  let smtputf8 = false;
  let ret: MailParams["ret"];
  let envid: string | undefined;
  let auth: string | undefined;
  for (const item of text.split(/[ \t]+/)) {
    if (item === "") continue;
    const eq = item.indexOf("=");
    const name = asciiUpperCase(eq < 0 ? item : item.slice(0, eq));
    const value = eq < 0 ? undefined : item.slice(eq + 1);
    if (name === "SIZE" && value !== undefined) {
      // As Postfix: digits only (leading zeros allowed), else 501; a value
      // past its off_t (2^63 - 1) gets 552 here, a smaller one past
      // message_size_limit gets 552 at the size check. A bare SIZE is no
      // SIZE= parameter: an unsupported option (555), as Postfix answers.
      if (!/^\d+$/.test(value)) {
        return reply(501, "5.4", "Bad message size syntax");
      }
      const digits = value.replace(/^0+(?=\d)/, "");
      if (digits.length > 19 || (digits.length === 19 && digits > "9223372036854775807")) {
        return reply(552, "3.4", "Message size exceeds file system imposed limit");
      }
      size = Number(digits);
    } else if (
      name === "BODY" && value !== undefined &&
      (asciiUpperCase(value) === "7BIT" || asciiUpperCase(value) === "8BITMIME")
    ) {
      // Any other BODY (BINARYMIME, which we do not offer, or a bare BODY)
      // falls through to "555 5.5.4 Unsupported option", as in Postfix.
      body = asciiUpperCase(value) as "7BIT" | "8BITMIME";
    } else if (name === "SMTPUTF8" && value === undefined && options.smtputf8) {
      smtputf8 = true;
    } else if (name === "RET" && value !== undefined) {
      if (!options.dsn) return REPLY.dsnDisabled;
      const v = asciiUpperCase(value);
      if (ret !== undefined || (v !== "FULL" && v !== "HDRS")) return REPLY.badRet;
      ret = v;
    } else if (name === "ENVID" && value !== undefined) {
      if (!options.dsn) return REPLY.dsnDisabled;
      const decoded = decodeXtext(value);
      // RFC 3461 §4.4: printable US-ASCII; Postfix refuses any other byte too (all_isprint).
      if (
        envid !== undefined || decoded === undefined || !/^[\x20-\x7e]+$/.test(decoded) ||
        decoded.length > ENVID_MAX
      ) {
        return REPLY.badEnvid;
      }
      envid = decoded;
    } else if (name === "AUTH" && value !== undefined) {
      // As Postfix's smtpd_sasl_mail_opt: <> names no sender, and an AUTH=
      // is refused only after one that named a sender ("AUTH=<> AUTH=x" is x).
      if (auth !== undefined) return REPLY.authMultipleOption;
      if (value !== "<>") auth = printableAscii(value);
    } else {
      return unsupportedOption(item);
    }
  }
  return auth === undefined ? { size, body, smtputf8, ret, envid } : {
    size,
    body,
    smtputf8,
    ret,
    envid,
    auth,
  };
}

/** As Postfix's printable(): anything but printable ASCII becomes "?". */
function printableAscii(text: string): string {
  return text.replace(/[^\x21-\x7e]/g, "?");
}

/** DSN NOTIFY bits, as Postfix's dsn_mask.h (they go into the queue file). */
export const DSN_NOTIFY = { NEVER: 1, SUCCESS: 2, FAILURE: 4, DELAY: 8 } as const;

/** DSN RET values, as Postfix's dsn_mask.h. */
export const DSN_RET = { FULL: 1, HDRS: 2 } as const;

/** Parsed RCPT parameters. */
export interface RcptParams {
  /** NOTIFY= as Postfix's bit mask (DSN_NOTIFY), when given. */
  readonly notify: number | undefined;
  /** ORCPT=, when given: the address type as sent and the decoded address. */
  readonly orcpt: { readonly type: string; readonly address: string } | undefined;
}

/**
 * Parses RCPT TO parameters.
 * @param text the parameter text, e.g. "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb@c"
 * @param options what the session offers
 * @returns the parameters, or the error reply
 */
export function parseRcptParams(text: string, options: ParamOptions = {}): RcptParams | Reply {
  let notify: number | undefined;
  let orcpt: RcptParams["orcpt"];
  for (const item of text.split(/[ \t]+/)) {
    if (item === "") continue;
    const eq = item.indexOf("=");
    const name = asciiUpperCase(eq < 0 ? item : item.slice(0, eq));
    const value = item.slice(eq + 1);
    if (name === "NOTIFY" && eq >= 0) {
      if (!options.dsn) return REPLY.dsnDisabled;
      const mask = notifyMask(value);
      if (notify !== undefined || mask === undefined) return REPLY.badNotify;
      notify = mask;
    } else if (name === "ORCPT" && eq >= 0) {
      if (!options.dsn) return REPLY.dsnDisabled;
      const semi = value.indexOf(";");
      const type = value.slice(0, semi);
      const coded = value.slice(semi + 1);
      const address = semi <= 0 || !ADDR_TYPE.test(type)
        ? undefined
        : type.toLowerCase() === "utf-8"
        ? decodeUtf8AddrXtext(coded)
        : decodeXtext(coded, options.eightBit === true);
      // An empty address is xtext too (RFC 3461 §4.2: *xchar); Postfix takes it.
      // The limit counts characters (code points; a byte that is not UTF-8 is one).
      if (
        orcpt !== undefined || address === undefined ||
        (address.length > ORCPT_MAX && [...address].length > ORCPT_MAX)
      ) {
        return REPLY.badOrcpt;
      }
      orcpt = { type, address };
    } else {
      return unsupportedOption(item);
    }
  }
  return { notify, orcpt };
}

/**
 * NOTIFY's value as a mask: NEVER alone, or any of SUCCESS, FAILURE,
 * DELAY (RFC 3461 §4.1), names in any case. Empty items are skipped, as
 * Postfix's name_mask_opt skips them ("FAILURE,,DELAY", "SUCCESS,"), but
 * one name at least is needed.
 * @param value e.g. "SUCCESS,FAILURE"
 * @returns the mask, or undefined when malformed
 */
function notifyMask(value: string): number | undefined {
  let mask = 0;
  for (const word of value.split(",")) {
    if (word === "") continue;
    const name = asciiUpperCase(word);
    if (!Object.hasOwn(DSN_NOTIFY, name)) return undefined;
    mask |= DSN_NOTIFY[name as keyof typeof DSN_NOTIFY];
  }
  if (mask === 0) return undefined;
  return mask === DSN_NOTIFY.NEVER || (mask & DSN_NOTIFY.NEVER) === 0 ? mask : undefined;
}
