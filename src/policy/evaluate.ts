/**
 * The policy the session consults at each SMTP stage. With
 * smtpd_delay_reject (the default) the client, HELO and sender lists run
 * at RCPT (and VRFY, ETRN) time, as in Postfix; otherwise each list runs
 * at its own command. At RCPT, smtpd_relay_restrictions run before
 * smtpd_recipient_restrictions (Postfix 3.6's
 * smtpd_relay_before_recipient_restrictions = yes); both run unless one
 * refuses. DATA and the end of data have their own lists.
 * A "permit" ends only its own list. A temporary
 * lookup failure never becomes a permit: if nothing rejects, the stage
 * answers with the deferred reply (Postfix's defer_if_permit). RCPT TO and
 * VRFY of an unqualified "postmaster" are accepted before any list runs.
 *
 * @module
 */

import { type CompiledLists, evaluateList, type ListParam } from "./lists.ts";
import type { PolicyContext, PolicyStage } from "./context.ts";
import type { Decision, Verdict } from "./decision.ts";
import { cachingResolver, type DnsResolver } from "./resolver.ts";
import type { EvalEnv } from "./restriction.ts";
import { ResolveMemo } from "./resolve_memo.ts";
import type { Trace } from "./trace.ts";

/** Per-check options. */
export interface CheckOptions {
  /** Records every step (smtpd explain, verbose logs). */
  trace?: Trace;
  /** The session's DNS cache (defaults to a fresh one). */
  dns?: DnsResolver;
  /** How the sleep restriction pauses (defaults to a timer; smtpd explain does not wait). */
  sleep?: (ms: number) => Promise<void>;
}

/** Runs the restrictions of a stage. */
export interface Policy {
  /**
   * Evaluates a stage.
   * @param stage the SMTP stage
   * @param ctx the session facts
   * @param options trace and DNS cache
   * @returns the decision, with the access actions met (HOLD, DISCARD, PREPEND, INFO)
   */
  check(stage: PolicyStage, ctx: PolicyContext, options?: CheckOptions): Promise<Verdict>;
  /**
   * A per-session caching resolver over the policy's DNS.
   * @param gone aborted when the session's client is gone: its lookups end
   * @param waiting told when the session starts and stops waiting on DNS
   */
  sessionResolver(gone?: AbortSignal, waiting?: (on: boolean) => void): DnsResolver;
  /**
   * Whether checking a stage runs no restriction at all (its lists are
   * empty, or delayed to RCPT by smtpd_delay_reject, and no check runs
   * after them): then it can only permit, with no access action, and the
   * session does not gather its facts (HELO and MAIL did, for every command).
   * @param stage the SMTP stage
   */
  runsNothing(stage: PolicyStage): boolean;
}

const STAGE_OF: Record<ListParam, PolicyStage> = {
  "smtpd_client_restrictions": "client",
  "smtpd_helo_restrictions": "helo",
  "smtpd_sender_restrictions": "sender",
  "smtpd_relay_restrictions": "recipient",
  "smtpd_recipient_restrictions": "recipient",
  "smtpd_etrn_restrictions": "etrn",
  "smtpd_data_restrictions": "data",
  "smtpd_end_of_data_restrictions": "eod",
};

/**
 * Which lists run at a stage.
 * @param stage the SMTP stage
 * @param delay smtpd_delay_reject
 * @returns the list parameters in order
 */
export function listsFor(stage: PolicyStage, delay: boolean): ListParam[] {
  const early: ListParam[] = [
    "smtpd_client_restrictions",
    "smtpd_helo_restrictions",
    "smtpd_sender_restrictions",
  ];
  switch (stage) {
    case "client":
      return delay ? [] : ["smtpd_client_restrictions"];
    case "helo":
      return delay ? [] : ["smtpd_helo_restrictions"];
    case "sender":
      return delay ? [] : ["smtpd_sender_restrictions"];
    case "recipient":
    case "vrfy":
      return [
        ...(delay ? early : []),
        "smtpd_relay_restrictions",
        "smtpd_recipient_restrictions",
      ];
    case "etrn":
      return delay
        ? ["smtpd_client_restrictions", "smtpd_helo_restrictions", "smtpd_etrn_restrictions"]
        : ["smtpd_etrn_restrictions"];
    case "data":
      return ["smtpd_data_restrictions"];
    case "eod":
      return ["smtpd_end_of_data_restrictions"];
  }
}

function isBarePostmaster(ctx: PolicyContext): boolean {
  const r = ctx.recipient;
  return r !== undefined && r.domain === "" && r.local.toLowerCase() === "postmaster";
}

/** Evaluates compiled lists. */
export class CompiledPolicy implements Policy {
  readonly lists: CompiledLists;
  #delay: boolean;
  #dns: DnsResolver;
  #warn: (text: string) => void;
  /** {@linkcode runsNothing}'s answers (the lists never change: a reload makes a new policy). */
  #quiet = new Map<PolicyStage, boolean>();

  /**
   * @param lists the compiled lists
   * @param options delay_reject, the resolver and a warning sink
   */
  constructor(
    lists: CompiledLists,
    options: { delay: boolean; dns: DnsResolver; warn: (text: string) => void },
  ) {
    this.lists = lists;
    this.#delay = options.delay;
    this.#dns = options.dns;
    this.#warn = options.warn;
  }

  sessionResolver(gone?: AbortSignal, waiting?: (on: boolean) => void): DnsResolver {
    return cachingResolver(this.#dns, {}, gone, waiting);
  }

  runsNothing(stage: PolicyStage): boolean {
    let quiet = this.#quiet.get(stage);
    if (quiet === undefined) {
      const lists = listsFor(stage, this.#delay);
      // (RCPT and VRFY have the postmaster rule and the unlisted recipient check.)
      quiet = stage !== "recipient" && stage !== "vrfy" &&
        !(this.lists.implicit?.sender && lists.includes("smtpd_sender_restrictions")) &&
        lists.every((key) => this.lists[key].length === 0);
      this.#quiet.set(stage, quiet);
    }
    return quiet;
  }

  async check(
    stage: PolicyStage,
    ctx: PolicyContext,
    options: CheckOptions = {},
  ): Promise<Verdict> {
    const env = this.#env(stage, ctx, options);
    const d = await this.#decide(stage, ctx, env, options);
    return env.effects?.length ? { ...d, effects: env.effects } : d;
  }

  #env(stage: PolicyStage, ctx: PolicyContext, options: CheckOptions): EvalEnv {
    return {
      ctx,
      stage,
      dns: options.dns ?? this.sessionResolver(),
      trace: options.trace,
      warn: this.#warn,
      deferIfPermit: undefined,
      depth: 0,
      ...(options.sleep ? { sleep: options.sleep } : {}),
      // One memo per stage evaluation: nothing crosses stages, sessions or a reload.
      resolved: new ResolveMemo(),
    };
  }

  async #decide(
    stage: PolicyStage,
    ctx: PolicyContext,
    env: EvalEnv,
    options: CheckOptions,
  ): Promise<Decision> {
    // RFC 5321 §4.5.1: "postmaster" without a domain is accepted before any
    // restriction (Postfix's smtpd_check_rcpt does the same, for RCPT and VRFY).
    if ((stage === "recipient" || stage === "vrfy") && isBarePostmaster(ctx)) {
      options.trace?.add({ kind: "note", text: "postmaster is accepted before any restriction" });
      return { kind: "permit", by: "unqualified postmaster" };
    }
    const lists = listsFor(stage, this.#delay);
    for (const key of lists) {
      const list = this.lists[key];
      options.trace?.add({ kind: "stage", stage: key, list: list.map((r) => r.name) });
      env.stage = STAGE_OF[key] === "recipient" && stage === "vrfy" ? "vrfy" : STAGE_OF[key];
      env.deferIfReject = undefined; // Postfix's defer_if_reject lasts one list
      let d = await evaluateList(list, env);
      if (d.kind === "reject" && env.deferIfReject) {
        d = { kind: "defer", reply: env.deferIfReject, by: `defer_if_reject (${d.by})` };
      }
      if (d.kind === "reject" || d.kind === "defer") return { ...d, by: `${key}: ${d.by}` };
    }
    if (env.deferIfPermit) {
      return { kind: "defer", reply: env.deferIfPermit, by: "defer_if_permit" };
    }
    // smtpd_reject_unlisted_sender / _recipient: after the lists, even a
    // permit (Postfix's smtpd_check_mail and smtpd_check_rcpt).
    const implicit = this.lists.implicit;
    const checks = [
      ...(implicit?.sender && lists.includes("smtpd_sender_restrictions") && stage !== "vrfy"
        ? [implicit.sender]
        : []),
      ...(implicit?.recipient && (stage === "recipient" || stage === "vrfy")
        ? [implicit.recipient]
        : []),
    ];
    for (const check of checks) {
      options.trace?.add({ kind: "stage", stage: check.name, list: ["yes"] });
      env.stage = check === implicit?.sender ? "sender" : stage;
      const d = await evaluateList([check], env);
      if (d.kind === "reject" || d.kind === "defer") return d;
    }
    return { kind: "permit", by: "end of lists" };
  }
}
