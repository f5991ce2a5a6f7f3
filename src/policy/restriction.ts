/**
 * The shape of a compiled restriction and the helpers restrictions share:
 * building refusal replies from the `*_reject_code` parameters, and the
 * per-evaluation environment (session facts, DNS, trace, defer-if-permit).
 *
 * @module
 */

import type { Config } from "../config/mod.ts";
import { addressText } from "../protocol/address.ts";
import { type Reply, reply, type ReplyCode } from "../protocol/reply.ts";
import type { PolicyContext, PolicyStage } from "./context.ts";
import type { Decision, MessageEffect } from "./decision.ts";
import type { DnsAnswer, DnsResolver, DnsType } from "./resolver.ts";
import type { LookupResult, LookupTable } from "./tables/mod.ts";
import type { Trace } from "./trace.ts";
import type { Network } from "./cidr.ts";
import type { Destinations } from "./destinations.ts";
import type { ResolveMemo } from "./resolve_memo.ts";

/** One evaluation's environment. */
export interface EvalEnv {
  readonly ctx: PolicyContext;
  /** The list being evaluated (decides the wording of generic refusals). */
  stage: PolicyStage;
  readonly dns: DnsResolver;
  readonly trace: Trace | undefined;
  readonly warn: (text: string) => void;
  /** Set when a lookup failed temporarily: a later permit becomes this reply. */
  deferIfPermit: Reply | undefined;
  /** Set when a lookup failed temporarily: a later 5xx in the same list becomes this reply. */
  deferIfReject?: Reply | undefined;
  /** Nesting depth (restriction lists inside table values and classes). */
  depth: number;
  /** Access actions that change the message (HOLD, DISCARD, PREPEND, FILTER, ...), in order. */
  effects?: MessageEffect[];
  /** Pauses the evaluation (the sleep restriction); smtpd explain passes one that does not wait. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** The addresses this evaluation has resolved (each resolved once per stage). */
  readonly resolved?: ResolveMemo;
}

/** A restriction compiled at start-up. */
export interface Restriction {
  /** The name as written in the configuration (with its argument). */
  readonly name: string;
  run(env: EvalEnv): Promise<Decision>;
}

/** The subject a refusal names: "Client host", "Sender address", ... */
export type Subject =
  | "client"
  | "reverse_client"
  | "helo"
  | "sender"
  | "recipient"
  | "etrn"
  | "data"
  | "eod";

const SUBJECT_TEXT: Record<Subject, string> = {
  client: "Client host",
  "reverse_client": "Unverified Client host",
  helo: "Helo command",
  sender: "Sender address",
  recipient: "Recipient address",
  etrn: "Etrn command",
  data: "Data command",
  eod: "End-of-data",
};

/**
 * The subject a list stage speaks for.
 * @param stage the stage
 * @returns the subject
 */
export function stageSubject(stage: PolicyStage): Exclude<Subject, "reverse_client"> {
  return stage === "vrfy" ? "recipient" : stage;
}

/**
 * The "<name>" a refusal shows for a subject.
 * @param subject what is refused
 * @param ctx the facts
 * @returns the name without brackets
 */
export function subjectName(subject: Subject, ctx: PolicyContext): string {
  switch (subject) {
    case "client":
      return `${ctx.clientName}[${ctx.clientAddress}]`;
    case "reverse_client":
      return ctx.reverseName;
    case "helo":
      return ctx.helo ?? "";
    case "sender":
      return ctx.sender ? addressText(ctx.sender) : "";
    case "recipient":
      return ctx.recipient ? addressText(ctx.recipient) : "";
    case "etrn":
      return ctx.etrnDomain ?? "";
    case "data":
      return "DATA";
    case "eod":
      return "END-OF-MESSAGE";
  }
}

/**
 * "<name>: Subject" as Postfix's access actions log it ("<a@b>: Recipient
 * address triggers HOLD action").
 * @param subject what the action is about
 * @param ctx the facts
 * @returns the text
 */
export function subjectLabel(subject: Subject, ctx: PolicyContext): string {
  return `<${subjectName(subject, ctx)}>: ${SUBJECT_TEXT[subject]}`;
}

/**
 * Builds "<name>: Subject rejected: text" with a configured code. An
 * enhanced code at the start of the text ("5.7.1 ...") is used and removed,
 * fitted to the subject ({@linkcode fitDetail}).
 * @param code the reply code (from a *_reject_code parameter)
 * @param detail the default enhanced subject.detail
 * @param subject what is refused
 * @param ctx the facts
 * @param text the reason
 * @returns the reply
 */
export function refusal(
  code: number,
  detail: `${number}.${number}`,
  subject: Subject,
  ctx: PolicyContext,
  text: string,
): Reply {
  const m = /^[245]\.(\d{1,3}\.\d{1,3})\s+(.*)$/s.exec(text);
  const d = (m ? fitDetail(m[1] as string, subject) : detail) as `${number}.${number}`;
  const t = m ? (m[2] as string) : text;
  return reply(
    code as ReplyCode,
    d,
    `<${subjectName(subject, ctx)}>: ${SUBJECT_TEXT[subject]} rejected: ${t}`,
  );
}

// Postfix's smtpd_dsn_fix table: the last digit of an X.1.x address
// status, as a sender status and as a recipient status.
const SENDER_DSN: Record<string, string> = {
  "1": "1.7",
  "2": "1.8",
  "3": "1.7",
  "4": "1.7",
  "5": "1.0",
  "6": "1.7",
  "7": "1.7",
  "8": "1.8",
};
const RECIPIENT_DSN: Record<string, string> = {
  "1": "1.1",
  "2": "1.2",
  "3": "1.3",
  "4": "1.4",
  "5": "1.5",
  "6": "1.6",
  "7": "1.3",
  "8": "1.2",
};

/**
 * Fits an address status written in a table to what is refused, as
 * Postfix's smtpd_dsn_fix does: X.1.x becomes the matching sender status
 * for a sender (X.1.1 → X.1.7), the matching recipient status for a
 * recipient (X.1.8 → X.1.2), and X.0.0 for anything else (client, HELO,
 * ETRN); other statuses are kept.
 * @param detail subject.detail as written, e.g. "1.1"
 * @param subject what is refused
 * @returns the fitted subject.detail
 */
export function fitDetail(detail: string, subject: Subject): string {
  const m = /^1\.(\d{1,3})$/.exec(detail);
  if (!m) return detail;
  const last = m[1] as string;
  if (subject === "sender") return SENDER_DSN[last] ?? "1.0";
  if (subject === "recipient") return RECIPIENT_DSN[last] ?? "1.0";
  return "0.0";
}

/**
 * Turns a reply code into "reject" or "defer" by its class.
 * @param r the reply
 * @param by who decided
 * @returns the decision
 */
export function refuse(r: Reply, by: string): Decision {
  return r.code >= 500 ? { kind: "reject", reply: r, by } : { kind: "defer", reply: r, by };
}

/** The part of an evaluation a table lookup uses: the trace. */
export type TraceEnv = Pick<EvalEnv, "trace">;

/**
 * Looks a key up and records it in the trace.
 * @param env the evaluation (only its trace is used)
 * @param table the table
 * @param key the key
 * @returns the result
 */
export async function tracedLookup(
  env: TraceEnv,
  table: LookupTable,
  key: string,
): Promise<LookupResult> {
  const r = await table.lookup(key);
  env.trace?.add({
    kind: "lookup",
    table: table.name,
    key,
    result: r.kind === "found"
      ? `found: ${r.value}`
      : r.kind === "tempfail"
      ? `temporary failure: ${r.reason}`
      : "not found",
  });
  return r;
}

/**
 * Queries the DNS and records it in the trace.
 * @param env the evaluation
 * @param name the query name
 * @param type the record type
 * @param confirm a "not found" refuses mail (see DnsResolver.query)
 * @returns the answer
 */
export async function tracedDns(
  env: EvalEnv,
  name: string,
  type: DnsType,
  confirm?: boolean,
): Promise<DnsAnswer> {
  const a = await env.dns.query(name, type, confirm);
  env.trace?.add({
    kind: "dns",
    query: name,
    type,
    answer: a.kind === "ok"
      ? a.records.join(", ")
      : a.kind === "tempfail"
      ? `temporary failure (${a.reason})`
      : a.kind === "filtered"
      ? "every record dropped by smtpd_dns_reply_filter"
      : "not found",
  });
  return a;
}

/** What restriction factories get at start-up. */
export interface CompileEnv {
  readonly config: Config;
  /** mynetworks, compiled once for the whole policy. */
  readonly mynetworks: readonly Network[];
  /** mydestination, relay_domains and the virtual domains, compiled once. */
  readonly destinations: Destinations;
  /**
   * The values compiled are known only at run time (a policy server's
   * reply, a socketmap value, a $n result): a malformed FILTER, REDIRECT
   * or BCC is then skipped with Postfix's warning instead of failing.
   */
  readonly runtime?: boolean;
  /**
   * Reports a problem in the list being compiled (throws ConfigError), at
   * the line of `item` when the list is written over several lines.
   */
  fail(message: string, item?: string): never;
  /** Logs a start-up warning. */
  warn(message: string): void;
  /** Opens (once) and returns a table. */
  table(spec: string): LookupTable;
  /** Compiles a nested restriction list (table values, classes). */
  compileList(items: readonly string[], where: string): Restriction[];
  /** Evaluates a nested list. */
  evaluateList(list: readonly Restriction[], env: EvalEnv): Promise<Decision>;
}

/** How a restriction is built. */
export interface Factory {
  /** The restriction takes the next list item as its argument. */
  readonly arg?: "table" | "zone" | "service" | "seconds";
  /** Old names that still work, with a warning naming this one. */
  readonly aliases?: readonly string[];
  /** This name itself is old: the warning names what replaces it. */
  readonly replacedBy?: string;
  make(name: string, arg: string | undefined, env: CompileEnv): Restriction;
}
