/**
 * Our Received: header, as Postfix's smtpd writes it: the client's HELO
 * name, name and address (`[IPv6:...]` for IPv6); TLS protocol and cipher; the AUTH login with
 * smtpd_sasl_authenticated_header; "with" SMTP or ESMTP, ESMTP with "S"
 * after STARTTLS and "A" after AUTH (RFC 3848, for ESMTP only); the queue ID; "for <rcpt>" with one recipient; the date.
 * A local submission gets "by host (mail_name, from userid local)".
 *
 * @module
 */

import type { CleanupConfig, MessageEnvelope } from "./cleanup.ts";
import { commentSafe } from "./headers.ts";
import { quoteAddress } from "../log/quote_address.ts";

/**
 * The Received: header, its lines joined by "\n" (continuations start with a tab).
 * @param cfg our host name, mail name, smtpd_sasl_authenticated_header and
 *   smtpd_tls_received_header
 * @param env the envelope
 * @param id the queue ID
 * @param when the arrival date, formatted
 * @returns the header text
 */
export function receivedHeader(
  cfg: Pick<
    CleanupConfig,
    "myhostname" | "mail_name" | "smtpd_sasl_authenticated_header" | "smtpd_tls_received_header"
  >,
  env: MessageEnvelope,
  id: string,
  when: string,
): string {
  const o = env.origin;
  const forPart = env.recipients.length === 1
    ? `\n\tfor <${quoteAddress(env.recipients[0] as string)}>; ${when}`
    : `; ${when}`;
  if (o.local) {
    return `Received: by ${cfg.myhostname} (${cfg.mail_name}, from userid local)\n\tid ${id}${forPart}`;
  }
  const tlsPart = o.tls && cfg.smtpd_tls_received_header
    ? `(using ${o.tls.protocol} with cipher ${o.tls.cipher} (${o.tls.bits}/${o.tls.bits} bits))\n\t(No client certificate requested)\n\t`
    : "";
  const authPart = o.sasl && cfg.smtpd_sasl_authenticated_header
    ? `(Authenticated sender: ${commentSafe(o.sasl.username)})\n\t`
    : "";
  // The address as an RFC 5321 address literal, as Postfix writes its
  // rfc_addr there: an IPv6 address with the "IPv6:" tag.
  const literal = o.clientAddress.includes(":") ? `IPv6:${o.clientAddress}` : o.clientAddress;
  const from = `from ${o.helo ?? o.clientName} (${o.clientName} [${literal}])\n\t`;
  // RFC 3848: ESMTPS / ESMTPA / ESMTPSA for an encrypted or authenticated
  // ESMTP session (a HELO session stays "SMTP", as in Postfix); RFC 6531:
  // UTF8SMTP, with S for TLS and A for AUTH, for an SMTPUTF8 transaction.
  const esmtp = o.protocol === "ESMTP";
  const suffix = `${o.tls && esmtp ? "S" : ""}${o.sasl && esmtp ? "A" : ""}`;
  const protocol = env.smtputf8 ? `UTF8SMTP${suffix}` : `${o.protocol}${suffix}`;
  return `Received: ${from}${tlsPart}${authPart}by ${cfg.myhostname} (${cfg.mail_name}) with ${protocol} id ${id}${forPart}`;
}
