/**
 * Which service extensions this session offers, from smtputf8_enable and
 * smtpd_discard_ehlo_keywords (or the client's smtpd_discard_ehlo_keyword_address_maps value): the same answer shapes the EHLO reply and
 * what MAIL and RCPT accept (a discarded extension's parameters are
 * refused as Postfix does: SMTPUTF8 as an unsupported option, the DSN
 * parameters with 501 5.7.1).
 *
 * @module
 */

import type { Config } from "../config/mod.ts";
import type { ParamOptions } from "../protocol/esmtp_params.ts";
import { ehloDiscards } from "./ehlo_keywords.ts";

/**
 * The MAIL/RCPT parameter options of a session.
 * @param config the configuration
 * @param discard the session's discarded keywords (default: smtpd_discard_ehlo_keywords)
 * @returns whether SMTPUTF8 and DSN are on, and whether 8-bit text that
 *   SMTPUTF8 does not cover is taken (smtputf8_enable off, as Postfix)
 */
export function offeredExtensions(
  config: Pick<Config, "smtputf8_enable" | "smtpd_discard_ehlo_keywords">,
  discard: ReadonlySet<string> = ehloDiscards(config.smtpd_discard_ehlo_keywords),
): Required<Omit<ParamOptions, "auth">> {
  return {
    smtputf8: config.smtputf8_enable && !discard.has("SMTPUTF8"),
    dsn: !discard.has("DSN"),
    eightBit: !config.smtputf8_enable,
  };
}
