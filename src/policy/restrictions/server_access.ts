/**
 * check_{client,reverse_client,helo,sender,recipient}_{mx,ns,a}_access: the
 * access table is looked up with the MX hosts, the DNS servers or the
 * addresses of a domain (the client's verified or unverified name, the HELO
 * name, the sender's or recipient's domain), as Postfix's
 * check_server_access does. For each host its name
 * (and parent domains) is looked up first (not for _a_access), then each of
 * its addresses (and their prefixes). A domain without MX records is its
 * own MX host; without NS records, its parent's servers count; an address
 * literal is its own MX host and address. A null MX, a failed lookup or
 * every record dropped by smtpd_dns_reply_filter checks nothing (a
 * warning). OK in such a table is not allowed (a name server cannot vouch
 * for a client): it answers 451 4.3.5 and logs why, as in Postfix.
 *
 * @module
 */

import { reply } from "../../protocol/reply.ts";
import {
  isValidHostAddress,
  isValidMailhostAddress,
  withoutTrailingDot,
} from "../../protocol/hostname.ts";
import { type Action, addressKeys, compileActions, hostKeys } from "../access.ts";
import type { PolicyContext } from "../context.ts";
import type { Decision } from "../decision.ts";
import { isNullMx } from "./address.ts";
import {
  type EvalEnv,
  type Factory,
  type Subject,
  tracedDns,
  tracedLookup,
} from "../restriction.ts";
import type { LookupTable } from "../tables/mod.ts";
import { DNS_RR_LIST_LIMIT } from "../resolver.ts";

type ServerType = "MX" | "NS" | "A";

/** What is looked at: the name or address, or undefined to skip. */
const WHAT: Record<
  Exclude<Subject, "etrn" | "data" | "eod">,
  (c: PolicyContext) => string | undefined
> = {
  client: (c) => c.clientName === "unknown" ? undefined : c.clientName,
  "reverse_client": (c) => c.reverseName === "unknown" ? undefined : c.reverseName,
  helo: (c) => c.helo,
  sender: (c) => c.sender && (c.sender.domain || c.sender.local || undefined),
  recipient: (c) => c.recipient && (c.recipient.domain || c.recipient.local || undefined),
};

/** A lookup in order; found stops the search even when its action says dunno. */
async function lookupKeys(
  e: EvalEnv,
  table: LookupTable,
  keys: readonly string[],
  actions: ReadonlyMap<string, Action>,
  subject: Subject,
  by: string,
): Promise<Decision | undefined> {
  for (const key of keys) {
    const r = await tracedLookup(e, table, key);
    if (r.kind === "tempfail") {
      e.deferIfPermit ??= reply(451, "3.0", "Temporary lookup failure");
      e.warn(`${table.name}: lookup of "${key}" failed: ${r.reason}`);
      return { kind: "dunno" };
    }
    if (r.kind === "found") {
      const action = actions.get(r.value);
      return action ? await action(e, subject, `${by} ${table.name} ${key}`) : { kind: "dunno" };
    }
  }
  return undefined;
}

/** The servers of a domain: MX hosts, NS hosts or the domain itself. */
async function servers(
  e: EvalEnv,
  domain: string,
  type: ServerType,
  what: string,
): Promise<string[]> {
  if (type === "A") return [domain];
  let d = domain;
  for (;;) {
    const a = await tracedDns(e, d, type);
    if (a.kind === "ok") {
      if (type === "MX" && isNullMx(a.records)) return [];
      const hosts = type === "MX"
        ? a.records.map((r) => r.split(" ")).sort((x, y) => Number(x[0]) - Number(y[0]))
          .map((p) => p[1] ?? "")
        : a.records;
      return hosts.map((h) => h.toLowerCase().replace(/\.$/, "")).filter(Boolean);
    }
    if (a.kind === "notFound" && type === "MX") return [domain];
    const dot = d.indexOf(".");
    if (a.kind === "notFound" && type === "NS" && dot > 0 && dot < d.length - 1) {
      d = d.slice(dot + 1);
      continue;
    }
    const why = a.kind === "filtered"
      ? "DNS reply filter policy"
      : a.kind === "tempfail"
      ? a.reason
      : "not found";
    e.warn(`Unable to look up ${type} host for ${what}: ${why}`);
    return [];
  }
}

function serverAccess(
  subject: Exclude<Subject, "etrn" | "data" | "eod">,
  type: ServerType,
): Factory {
  return {
    arg: "table",
    make: (name, arg, env) => {
      const table = env.table(arg as string);
      const actions = compileActions(table, env);
      const check = async (e: EvalEnv, what: string): Promise<Decision> => {
        const at = what.lastIndexOf("@");
        const domain = withoutTrailingDot(at < 0 ? what : what.slice(at + 1)).toLowerCase();
        if (domain.startsWith("[")) {
          // An address literal is its own MX host (and address); it has no name servers.
          const inner = domain.endsWith("]") ? domain.slice(1, -1) : "";
          if (type === "NS" || !isValidMailhostAddress(inner)) return { kind: "dunno" };
          const bare = inner.replace(/^ipv6:/i, "");
          return (await lookupKeys(e, table, addressKeys(bare), actions, subject, name)) ??
            { kind: "dunno" };
        }
        // As Postfix: at most dns_rr_list_limit addresses of all the servers together.
        let addresses = 0;
        for (const host of await servers(e, domain, type, what)) {
          if (isValidHostAddress(host)) {
            const d = await lookupKeys(e, table, addressKeys(host), actions, subject, name);
            if (d) return d;
            continue;
          }
          if (type !== "A") {
            const d = await lookupKeys(e, table, hostKeys(host), actions, subject, name);
            if (d) return d;
          }
          for (const rr of ["A", "AAAA"] as const) {
            const a = await tracedDns(e, host, rr);
            if (a.kind !== "ok") continue;
            for (const ip of a.records) {
              if (++addresses > DNS_RR_LIST_LIMIT) {
                e.warn(
                  `check_server_access: ${type} server address count limit` +
                    ` (${DNS_RR_LIST_LIMIT}) exceeded for ${subject} ${what}` +
                    ` -- ignoring the remainder`,
                );
                return { kind: "dunno" };
              }
              const d = await lookupKeys(e, table, addressKeys(ip), actions, subject, name);
              if (d) return d;
            }
          }
        }
        return { kind: "dunno" };
      };
      return {
        name,
        run: async (e): Promise<Decision> => {
          const what = WHAT[subject](e.ctx);
          if (what === undefined) return { kind: "dunno" };
          const d = await check(e, what);
          if (d.kind !== "permit") return d;
          // Postfix's forbid_allowlist.
          e.warn(`restriction ${name} returns OK for ${what}`);
          e.warn("this is not allowed for security reasons");
          e.warn("use DUNNO instead of OK if you want to make an exception");
          return {
            kind: "defer",
            reply: reply(451, "3.5", "Server configuration error"),
            by: d.by,
          };
        },
      };
    },
  };
}

/** The server access restrictions. */
export const SERVER_ACCESS: Record<string, Factory> = Object.fromEntries(
  (["client", "reverse_client", "helo", "sender", "recipient"] as const).flatMap((s) =>
    (["MX", "NS", "A"] as const).map((t) => [
      `check_${s}_${t.toLowerCase()}_access`,
      serverAccess(s, t),
    ])
  ),
);
