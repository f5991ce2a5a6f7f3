/**
 * Domain-based DNS blocklists (RHSBL), as Postfix's reject_rbl_domain:
 * `reject_rhsbl_client`, `reject_rhsbl_reverse_client`, `reject_rhsbl_helo`,
 * `reject_rhsbl_sender` and `reject_rhsbl_recipient`, each `zone[=filter]`.
 * The domain (the client's verified or unverified name, the HELO name, or
 * the domain of the sender or recipient address) is looked up as
 * `domain.zone` (A); the TXT records give the reason. The reply is that of
 * rbl_reply.ts: by default `554 5.7.1 Service unavailable; Sender address
 * [user@domain] blocked using zone; reason` (code maps_rbl_reject_code).
 *
 * Skipped, as in Postfix: an unknown client name, the null sender, an
 * address literal, a name whose last label is all digits (some lists refuse
 * such queries) and a name that is not a valid host name. Not as in
 * Postfix: a UTF-8 domain (an SMTPUTF8 address) is looked up by its
 * A-labels, where Postfix 3.7's dns_lookup refuses any name that is not an
 * ASCII host name, so that `x@spam\u200b.example` or `x@ｓｐａｍ.example`
 * (which IDNA maps to spam.example, and both address parsers accept) passes
 * its list; here it is looked up as spam.example. A list that does
 * not answer gives the benefit of the doubt (logged), and the answers that
 * count as a listing are those of reject_rbl_client (its filter syntax, its
 * list-error answers).
 *
 * @module
 */

import { addressText, isNullAddress } from "../../protocol/address.ts";
import { isValidHostname, withoutTrailingDot } from "../../protocol/hostname.ts";
import type { PolicyContext } from "../context.ts";
import { asciiDomain } from "../hostname.ts";
import type { Decision } from "../decision.ts";
import type { EvalEnv, Factory } from "../restriction.ts";
import { compileRblReply } from "../rbl_reply.ts";
import { blocklistAnswers, isListed, listingReason, parseZoneArg } from "./dnsbl.ts";

/** What each restriction looks at: the text shown and the class of the reply. */
interface Target {
  /** Postfix's reply class ($rbl_class). */
  readonly class: string;
  /** The name or address shown between brackets ($rbl_what), or undefined to skip. */
  what(ctx: PolicyContext): string | undefined;
}

const known = (name: string): string | undefined =>
  name.toLowerCase() === "unknown" ? undefined : name;

const TARGETS: Record<string, Target> = {
  "reject_rhsbl_client": {
    class: "Client host",
    what: (c) => c.local ? undefined : known(c.clientName),
  },
  "reject_rhsbl_reverse_client": {
    class: "Unverified Client host",
    what: (c) => c.local ? undefined : known(c.reverseName),
  },
  "reject_rhsbl_helo": { class: "Helo command", what: (c) => c.helo },
  "reject_rhsbl_sender": {
    class: "Sender address",
    what: (c) => c.sender && !isNullAddress(c.sender) ? addressText(c.sender) : undefined,
  },
  "reject_rhsbl_recipient": {
    class: "Recipient address",
    what: (c) => c.recipient ? addressText(c.recipient) : undefined,
  },
};

/**
 * The domain a name or address is listed under, as Postfix's
 * find_dnsxl_domain chooses it.
 * @param what a host name or an address (the part after the last "@" counts)
 * @returns the domain, or undefined when it is not looked up
 */
export function rhsblDomain(what: string): string | undefined {
  const at = what.lastIndexOf("@");
  const given = withoutTrailingDot(at < 0 ? what : what.slice(at + 1));
  if (given === "" || given.startsWith("[")) return undefined;
  const domain = asciiDomain(given);
  const last = domain.slice(domain.lastIndexOf(".") + 1);
  if (/^\d*$/.test(last)) return undefined;
  return isValidHostname(domain) ? domain.toLowerCase() : undefined;
}

function rhsbl(target: Target): Factory {
  return {
    arg: "zone",
    make: (name, arg, env) => {
      const list = parseZoneArg(name.split(" ")[0] as string, arg as string, env);
      const rblReply = compileRblReply(env);
      return {
        name,
        run: async (e: EvalEnv): Promise<Decision> => {
          const what = target.what(e.ctx);
          const domain = what === undefined ? undefined : rhsblDomain(what);
          if (what === undefined || domain === undefined) return { kind: "dunno" };
          const q = `${domain}.${list.zone}`;
          if (!isListed(e, await blocklistAnswers(e, q), list, domain)) return { kind: "dunno" };
          const reason = await listingReason(e, q);
          const hit = {
            zoneArg: arg as string,
            zone: list.zone,
            what,
            class: target.class,
            reason,
          };
          return await rblReply(e, hit, name);
        },
      };
    },
  };
}

/** The domain-based blocklist restrictions. */
export const RHSBL: Record<string, Factory> = Object.fromEntries(
  Object.entries(TARGETS).map(([name, target]) => [name, rhsbl(target)]),
);
