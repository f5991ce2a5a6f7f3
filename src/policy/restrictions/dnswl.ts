/**
 * `permit_dnswl_client zone[=filter]`: the client address, reversed under
 * the zone as reject_rbl_client looks it up, has an A record that counts as
 * listed (the same filter syntax and list-error answers) → permit. As in
 * Postfix it never permits at RCPT for a recipient we would not accept from
 * anyone, and a list that does not answer permits nothing but turns a later
 * 5xx of the same list into `450 4.7.1 <address>: Client host rejected:
 * Service unavailable` (Postfix's DEFER_IF_REJECT).
 *
 * @module
 */

import { reply } from "../../protocol/reply.ts";
import type { Decision } from "../decision.ts";
import { reverseName } from "../resolver.ts";
import { type EvalEnv, type Factory, tracedDns } from "../restriction.ts";
import { isListed, parseZoneArg } from "./dnsbl.ts";
import { isAuthDestination } from "./relay.ts";

/** The DNS allowlist restriction. */
export const DNSWL: Record<string, Factory> = {
  "permit_dnswl_client": {
    arg: "zone",
    make: (name, arg, env) => {
      const list = parseZoneArg("permit_dnswl_client", arg as string, env);
      const d = env.destinations;
      return {
        name,
        run: async (e: EvalEnv): Promise<Decision> => {
          // Safety, as in Postfix: no allowlisting of relaying at RCPT.
          if (
            e.ctx.recipient &&
            await isAuthDestination(e, d, env.config) !== "yes"
          ) {
            e.trace?.add({
              kind: "note",
              text: "not for a recipient we do not accept from anyone",
            });
            return { kind: "dunno" };
          }
          if (e.ctx.local) return { kind: "dunno" };
          const q = reverseName(e.ctx.clientAddress, list.zone);
          if (!q) return { kind: "dunno" };
          const a = await tracedDns(e, q, "A");
          if (a.kind === "tempfail") {
            e.warn(`${q}: RBL lookup error: ${a.reason}`);
            e.deferIfReject ??= reply(
              450,
              "7.1",
              `<${e.ctx.clientAddress}>: Client host rejected: Service unavailable`,
            );
            return { kind: "dunno" };
          }
          if (a.kind !== "ok" || !isListed(e, a.records, list, e.ctx.clientAddress)) {
            return { kind: "dunno" };
          }
          return { kind: "permit", by: name };
        },
      };
    },
  },
};
