/**
 * HELO and EHLO (RFC 5321 §4.1.1.1): record the client's name, reset any
 * transaction, and answer with our name (plus the EHLO keywords). As
 * Postfix's printable(), characters that are unsafe to show (C1 and bidi
 * controls, invalid UTF-16) become "?" in the name kept: it goes into
 * Received:, the queue file's helo_name and the restrictions.
 *
 * @module
 */

import { sanitizeLogText } from "../../log/mod.ts";
import { REPLY, reply } from "../../protocol/reply.ts";
import { ehloKeywords } from "../ehlo_keywords.ts";
import type { CommandResult, Session } from "../session.ts";

/**
 * Runs smtpd_helo_restrictions (when not delayed) with the new name.
 * @param s the session
 * @param name the HELO/EHLO argument
 * @param verb HELO or EHLO
 * @returns the refusal, or undefined
 */
async function checkHelo(
  s: Session,
  name: string,
  verb: string,
): Promise<CommandResult | undefined> {
  name = sanitizeLogText(name);
  const previous = s.helo;
  s.helo = name;
  const refused = await s.checkPolicy("helo", verb, {});
  if (!refused) return undefined;
  s.helo = previous;
  return { reply: refused };
}

/** HELO hostname */
export async function handleHelo(arg: string, s: Session): Promise<CommandResult> {
  const name = arg.trim();
  if (name === "" || /\s/.test(name)) return { reply: REPLY.heloSyntax };
  const refused = await checkHelo(s, name, "HELO");
  if (refused) return refused;
  s.protocol = s.transport.tls ? "SMTPS" : "SMTP";
  s.endTransaction();
  return { reply: reply(250, undefined, s.config.myhostname) };
}

/** EHLO hostname */
export async function handleEhlo(arg: string, s: Session): Promise<CommandResult> {
  const name = arg.trim();
  if (name === "" || /\s/.test(name)) return { reply: REPLY.ehloSyntax };
  const refused = await checkHelo(s, name, "EHLO");
  if (refused) return refused;
  s.protocol = s.transport.tls ? "ESMTPS" : "ESMTP";
  s.endTransaction();
  const lines = [
    s.config.myhostname,
    ...ehloKeywords({
      messageSizeLimit: s.config.message_size_limit,
      vrfy: !s.config.disable_vrfy_command,
      etrn: true,
      starttls: s.transport.startTls !== undefined && s.transport.tls === undefined,
    }),
  ];
  return { reply: reply(250, undefined, lines.join("\n")) };
}
