/**
 * HELO and EHLO (RFC 5321 §4.1.1.1): record the client's name, reset any
 * transaction, and answer with our name (plus the EHLO keywords).
 *
 * @module
 */

import { REPLY, reply } from "../../protocol/reply.ts";
import { ehloKeywords } from "../ehlo_keywords.ts";
import type { CommandResult, Session } from "../session.ts";

/** HELO hostname */
export function handleHelo(arg: string, s: Session): CommandResult {
  const name = arg.trim();
  if (name === "" || /\s/.test(name)) return { reply: REPLY.heloSyntax };
  s.helo = name;
  s.protocol = "SMTP";
  s.endTransaction();
  return { reply: reply(250, undefined, s.config.myhostname) };
}

/** EHLO hostname */
export function handleEhlo(arg: string, s: Session): CommandResult {
  const name = arg.trim();
  if (name === "" || /\s/.test(name)) return { reply: REPLY.ehloSyntax };
  s.helo = name;
  s.protocol = "ESMTP";
  s.endTransaction();
  const lines = [
    s.config.myhostname,
    ...ehloKeywords({
      messageSizeLimit: s.config.message_size_limit,
      vrfy: !s.config.disable_vrfy_command,
      etrn: false,
    }),
  ];
  return { reply: reply(250, undefined, lines.join("\n")) };
}
