/**
 * Test helper (folder-private): the table-driven restriction cases of
 * evaluate_test.ts and postfix_parity_test.ts. A case gives parameters,
 * the session facts of one stage and fake DNS; it is decided by the real
 * configuration loader and policy compiler, with Postfix's test
 * parameters underneath (smtpd_delay_reject off, so one stage at a time).
 *
 * @module
 */

import { resolveConfigText } from "../config/mod.ts";
import { type Address, parsePath } from "../protocol/address.ts";
import { replyForLog } from "../protocol/reply.ts";
import { fakeDns, type Zone } from "./_fake_dns.ts";
import { compilePolicy } from "./compile.ts";
import type { ClientNameStatus, PolicyContext, PolicyStage } from "./context.ts";
import type { Decision } from "./decision.ts";

/** Configuration parameters as TOML values. */
export type Params = Record<string, string | number | boolean | string[]>;

/** The session facts a case sets; everything else has a plain default. */
export interface Facts {
  /** "name[address]"; default "client.example.net[192.0.2.1]". */
  client?: string;
  /** Default: "ok" for a named client, "notFound" for "unknown". */
  nameStatus?: ClientNameStatus;
  reverseStatus?: ClientNameStatus;
  /** The unverified (PTR) name; default: the client name. */
  reverseName?: string;
  /** Recipients accepted so far in the transaction. */
  recipients?: number;
  local?: boolean;
  helo?: string;
  /** The MAIL FROM path without angle brackets ("" for the null sender). */
  from?: string;
  /** The RCPT TO path without angle brackets. */
  to?: string;
  etrn?: string;
  pipelining?: boolean;
  command?: string;
  /** "METHOD:user" when the client logged in with AUTH. */
  sasl?: string;
}

/** Postfix's test parameters: delay_reject off, two trusted networks, one relay domain. */
export const BASE: Params = {
  "smtpd_delay_reject": false,
  "mynetworks": ["127.0.0.0/8", "198.51.100.0/28"],
  "relay_domains": ["example.com"],
};

/**
 * Parses a test address.
 * @param text the path without angle brackets
 * @returns the address
 */
export function path(text: string): Address {
  const r = parsePath(`<${text}>`, { strict: false });
  if (r.ok) return r.address;
  // Postfix's test driver hands addresses to the restrictions as they are;
  // the server refuses one whose domain is no host name (wietse@12345) first.
  const m = /^([^@"]+)@([^@]+)$/.exec(text);
  if (!m) throw new SyntaxError(`Cannot parse test address "${text}"`);
  return { local: m[1] as string, domain: m[2] as string, route: [], quoted: false };
}

/**
 * The policy context of a case's facts.
 * @param f the facts
 * @returns the context
 */
export function context(f: Facts): PolicyContext {
  const m = /^(.*)\[(.*)\]$/.exec(f.client ?? "client.example.net[192.0.2.1]");
  if (!m) throw new SyntaxError(`Cannot parse test client "${f.client}"`);
  const name = m[1] as string;
  const nameStatus = f.nameStatus ?? (name === "unknown" ? "notFound" : "ok");
  return {
    clientAddress: m[2] as string,
    clientName: name,
    reverseName: f.reverseName ?? name,
    nameStatus,
    reverseStatus: f.reverseStatus ?? nameStatus,
    local: f.local ?? false,
    helo: f.helo,
    sender: f.from === undefined ? undefined : path(f.from),
    recipient: f.to === undefined ? undefined : path(f.to),
    ...(f.etrn === undefined ? {} : { etrnDomain: f.etrn }),
    ...(f.pipelining === undefined ? {} : { unauthPipelining: f.pipelining }),
    ...(f.command === undefined ? {} : { command: f.command }),
    ...(f.recipients === undefined ? {} : { recipientCount: f.recipients }),
    ...(f.sasl === undefined ? {} : {
      sasl: { method: f.sasl.split(":")[0] as string, username: f.sasl.split(":")[1] as string },
    }),
  };
}

/**
 * Renders params as TOML (JSON strings and arrays are valid TOML values).
 * @param params the parameters
 * @returns TOML text
 */
export function toml(params: Params): string {
  return Object.entries(params).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join("\n");
}

/**
 * A decision as the cases write it.
 * @param d the decision
 * @returns "permit", "dunno", or "reject|defer <reply as logged>"
 */
export function show(d: Decision): string {
  return d.kind === "reject" || d.kind === "defer" ? `${d.kind} ${replyForLog(d.reply)}` : d.kind;
}

/**
 * Decides one stage the way Postfix's test driver does.
 * @param c the parameters (over {@linkcode BASE}), stage, facts and DNS
 * @returns the decision and every warning (start-up and evaluation)
 */
export async function decide(
  c: { params: Params; stage: PolicyStage; facts: Facts; dns?: Zone },
): Promise<{ decision: Decision; warnings: string[] }> {
  const warnings: string[] = [];
  const loaded = resolveConfigText(toml({ ...BASE, ...c.params }), {
    systemHostname: "mx.example.com",
    file: "test.toml",
  });
  const policy = compilePolicy(loaded, {
    dns: fakeDns(c.dns ?? {}),
    warn: (t) => warnings.push(t),
  });
  const decision = await policy.check(c.stage, context(c.facts));
  // WARN and warn_if_reject are logged by the session ("warn:",
  // "reject_warning:"); here they count among the warnings.
  for (const e of decision.effects ?? []) {
    if (e.kind === "warn" || e.kind === "reject_warning") warnings.push(`${e.kind}: ${e.text}`);
  }
  return { decision, warnings };
}

/** One case of a table: what it does, its facts, what it expects, and what it changes. */
export type Row<C> = [does: string, facts: Facts, expect: string | RegExp, more?: Partial<C>];

/**
 * Cases that share parameters, stage and DNS.
 * @param shared what the rows share
 * @param list the rows
 * @returns the cases, each row's params over the shared ones
 */
export function rows<
  C extends { does: string; facts: Facts; expect: string | RegExp; params: Params },
>(
  shared: Omit<C, "does" | "facts" | "expect">,
  list: Row<C>[],
): C[] {
  return list.map(([does, facts, expect, more]) =>
    ({
      ...shared,
      does,
      facts,
      expect,
      ...more,
      params: { ...shared.params, ...more?.params },
    }) as C
  );
}
