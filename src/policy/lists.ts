/**
 * The restriction lists of the manual and how a compiled list runs: the
 * first restriction that does not answer "dunno" decides. Shared by the
 * compiler (restriction classes run a list) and the policy.
 *
 * @module
 */

import type { Decision } from "./decision.ts";
import type { EvalEnv, Restriction } from "./restriction.ts";

/** The five lists of the manual. */
export const LIST_PARAMS = [
  "smtpd_client_restrictions",
  "smtpd_helo_restrictions",
  "smtpd_sender_restrictions",
  "smtpd_recipient_restrictions",
  "smtpd_etrn_restrictions",
] as const;

/** A list parameter name. */
export type ListParam = (typeof LIST_PARAMS)[number];

/**
 * Checks that run after the lists of a stage (smtpd_reject_unlisted_recipient,
 * smtpd_reject_unlisted_sender), when the lists did not refuse.
 */
export interface ImplicitChecks {
  readonly recipient?: Restriction;
  readonly sender?: Restriction;
}

/** The compiled lists. */
export type CompiledLists = Readonly<Record<ListParam, readonly Restriction[]>> & {
  readonly implicit?: ImplicitChecks;
};

/**
 * Evaluates a list: the first restriction that is not "dunno" decides.
 * @param list the restrictions
 * @param env the evaluation
 * @returns the decision ("dunno" when none decided)
 */
export async function evaluateList(list: readonly Restriction[], env: EvalEnv): Promise<Decision> {
  if (env.depth > 20) throw new Error("restriction nesting too deep");
  env.depth++;
  try {
    for (const r of list) {
      env.trace?.add({ kind: "restriction", name: r.name, depth: env.depth });
      const d = await r.run(env);
      if (env.trace && d.kind !== "dunno") {
        env.trace.add({
          kind: "result",
          name: r.name,
          result: d.kind,
          ...(d.kind === "reject" || d.kind === "defer"
            ? { reply: `${d.reply.code} ${d.reply.text}` }
            : {}),
        });
      }
      if (d.kind !== "dunno") return d;
    }
    return { kind: "dunno" };
  } finally {
    env.depth--;
  }
}
