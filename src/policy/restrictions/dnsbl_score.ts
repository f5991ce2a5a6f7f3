/**
 * Scored DNS blocklists, as Postfix's postscreen weighs them: every site of
 * `smtpd_dnsbl_sites` (`zone[=filter][*weight]`, postscreen_dnsbl_sites'
 * syntax) is asked at once, the weights of the sites that list the client
 * are added, and `reject_dnsbl_score` refuses the client when the sum
 * reaches `smtpd_dnsbl_threshold`. One list's false positive then does not
 * refuse mail on its own. An allow list has a negative weight; when
 * `smtpd_dnsbl_allowlist_threshold` is negative and the sum is at or below
 * it, the restriction permits (the rest of the list is skipped).
 *
 * A site that does not answer adds nothing (logged), as a failing
 * `reject_rbl_client` does; so does a list error answer (logged). A site is
 * counted once however many of its answers match.
 *
 * @module
 */

import { reply, type ReplyCode } from "../../protocol/reply.ts";
import type { Decision } from "../decision.ts";
import { reverseName } from "../resolver.ts";
import { type EvalEnv, type Factory, refuse } from "../restriction.ts";
import { blocklistAnswers, compileFilter, isListed } from "./dnsbl.ts";

/** One weighed site. */
export interface DnsblSite {
  readonly zone: string;
  /** The reply filter, or undefined for "any listing answer". */
  readonly match: ((ip: string) => boolean) | undefined;
  readonly weight: number;
  /** As written, for logs and traces. */
  readonly text: string;
}

/**
 * Parses one `zone[=filter][*weight]` entry.
 * @param entry the entry as written
 * @returns the site, or an error message
 */
export function parseSite(entry: string): DnsblSite | string {
  const m = /^([A-Za-z0-9_.-]+)(?:=([^*]+))?(?:\*(-?\d{1,6}))?$/.exec(entry);
  if (!m) return `bad site "${entry}": expected zone[=filter][*weight]`;
  const [, zone = "", filter, weight] = m;
  const match = filter === undefined ? undefined : compileFilter(filter);
  if (filter !== undefined && !match) return `bad reply filter "${filter}" in "${entry}"`;
  return { zone, match, weight: weight === undefined ? 1 : Number(weight), text: entry };
}

/** Whether a site lists the client, by its A answers. */
async function listedBy(site: DnsblSite, e: EvalEnv): Promise<boolean> {
  const q = reverseName(e.ctx.clientAddress, site.zone);
  if (!q) return false;
  // As reject_rbl_client reads them: a list error (127.255.255.x, outside
  // 127/8) is logged, and counts nothing.
  return isListed(e, await blocklistAnswers(e, q), site, e.ctx.clientAddress);
}

/** The scored blocklist restriction. */
export const DNSBL_SCORE: Record<string, Factory> = {
  "reject_dnsbl_score": {
    make: (name, _arg, env) => {
      const config = env.config;
      const sites: DnsblSite[] = [];
      for (const entry of config.smtpd_dnsbl_sites) {
        const site = parseSite(entry);
        if (typeof site === "string") return env.fail(`smtpd_dnsbl_sites: ${site}`);
        sites.push(site);
      }
      if (sites.length === 0) env.fail(`${name}: smtpd_dnsbl_sites is empty`);
      const threshold = config.smtpd_dnsbl_threshold;
      const allowAt = config.smtpd_dnsbl_allowlist_threshold;
      return {
        name,
        run: async (e: EvalEnv): Promise<Decision> => {
          if (e.ctx.local) return { kind: "dunno" };
          const hits = await Promise.all(sites.map((s) => listedBy(s, e)));
          const listing = sites.filter((_, i) => hits[i]);
          const score = listing.reduce((sum, s) => sum + s.weight, 0);
          e.trace?.add({
            kind: "note",
            text: `dnsbl score ${score} (threshold ${threshold}` +
              (allowAt < 0 ? `, allow list ${allowAt}` : "") +
              `)${listing.length ? ` from ${listing.map((s) => s.text).join(", ")}` : ""}`,
          });
          if (allowAt < 0 && score <= allowAt) return { kind: "permit", by: name };
          if (score < threshold) return { kind: "dunno" };
          const zones = listing.filter((s) => s.weight > 0).map((s) => s.zone).join(", ");
          return refuse(
            reply(
              config.maps_rbl_reject_code as ReplyCode,
              "7.1",
              `Service unavailable; Client host [${e.ctx.clientAddress}] blocked using ` +
                `DNSBL score ${score} (${zones})`,
            ),
            name,
          );
        },
      };
    },
  },
};
