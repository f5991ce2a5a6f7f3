/**
 * DNS blocklists: `reject_rbl_client zone[=filter]`, the old
 * `reject_maps_rbl` (every zone of maps_rbl_domains), and the allowlist
 * `permit_rhswl_client zone[=filter]` (the client's name under the zone). The client address
 * is reversed under the zone and looked up (A); the TXT records give
 * $rbl_reason of the reply (../rbl_reply.ts: default_rbl_reply,
 * rbl_reply_maps). The helpers here (filters, listing, reason, zone
 * argument) serve rhsbl.ts and dnswl.ts too. Safe default (DESIGN.md §5): only 127.0.0.2-127.255.255.255
 * outside 127.255.255.0/24 means "listed"; 127.255.255.x and answers
 * outside 127/8 are list errors (logged, never a rejection). A filter
 * (`=127.0.0.2`, `=127.0.0.[2..11]`, `=127.0.[0;1].2`) narrows the codes.
 * A list that fails to answer counts as "not listed", as in Postfix: the
 * failure is logged and the client gets the benefit of the doubt.
 *
 * @module
 */

import { reply } from "../../protocol/reply.ts";
import type { CompileEnv, Factory } from "../restriction.ts";
import type { Decision } from "../decision.ts";
import { type EvalEnv, type Restriction, tracedDns } from "../restriction.ts";
import { reverseName } from "../resolver.ts";
import { compileRblReply, type RblReply } from "../rbl_reply.ts";
import { isValidHostname } from "../../protocol/hostname.ts";
import { isAuthDestination } from "./relay.ts";

/**
 * Compiles a filter such as "127.0.0.[2..11]" or "127.0.[0;1].2".
 * @param filter the pattern
 * @returns a matcher, or undefined when malformed
 */
export function compileFilter(filter: string): ((ip: string) => boolean) | undefined {
  const parts = filter.match(/\[[^\]]*\]|[^.[\]]+/g) ?? [];
  if (parts.length !== 4 || parts.join(".") !== filter) return undefined;
  const tests: ((n: number) => boolean)[] = [];
  for (const p of parts) {
    const set = /^\[(.*)\]$/.exec(p);
    if (!set) {
      if (!/^\d{1,3}$/.test(p)) return undefined;
      const v = Number(p);
      tests.push((n) => n === v);
      continue;
    }
    const alts: ((n: number) => boolean)[] = [];
    for (const alt of (set[1] as string).split(";")) {
      const range = /^(\d{1,3})\.\.(\d{1,3})$/.exec(alt);
      if (range) {
        const lo = Number(range[1]);
        const hi = Number(range[2]);
        alts.push((n) => n >= lo && n <= hi);
      } else if (/^\d{1,3}$/.test(alt)) {
        const v = Number(alt);
        alts.push((n) => n === v);
      } else return undefined;
    }
    tests.push((n) => alts.some((t) => t(n)));
  }
  return (ip) => {
    const o = ip.split(".").map(Number);
    return o.length === 4 && tests.every((t, i) => t(o[i] as number));
  };
}

/**
 * Whether an answer counts as "listed" without a filter.
 * @param ip an A record
 * @returns "listed", or "error" for list errors (127.255.255.x, outside 127/8, 127.0.0.0/1)
 */
export function classifyAnswer(ip: string): "listed" | "error" {
  const o = ip.split(".").map(Number);
  if (o.length !== 4 || o[0] !== 127) return "error";
  if (o[1] === 255 && o[2] === 255) return "error";
  if (o[1] === 0 && o[2] === 0 && (o[3] ?? 0) < 2) return "error";
  return "listed";
}

/**
 * A blocklist's A answers for a query. A list that does not answer gives
 * the client the benefit of the doubt, as in Postfix: no answers, and the
 * failure is logged.
 * @param e the evaluation
 * @param query the reversed client address under the zone
 * @returns the answers (none when not listed or not answering)
 */
export async function blocklistAnswers(e: EvalEnv, query: string): Promise<readonly string[]> {
  const a = await tracedDns(e, query, "A");
  if (a.kind === "tempfail") e.warn(`${query}: RBL lookup error: ${a.reason}`);
  return a.kind === "ok" ? a.records : [];
}

/** Postfix's limit on the concatenated TXT text of a listing. */
const TXT_LIMIT = 500;

/**
 * The reason a list gives for a listing ($rbl_reason), as Postfix takes
 * it: every TXT record of the query joined with " / ", at most 500
 * characters.
 * @param e the evaluation
 * @param query the query that was listed
 * @returns the text, or "" when the list gives none
 */
export async function listingReason(e: EvalEnv, query: string): Promise<string> {
  const txt = await tracedDns(e, query, "TXT");
  if (txt.kind === "filtered") {
    e.warn(`${query}: TXT lookup error: DNS reply filter drops all results`);
  }
  if (txt.kind !== "ok" || txt.records.length === 0) return "";
  return txt.records.join(" / ").slice(0, TXT_LIMIT);
}

/**
 * Whether a list's answers say "listed": with a filter, an answer it
 * matches; without, an answer that {@linkcode classifyAnswer} calls a
 * listing (the others are logged as list errors).
 * @param e the evaluation
 * @param answers the A records
 * @param list the zone and its compiled filter
 * @param what the name or address looked up (for the log)
 * @returns true when listed
 */
export function isListed(
  e: EvalEnv,
  answers: readonly string[],
  list: { zone: string; match: ((ip: string) => boolean) | undefined },
  what: string,
): boolean {
  let listed = false;
  for (const ip of answers) {
    if (list.match) {
      if (list.match(ip)) listed = true;
    } else if (classifyAnswer(ip) === "listed") {
      listed = true;
    } else {
      e.warn(`${list.zone}: list error answer ${ip} for ${what} ignored`);
      e.trace?.add({ kind: "note", text: `${ip} is a list error, not a listing` });
    }
  }
  return listed;
}

/**
 * Parses a `zone[=filter]` argument at start-up.
 * @param name the restriction (for the error)
 * @param arg the argument
 * @param env the compile environment
 * @returns the zone and its compiled filter
 */
export function parseZoneArg(
  name: string,
  arg: string,
  env: CompileEnv,
): { zone: string; match: ((ip: string) => boolean) | undefined } {
  const [zone = "", filter, ...more] = arg.split("=");
  if (!/^[A-Za-z0-9_.-]+$/.test(zone) || more.length) env.fail(`${name}: bad zone "${arg}"`);
  const match = filter === undefined ? undefined : compileFilter(filter);
  if (filter !== undefined && !match) env.fail(`${name}: bad reply filter "${filter}"`);
  return { zone, match };
}

function rblRestriction(
  name: string,
  zoneArg: string,
  filter: string | undefined,
  rblReply: RblReply,
): Restriction {
  const zone = zoneArg.split("=")[0] as string;
  const match = filter === undefined ? undefined : compileFilter(filter);
  return {
    name,
    run: async (e: EvalEnv): Promise<Decision> => {
      if (e.ctx.local) return { kind: "dunno" };
      const q = reverseName(e.ctx.clientAddress, zone);
      if (!q) return { kind: "dunno" };
      const answers = await blocklistAnswers(e, q);
      if (!isListed(e, answers, { zone, match }, e.ctx.clientAddress)) return { kind: "dunno" };
      const what = e.ctx.clientAddress;
      const reason = await listingReason(e, q);
      return await rblReply(e, { zoneArg, zone, what, class: "Client host", reason }, name);
    },
  };
}

/**
 * permit_rhswl_client zone[=filter]: the client's (verified) name under the
 * zone has an A record that counts as listed → permit. As in Postfix it
 * never permits at RCPT for a recipient we would not accept from anyone,
 * and a temporary failure turns a later 5xx of the list into 450.
 */
function rhswlRestriction(name: string, zone: string, filter: string | undefined): Restriction {
  const match = filter === undefined ? undefined : compileFilter(filter);
  return {
    name,
    run: async (e: EvalEnv): Promise<Decision> => {
      const host = e.ctx.clientName.toLowerCase().replace(/\.$/, "");
      const last = host.slice(host.lastIndexOf(".") + 1);
      if (host === "unknown" || /^\d*$/.test(last) || !isValidHostname(host)) {
        return { kind: "dunno" };
      }
      const a = await tracedDns(e, `${host}.${zone}`, "A");
      if (a.kind === "tempfail") {
        e.deferIfReject ??= reply(
          450,
          "7.1",
          `<${host}>: Client host rejected: Service unavailable`,
        );
        return { kind: "dunno" };
      }
      if (a.kind !== "ok") return { kind: "dunno" };
      const listed = a.records.some((ip) => match ? match(ip) : classifyAnswer(ip) === "listed");
      return listed ? { kind: "permit", by: name } : { kind: "dunno" };
    },
  };
}

/** The blocklist restrictions. */
export const DNSBL: Record<string, Factory> = {
  "permit_rhswl_client": {
    arg: "zone",
    make: (name, arg, env) => {
      const [zone = "", filter] = (arg as string).split("=");
      if (!/^[A-Za-z0-9_.-]+$/.test(zone)) env.fail(`permit_rhswl_client: bad zone "${arg}"`);
      if (filter !== undefined && !compileFilter(filter)) {
        env.fail(`permit_rhswl_client: bad reply filter "${filter}"`);
      }
      const inner = rhswlRestriction(name, zone, filter);
      const d = env.destinations;
      return {
        name,
        run: async (e) =>
          // Safety, as in Postfix: no allowlisting of relaying at RCPT.
          e.ctx.recipient &&
            await isAuthDestination(e, d, env.config) !== "yes"
            ? { kind: "dunno" }
            : await inner.run(e),
      };
    },
  },
  "reject_rbl_client": {
    arg: "zone",
    make: (name, arg, env) => {
      const [zone = "", filter] = (arg as string).split("=");
      if (!/^[A-Za-z0-9_.-]+$/.test(zone)) env.fail(`reject_rbl_client: bad zone "${arg}"`);
      if (filter !== undefined && !compileFilter(filter)) {
        env.fail(`reject_rbl_client: bad reply filter "${filter}"`);
      }
      return rblRestriction(name, arg as string, filter, compileRblReply(env));
    },
  },
  "reject_maps_rbl": {
    replacedBy: "reject_rbl_client ZONE (one per maps_rbl_domains entry)",
    make: (name, _arg, env) => {
      const rblReply = compileRblReply(env);
      const each = env.config.maps_rbl_domains.map((z) =>
        rblRestriction(`${name} ${z}`, z, undefined, rblReply)
      );
      return {
        name,
        run: async (e) => {
          for (const r of each) {
            const d = await r.run(e);
            if (d.kind !== "dunno") return d;
          }
          return { kind: "dunno" };
        },
      };
    },
  },
};
