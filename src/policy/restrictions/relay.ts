/**
 * Relay control: permit_auth_destination, reject_unauth_destination (and
 * the old check_relay_domains), permit_mx_backup (with
 * permit_mx_backup_networks), reject_unauth_pipelining.
 * A destination is ours when the domain is in mydestination, in
 * relay_domains (or below one), or an address literal of ours, and the
 * address carries no sender-specified routing (unless
 * allow_untrusted_routing allows it for relay_domains).
 *
 * @module
 */

import type { Config } from "../../config/mod.ts";
import { reply } from "../../protocol/reply.ts";
import { inNetwork, type Network, parseIp } from "../cidr.ts";
import { compileNetworks } from "../relay.ts";
import type { Factory } from "../restriction.ts";
import type { Decision } from "../decision.ts";
import { hasRouting, normalizeDomain } from "../hostname.ts";
import { type Destinations, localDomain, relayDomain } from "../destinations.ts";
import type { Membership } from "../domain_list.ts";
import { addressText } from "../../protocol/address.ts";
import type { PolicyContext } from "../context.ts";
import { resolveAddress } from "../resolve_address.ts";
import { type EvalEnv, refusal, refuse, stageSubject, tracedDns } from "../restriction.ts";

/**
 * Whether mail to the context's recipient may be accepted from anyone.
 * @param e the evaluation
 * @param d our destinations
 * @param config allow_untrusted_routing and myorigin
 * @returns yes for our own or relayed destinations without routing tricks;
 *   tempfail when a table in mydestination or relay_domains could not answer
 */
export async function isAuthDestination(
  e: EvalEnv,
  d: Destinations,
  config: Pick<Config, "allow_untrusted_routing" | "myorigin">,
): Promise<Membership> {
  const a = e.ctx.recipient;
  if (!a) return "no";
  // The address as Postfix resolved it: <user> is user@$myorigin, and
  // routing off our own domain is followed (u%ourdomain@ourdomain is
  // u@ourdomain; u%elsewhere@ourdomain is u@elsewhere). What still routes
  // after that is sender-specified routing.
  const r = await resolveAddress(a, { myorigin: config.myorigin, destinations: d, env: e });
  const relay = await relayDomain(r.domain, d, e);
  if (relay === "tempfail") return "tempfail";
  if (hasRouting(r) && !(config.allow_untrusted_routing && relay === "yes")) return "no";
  return relay === "yes" ? "yes" : await localDomain(r.domain, d, e);
}

/**
 * A table of our destinations could not answer: Postfix defers the
 * request (451 4.3.0) rather than guess.
 * @param e the evaluation
 * @param by the restriction
 * @returns the deferral
 */
export function lookupFailed(e: EvalEnv, by: string): Decision {
  const a = e.ctx.recipient;
  return refuse(reply(451, "3.0", `<${a ? addressText(a) : ""}>: Temporary lookup failure`), by);
}

/**
 * A membership answer as yes or no: a table failure is "no", and makes a
 * later permit a temporary refusal.
 * @param e the evaluation
 * @param m the answer
 * @returns true for yes
 */
export async function member(e: EvalEnv, m: Promise<Membership>): Promise<boolean> {
  const got = await m;
  if (got === "tempfail") {
    const a = e.ctx.recipient ?? e.ctx.sender;
    e.deferIfPermit ??= reply(451, "3.0", `<${a ? addressText(a) : ""}>: Temporary lookup failure`);
  }
  return got === "yes";
}

function relayDenied(config: Config, ctx: PolicyContext, by: string): Decision {
  const name = ctx.recipient
    ? `${ctx.recipient.local}${ctx.recipient.domain ? "@" + ctx.recipient.domain : ""}`
    : "";
  return refuse(
    reply(config.relay_domains_reject_code as 554, "7.1", `<${name}>: Relay access denied`),
    by,
  );
}

/**
 * permit_mx_backup_networks: with networks given, every address of every
 * primary MX host must be inside them (a failed lookup: no, and a later
 * 5xx of the list becomes 450 4.4.4, as in Postfix).
 */
async function primariesAllowed(
  e: EvalEnv,
  primaries: readonly string[],
  nets: readonly Network[],
): Promise<boolean> {
  if (nets.length === 0) return true;
  for (const host of primaries) {
    const ips: string[] = [];
    for (const type of ["A", "AAAA"] as const) {
      const a = await tracedDns(e, host, type);
      if (a.kind === "ok") ips.push(...a.records);
    }
    if (ips.length === 0) {
      e.deferIfReject ??= refusal(
        450,
        "4.4",
        "recipient",
        e.ctx,
        `Unable to look up host ${host} as mail exchanger`,
      );
      return false;
    }
    for (const ip of ips) {
      const v = parseIp(ip);
      if (v === undefined || !nets.some((n) => inNetwork(n, v))) return false;
    }
  }
  return true;
}

/** The relay restrictions. */
export const RELAY: Record<string, Factory> = {
  "permit_auth_destination": {
    make: (name, _arg, env) => {
      const d = env.destinations;
      return {
        name,
        run: async (e) => {
          const m = await isAuthDestination(e, d, env.config);
          if (m === "tempfail") return lookupFailed(e, name);
          return m === "yes" ? { kind: "permit", by: name } : { kind: "dunno" };
        },
      };
    },
  },
  "reject_unauth_destination": {
    make: (name, _arg, env) => {
      const d = env.destinations;
      return {
        name,
        run: async (e) => {
          if (!e.ctx.recipient) return { kind: "dunno" };
          const m = await isAuthDestination(e, d, env.config);
          if (m === "tempfail") return lookupFailed(e, name);
          return m === "yes" ? { kind: "dunno" } : relayDenied(env.config, e.ctx, name);
        },
      };
    },
  },
  "check_relay_domains": {
    replacedBy: "permit_auth_destination, reject_unauth_destination",
    make: (name, _arg, env) => {
      const d = env.destinations;
      return {
        name,
        run: async (e) => {
          const host = e.ctx.clientName;
          if (host !== "unknown" && (await relayDomain(host, d, e)) === "yes") {
            return { kind: "permit", by: name };
          }
          const m = await isAuthDestination(e, d, env.config);
          if (m === "tempfail") return lookupFailed(e, name);
          if (m === "yes") return { kind: "permit", by: name };
          // Postfix's check_relay_domains names the subject, unlike reject_unauth_destination.
          return (refuse(
            refusal(
              env.config.relay_domains_reject_code,
              "7.1",
              "recipient",
              e.ctx,
              "Relay access denied",
            ),
            name,
          ));
        },
      };
    },
  },
  "permit_mx_backup": {
    make: (name, _arg, env) => {
      const d = env.destinations;
      const me = normalizeDomain(env.config.myhostname);
      const backupNets = compileNetworks(
        env.config.permit_mx_backup_networks,
        "permit_mx_backup_networks",
      );
      return {
        name,
        run: async (e): Promise<Decision> => {
          const a = e.ctx.recipient;
          if (!a) return { kind: "dunno" };
          // The address as Postfix resolved it: <user> is user@$myorigin,
          // routing off our own domain followed.
          const r = await resolveAddress(a, {
            myorigin: env.config.myorigin,
            destinations: d,
            env: e,
          });
          if (hasRouting(r)) return { kind: "dunno" };
          const domain = r.domain;
          // As in Postfix, our own and relayed domains are permitted too.
          if (
            await member(e, localDomain(domain, d, e)) ||
            await member(e, relayDomain(domain, d, e))
          ) {
            return { kind: "permit", by: name };
          }
          if (domain === "" || domain.startsWith("[")) return { kind: "dunno" };
          const mx = await tracedDns(e, domain, "MX");
          if (mx.kind === "tempfail") {
            e.deferIfPermit ??= refusal(450, "4.3", "recipient", e.ctx, "Temporary lookup failure");
            return { kind: "dunno" };
          }
          if (mx.kind !== "ok") return { kind: "dunno" };
          const hosts = mx.records.map((rec) => {
            const [pref, host] = rec.split(" ");
            return { pref: Number(pref), host: normalizeDomain(host ?? "") };
          }).sort((a, b) => a.pref - b.pref);
          const ours = async (host: string): Promise<boolean> => {
            if (host === me) return true;
            const a = await tracedDns(e, host, "A");
            return a.kind === "ok" && a.records.some((ip) => {
              const v = parseIp(ip);
              return v !== undefined && d.addresses.includes(v);
            });
          };
          const best = hosts[0]?.pref;
          for (const h of hosts) {
            if (await ours(h.host)) {
              // Postfix: never when we are the primary MX (that needs mydestination or relay_domains).
              if (h.pref === best) return { kind: "dunno" };
              const primaries = hosts.filter((p) => p.pref === best).map((p) => p.host);
              return (await primariesAllowed(e, primaries, backupNets))
                ? { kind: "permit", by: name }
                : { kind: "dunno" };
            }
          }
          return { kind: "dunno" };
        },
      };
    },
  },
  "reject_unauth_pipelining": {
    make: (name) => ({
      name,
      run: (e) =>
        Promise.resolve(
          e.ctx.unauthPipelining
            ? refuse(
              // As Postfix: "<DATA>: Data command rejected: ...", the stage's own subject.
              refusal(
                503,
                "5.0",
                stageSubject(e.stage),
                e.ctx,
                "Improper use of SMTP command pipelining",
              ),
              name,
            )
            : { kind: "dunno" },
        ),
    }),
  },
};
