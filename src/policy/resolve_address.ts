/**
 * An envelope address as Postfix's trivial-rewrite resolves it before
 * smtpd's restrictions look it up: the canonical rewrite (`site!user` →
 * `user@site`, `user%site` → `user@site`, `user` → `user@$myorigin`, no
 * trailing dot), then, while the domain is ours (mydestination or one of
 * our address literals), that domain comes off and a local part that
 * still routes (`@`, `%` or `!`) is rewritten again. So
 * `<x%spammer.example@our.domain>`, `<spammer.example!x@our.domain>` and
 * `<"x@spammer.example"@our.domain>` are all judged as
 * x@spammer.example, as Postfix's check_mail_access judges them.
 *
 * A table in mydestination that cannot answer ends the resolution there
 * (the class check that follows reports the failure).
 *
 * @module
 */

import { type Address, externalLocal } from "../protocol/address.ts";
import { type Destinations, localDomain } from "./destinations.ts";
import type { Membership } from "./domain_list.ts";
import { normalizeDomain } from "./hostname.ts";
import type { EvalEnv, TraceEnv } from "./restriction.ts";
import { Trace } from "./trace.ts";

/** A resolved address: local part (unquoted) and domain (lower case). */
export interface ResolvedAddress {
  readonly local: string;
  readonly domain: string;
}

/**
 * Postfix's rewrite_tree for an address without "@": the first "!" swaps
 * (`site!user` → `user@site`), else the last "%" becomes "@", else the
 * origin is appended (when given).
 */
function canonical(local: string, origin: string | undefined, quoted: boolean): ResolvedAddress {
  const bang = local.indexOf("!");
  const percent = local.lastIndexOf("%");
  // A quoted local part is cracked open "%" first (resolve.c), an atom "!" first.
  const useBang = bang >= 0 && !(quoted && percent >= 0);
  if (useBang) return { local: local.slice(bang + 1), domain: local.slice(0, bang) };
  if (percent >= 0) return { local: local.slice(0, percent), domain: local.slice(percent + 1) };
  return { local, domain: origin ?? "" };
}

/**
 * Resolves an address as trivial-rewrite does for smtpd (see the module).
 * The null sender is returned as it is. Within one evaluation (an
 * `options.env` that carries a memo) each distinct address is resolved
 * once: a later call answers from the memo and traces the same steps
 * (./resolve_memo.ts).
 * @param a the address as parsed (source route already apart)
 * @param options $myorigin, our destinations and the evaluation (for tables)
 * @returns the resolved address
 */
export async function resolveAddress(
  a: Pick<Address, "local" | "domain">,
  options: { myorigin: string; destinations: Destinations; env?: EvalEnv },
): Promise<ResolvedAddress> {
  const { myorigin, destinations, env } = options;
  const memo = env?.resolved;
  if (!memo) return (await resolveNow(a, myorigin, destinations, env)).address;
  const key = { local: a.local, domain: a.domain, myorigin, destinations };
  const kept = memo.get(key);
  if (kept) {
    for (const ev of kept.events) env.trace?.add(ev);
    return { ...kept.address };
  }
  // Traced, the steps go to a trace of their own (kept for a later use),
  // then to the evaluation's, in order.
  const steps = env.trace ? new Trace() : undefined;
  try {
    const { address, failed } = await resolveNow(a, myorigin, destinations, { trace: steps });
    if (!failed) memo.set(key, { address: { ...address }, events: steps?.events ?? [] });
    return address;
  } finally {
    for (const ev of steps?.events ?? []) env.trace?.add(ev);
  }
}

/**
 * Resolves an address, asking mydestination's tables (no memo).
 * @param a the address as parsed
 * @param myorigin $myorigin
 * @param destinations our destinations
 * @param e where the table lookups are traced
 * @returns the resolved address, and whether a table failed (it then ends there)
 */
async function resolveNow(
  a: Pick<Address, "local" | "domain">,
  myorigin: string,
  destinations: Destinations,
  e: TraceEnv | undefined,
): Promise<{ address: ResolvedAddress; failed: boolean }> {
  if (a.local === "" && a.domain === "") {
    return { address: { local: "", domain: "" }, failed: false };
  }
  // Postfix works on the local part re-quoted only where it must be
  // (quote_822_local): "x%y" is the atom x%y, "x y%z" stays one quoted
  // token. The canonical rewrite does not look inside such a token; only
  // the resolver's loop below cracks it open, off our domain.
  const quoted = externalLocal(a.local) !== a.local;
  let { local, domain } = a.domain !== ""
    ? { local: a.local, domain: a.domain }
    : quoted
    ? { local: a.local, domain: myorigin }
    : canonical(a.local, myorigin, false);
  domain = normalizeDomain(domain);
  // Bounded as Postfix bounds it: each round takes one routing operator off.
  for (let round = 0; round <= a.local.length + a.domain.length; round++) {
    if (domain === "") break;
    const ours: Membership = await localDomain(domain, destinations, e);
    if (ours === "tempfail") return { address: { local, domain }, failed: true };
    if (ours !== "yes") break;
    const at = local.lastIndexOf("@");
    let next: ResolvedAddress | undefined;
    if (at >= 0) next = { local: local.slice(0, at), domain: local.slice(at + 1) };
    else if (/[%!]/.test(local)) next = canonical(local, undefined, quoted);
    if (next === undefined || next.domain === "") break;
    local = next.local;
    domain = normalizeDomain(next.domain);
  }
  return { address: { local, domain }, failed: false };
}
