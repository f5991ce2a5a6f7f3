/**
 * The DNS check at start and in `smtpd config --check`: when a restriction
 * asks the DNS, one query through the policy's own resolver tells whether
 * the name servers answer. (Whether they are permitted is part of the
 * permission check: their addresses are among the configuration's needs.)
 *
 * @module
 */

import type { LoadedConfig } from "../config/mod.ts";
import type { CompiledPolicy } from "../policy/mod.ts";
import {
  DNS_LIST_RESTRICTIONS,
  dnsServers,
  dnsUse,
  probeDns,
  programCodeDir,
} from "../permissions/mod.ts";
import { readText } from "./permissions.ts";

/** The DNS allowlists: one that cannot be asked defers a later rejection. */
const ALLOWLISTS: ReadonlySet<string> = new Set(["permit_dnswl_client", "permit_rhswl_client"]);

/**
 * Runs the check.
 * @param loaded the configuration
 * @param policy the compiled policy (its resolver)
 * @returns undefined when no restriction uses the DNS; else a line for the
 *   operator when it answers (ok) or a warning when it does not
 */
export async function checkDns(
  loaded: LoadedConfig,
  policy: CompiledPolicy,
): Promise<{ ok?: string; warning?: string } | undefined> {
  const use = dnsUse(loaded, { cwd: Deno.cwd(), codeDir: programCodeDir(), readText });
  if (use.restrictions.length === 0) return undefined;
  const c = loaded.config;
  const servers = dnsServers(loaded, readText).join(", ") || "none found";
  const which = c.dns_server ? `dns_server ${servers}` : `system resolver (${servers})`;
  const probe = await probeDns(policy.sessionResolver(), use.zones, c.mydomain || c.myhostname);
  if (probe.kind === "answering") {
    return { ok: `DNS: the ${which} answers (${probe.query})` };
  }
  // A DNS list that does not answer is "not listed" (as in Postfix: a
  // warning, no 4xx), but an allowlist then defers a later rejection
  // (Postfix's DEFER_IF_REJECT, 450 4.7.1); the other checks defer.
  const lists = use.restrictions.filter((r) => DNS_LIST_RESTRICTIONS.has(r));
  const allow = lists.filter((r) => ALLOWLISTS.has(r));
  const block = lists.filter((r) => !ALLOWLISTS.has(r));
  const others = use.restrictions.filter((r) => !DNS_LIST_RESTRICTIONS.has(r));
  const effects = [
    ...(others.length ? [`${others.join(", ")} answer with 4xx (never 5xx)`] : []),
    ...(block.length ? [`${block.join(", ")} find nothing listed`] : []),
    ...(allow.length
      ? [`${allow.join(", ")} find nothing listed and make a later rejection 450 (defer_if_reject)`]
      : []),
  ];
  return {
    warning: `DNS: the ${which} does not answer (${probe.query}: ${probe.reason}); ` +
      `until it does, ${effects.join(", and ")}`,
  };
}
