/**
 * Whether the resolver the restrictions use answers: one query, at start
 * and in `smtpd config --check`. For a DNS blocklist it asks the list's
 * test entry (RFC 5782 section 5: 127.0.0.2 is always listed), otherwise
 * the MX of this host's domain (no hosts file answers that). Any answer,
 * "no such name" included, means the resolver works; a timeout or a server
 * failure means every DNS check would be a temporary failure (4xx, never
 * 5xx) until it does.
 *
 * @module
 */

import type { DnsResolver } from "../policy/resolver.ts";

/** What the probe found. */
export type DnsProbe =
  | { kind: "answering"; query: string }
  | { kind: "failing"; query: string; reason: string };

/**
 * Asks one question.
 * @param dns the resolver (the one the policy uses)
 * @param zones the DNSBL zones in use
 * @param domain this host's domain
 * @returns the outcome
 */
export async function probeDns(
  dns: DnsResolver,
  zones: readonly string[],
  domain: string,
): Promise<DnsProbe> {
  const zone = zones[0];
  const [name, type] = zone ? [`2.0.0.127.${zone}`, "A" as const] : [domain, "MX" as const];
  const query = `${name} ${type}`;
  const a = await dns.query(name, type);
  return a.kind === "tempfail" ? { kind: "failing", query, reason: a.reason } : {
    kind: "answering",
    query,
  };
}
