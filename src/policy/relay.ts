/**
 * Postfix's default relay control, `permit_mynetworks,
 * reject_unauth_destination`: trusted clients (mynetworks, local
 * submissions) may send anywhere; others only to mydestination and
 * relay_domains. This is the seam the restriction evaluator plugs into.
 *
 * @module
 */

import type { Config } from "../config/mod.ts";
import { ConfigError } from "../config/mod.ts";
import { reply } from "../protocol/reply.ts";
import { inNetwork, type Network, parseIp, parseNetwork } from "./cidr.ts";
import type { PolicyContext, PolicyStage } from "./context.ts";
import type { Decision } from "./decision.ts";

/** Runs the restrictions of a stage. */
export interface Policy {
  /**
   * Evaluates a stage.
   * @param stage the SMTP stage
   * @param ctx the session facts
   * @returns the decision
   */
  check(stage: PolicyStage, ctx: PolicyContext): Promise<Decision>;
}

/**
 * Parses mynetworks.
 * @param config the configuration
 * @returns the networks
 * @throws {ConfigError} for a malformed entry
 */
export function compileNetworks(items: readonly string[], key: string): Network[] {
  return items.map((item) => {
    const net = parseNetwork(item);
    if (!net) throw new ConfigError(`${key}: cannot parse network "${item}"`, { key });
    return net;
  });
}

/**
 * Whether a domain is one of ours or one we relay for (exact match or a
 * subdomain of a relay_domains entry, as Postfix's parent_domain_matches_subdomains).
 * @param domain the recipient domain
 * @param local mydestination
 * @param relay relay_domains
 * @returns true when mail to it is accepted from anyone
 */
export function isOurDomain(
  domain: string,
  local: ReadonlySet<string>,
  relay: readonly string[],
): boolean {
  const d = domain.toLowerCase().replace(/\.$/, "");
  if (local.has(d)) return true;
  for (const r of relay) {
    if (d === r || d.endsWith("." + r)) return true;
  }
  return false;
}

/**
 * Builds the default relay policy.
 * @param config the configuration
 * @returns the policy
 */
export function compileDefaultPolicy(config: Config): Policy {
  const networks = compileNetworks(config.mynetworks, "mynetworks");
  const local = new Set(config.mydestination.map((d) => d.toLowerCase()));
  const relay = config.relay_domains.map((d) => d.toLowerCase().replace(/^\./, ""));
  return {
    check(stage: PolicyStage, ctx: PolicyContext): Promise<Decision> {
      if (stage !== "recipient" && stage !== "vrfy") return Promise.resolve({ kind: "dunno" });
      if (ctx.local) return Promise.resolve({ kind: "permit", by: "permit_mynetworks" });
      const ip = parseIp(ctx.clientAddress);
      if (ip !== undefined && networks.some((n) => inNetwork(n, ip))) {
        return Promise.resolve({ kind: "permit", by: "permit_mynetworks" });
      }
      const rcpt = ctx.recipient;
      if (rcpt && rcpt.route.length === 0 && !/[%!@]/.test(rcpt.local)) {
        if (rcpt.domain === "" || isOurDomain(rcpt.domain, local, relay)) {
          return Promise.resolve({ kind: "permit", by: "reject_unauth_destination" });
        }
      }
      const shown = rcpt ? `<${rcpt.domain ? `${rcpt.local}@${rcpt.domain}` : rcpt.local}>: ` : "";
      return Promise.resolve({
        kind: "reject",
        reply: reply(554, "7.1", `${shown}Relay access denied`),
        by: "reject_unauth_destination",
      });
    },
  };
}
