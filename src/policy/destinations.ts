/**
 * Our destinations and the address class of a domain, as Postfix's
 * trivial-rewrite resolves it: local (mydestination or an address literal
 * of ours), virtual alias (virtual_alias_domains), virtual mailbox
 * (virtual_mailbox_domains), relay (relay_domains, subdomains included),
 * or anything else. Compiled once per policy; the lists may name files and
 * tables (src/policy/domain_list.ts).
 *
 * @module
 */

import type { Config } from "../config/mod.ts";
import { parseIp } from "./cidr.ts";
import { compileDomainList, type DomainList, type DomainListEnv } from "./domain_list.ts";
import { inDomainList, type Membership, namedIn } from "./domain_list.ts";
import { normalizeDomain } from "./hostname.ts";
import type { EvalEnv, TraceEnv } from "./restriction.ts";

/** Our destinations, compiled from the configuration. */
export interface Destinations {
  /** mydestination. */
  readonly local: DomainList;
  /** relay_domains (subdomains match). */
  readonly relay: DomainList;
  readonly virtualAlias: DomainList;
  readonly virtualMailbox: DomainList;
  /** Our IP addresses, for address literals. */
  readonly addresses: readonly bigint[];
}

/** Postfix's address classes. */
export type AddressClass = "local" | "virtualAlias" | "virtualMailbox" | "relay" | "default";

/**
 * Compiles our destinations.
 * @param config the configuration
 * @param env opens tables and reads files (compile time)
 * @returns the destinations
 */
export function compileDestinations(config: Config, env: DomainListEnv): Destinations {
  const hosts = config.inet_interfaces.includes("all")
    ? config.smtpd_listen.map((l) => l.replace(/:\d+$/, ""))
    : config.inet_interfaces;
  const addresses = hosts
    .map((h) => parseIp(h))
    .filter((ip): ip is bigint => ip !== undefined && ip !== 0n && ip !== (0xffffn << 32n));
  return {
    local: compileDomainList(config.mydestination, env, false),
    relay: compileDomainList(config.relay_domains, env, true),
    virtualAlias: compileDomainList(config.virtual_alias_domains, env, false),
    virtualMailbox: compileDomainList(config.virtual_mailbox_domains, env, false),
    addresses,
  };
}

/**
 * Whether a domain is delivered here: mydestination, or one of our address
 * literals; an empty domain is local too.
 * @param domain the domain
 * @param d our destinations
 * @param e the evaluation (trace), if any
 * @returns yes, no or tempfail
 */
export function localDomain(
  domain: string,
  d: Destinations,
  e?: TraceEnv,
): Promise<Membership> {
  const n = normalizeDomain(domain);
  if (n === "") return Promise.resolve("yes");
  if (n.startsWith("[")) {
    const ip = parseIp(n);
    return Promise.resolve(ip !== undefined && d.addresses.includes(ip) ? "yes" : "no");
  }
  return inDomainList(n, d.local, e);
}

/**
 * Whether a domain is in relay_domains (a listed domain or below one).
 * @param domain the domain
 * @param d our destinations
 * @param e the evaluation (trace), if any
 * @returns yes, no or tempfail
 */
export function relayDomain(domain: string, d: Destinations, e?: EvalEnv): Promise<Membership> {
  return inDomainList(domain, d.relay, e);
}

/**
 * The literal-only answer for code that cannot wait (no table asked).
 * @param domain the domain
 * @param d our destinations
 * @returns true when mydestination names it
 */
export function namedLocal(domain: string, d: Destinations): boolean {
  return normalizeDomain(domain) === "" || namedIn(domain, d.local);
}

/**
 * The address class of a domain, in Postfix's order.
 * @param domain the domain
 * @param d our destinations
 * @param e the evaluation (trace)
 * @returns the class, or tempfail when a table could not answer
 */
export async function addressClass(
  domain: string,
  d: Destinations,
  e?: EvalEnv,
): Promise<AddressClass | "tempfail"> {
  const checks: [AddressClass, () => Promise<Membership>][] = [
    ["local", () => localDomain(domain, d, e)],
    ["virtualAlias", () => inDomainList(domain, d.virtualAlias, e)],
    ["virtualMailbox", () => inDomainList(domain, d.virtualMailbox, e)],
    ["relay", () => relayDomain(domain, d, e)],
  ];
  for (const [cls, check] of checks) {
    const m = await check();
    if (m === "yes") return cls;
    if (m === "tempfail") return "tempfail";
  }
  return "default";
}

/** No destinations at all (for lists that name no destination restriction). */
export const NO_DESTINATIONS: Destinations = Object.freeze({
  local: { names: new Set<string>(), tables: [], subdomains: false },
  relay: { names: new Set<string>(), tables: [], subdomains: true },
  virtualAlias: { names: new Set<string>(), tables: [], subdomains: false },
  virtualMailbox: { names: new Set<string>(), tables: [], subdomains: false },
  addresses: [],
});
