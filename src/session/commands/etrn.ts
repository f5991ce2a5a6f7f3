/**
 * ETRN (RFC 1985): validates the domain argument (optionally with a
 * leading "@" or "#"; an address literal too, as Postfix takes it),
 * applies smtpd_etrn_restrictions, and asks the
 * {@linkcode FlushTrigger} to start delivery. As the manual's BUGS section
 * says, all deferred mail is flushed, not only the named domain's. Replies
 * 250 when started, 458 when the trigger cannot be delivered (or there is
 * no network peer), 459 when the node is not eligible, 501 on syntax. The
 * command table refuses ETRN before HELO/EHLO and inside a transaction
 * (503).
 *
 * @module
 */

import { isValidHostname } from "../../policy/hostname.ts";
import { isValidAddressLiteral } from "../../protocol/hostname.ts";
import { etrnQueueName, etrnUnavailable, REPLY } from "../../protocol/reply.ts";
import { answer, type CommandResult, type SessionContext } from "../context.ts";

/** ETRN [@|#]domain */
export async function handleEtrn(arg: string, ctx: SessionContext): Promise<CommandResult> {
  // Blanks are space and tab only (parseCommand took those around it).
  const raw = arg;
  if (raw === "" || /[ \t]/.test(raw)) return answer(REPLY.etrnSyntax);
  // As Postfix, the name after "#" must look like a domain or an address
  // literal too (501): the 459 then echoes at most a valid name, not up
  // to a whole command line.
  if (raw.startsWith("#")) {
    const name = raw.slice(1);
    return answer(
      isValidHostname(name) || isValidAddressLiteral(name)
        ? etrnQueueName(raw)
        : REPLY.badParameter,
    );
  }
  // As an extension to RFC 1985, an address literal too, as Postfix takes it.
  const domain = raw.replace(/^@/, "");
  if (!isValidHostname(domain) && !isValidAddressLiteral(domain)) {
    return answer(REPLY.badParameter);
  }
  if (ctx.client.local) return answer(REPLY.etrnNeedsNetwork);
  const refused = await ctx.checkPolicy("etrn", "ETRN", { etrnDomain: domain });
  if (refused) return answer(refused);
  const outcome = await ctx.services.flush.request(domain);
  if (outcome !== "started") {
    ctx.log.warning(`ETRN ${domain}: cannot trigger the queue manager (public/qmgr)`);
    return answer(etrnUnavailable(domain));
  }
  ctx.log.info(`ETRN ${domain} from ${ctx.client.name}[${ctx.client.address}]: queuing started`);
  return answer(REPLY.queuingStarted);
}
