/**
 * ETRN (RFC 1985): validates the domain argument (optionally with a
 * leading "@" or "#"), applies smtpd_etrn_restrictions, and asks the
 * {@linkcode FlushTrigger} to start delivery. As the manual's BUGS section
 * says, all deferred mail is flushed, not only the named domain's. Replies
 * 250 when started, 458 when the trigger cannot be delivered (or there is
 * no network peer), 459 when the node is not eligible, 501 on syntax, 503
 * inside a mail transaction.
 *
 * @module
 */

import { isValidHostname } from "../../policy/hostname.ts";
import { REPLY, reply } from "../../protocol/reply.ts";
import type { CommandResult, Session } from "../session.ts";

/** ETRN [@|#]domain */
export async function handleEtrn(arg: string, s: Session): Promise<CommandResult> {
  if (s.helo === undefined) return { reply: REPLY.sendHeloFirst };
  if (s.phase.kind === "inMail") {
    return { reply: reply(503, "5.1", "Error: MAIL transaction in progress") };
  }
  const raw = arg.trim();
  if (raw === "" || /\s/.test(raw)) return { reply: reply(501, "5.4", "Syntax: ETRN domain") };
  if (raw.startsWith("#")) {
    return { reply: reply(459, "7.1", `<${raw}>: queue names are not supported; give a domain`) };
  }
  const domain = raw.replace(/^@/, "");
  if (!isValidHostname(domain)) {
    return { reply: reply(501, "5.4", "Error: invalid parameter syntax") };
  }
  if (s.local) {
    return { reply: reply(458, "7.1", "Unable to queue messages: ETRN needs a network client") };
  }
  const refused = await s.checkPolicy("etrn", "ETRN", { etrnDomain: domain });
  if (refused) return { reply: refused };
  const outcome = await s.deps.flush.request(domain);
  if (outcome !== "started") {
    s.deps.log.warning(`ETRN ${domain}: cannot trigger the queue manager (public/qmgr)`);
    return { reply: reply(458, "0.0", `Unable to queue messages for node ${domain}`) };
  }
  s.deps.log.info(`ETRN ${domain} from ${s.peer.name}[${s.peer.address}]: queuing started`);
  return { reply: reply(250, undefined, "Queuing started") };
}
