/**
 * The access(5) actions that act on the message instead of deciding:
 * HOLD (the queue file goes to hold/), DISCARD (the message is accepted
 * and thrown away; the list ends as with OK), PREPEND (a header above our
 * Received:), INFO (a log line), DEFER_IF_REJECT (a later reject in the
 * same list becomes 450), and FILTER, REDIRECT and BCC (records in the
 * queue file that Postfix's qmgr acts on: a content filter, the one
 * address all mail goes to, one more recipient). As in Postfix's
 * smtpd_check.c, HOLD, DISCARD, PREPEND, FILTER, REDIRECT and BCC are
 * skipped with a warning where no mail transaction exists (client and
 * HELO lists with smtpd_delay_reject = no, ETRN), and PREPEND after the
 * end of data. The effects are collected in the evaluation and applied by
 * the session ({@linkcode MessageEffect}).
 *
 * @module
 */

import type { Action } from "./access.ts";
import type { MessageEffect } from "./decision.ts";
import { type CompileEnv, type EvalEnv, refusal, subjectLabel } from "./restriction.ts";

/**
 * Whether a text is a header line ("Name: value"), as Postfix's is_header().
 * @param text the text
 * @returns true for a header
 */
export function isHeaderText(text: string): boolean {
  return /^[!-9;-~]+[ \t]*:/.test(text);
}

/** The actions whose argument Postfix's smtpd passes on to its cleanup. */
type Delegated = "FILTER" | "REDIRECT" | "BCC";

/**
 * What is wrong with the argument of FILTER, REDIRECT or BCC, as Postfix's
 * smtpd_check.c judges it: FILTER needs `transport:destination` (a colon;
 * the destination may be empty), REDIRECT and BCC an address with "@".
 * @param action the action word, upper case
 * @param arg the text after it
 * @returns the problem, or undefined when the argument will do
 */
export function delegatedProblem(action: Delegated, arg: string): string | undefined {
  if (action === "FILTER") {
    if (arg === "") return "has FILTER entry without value";
    return arg.includes(":") ? undefined : "requires transport:destination";
  }
  return arg.includes("@") ? undefined : "requires user@domain target";
}

/**
 * FILTER, REDIRECT or BCC. A malformed argument stops the start (file and
 * line); one known only at run time is skipped with Postfix's warning.
 */
function delegated(action: Delegated, rest: string, env: CompileEnv, where: string): Action {
  const problem = delegatedProblem(action, rest);
  const value = `${action} ${rest}`.trim();
  if (problem && !env.runtime) env.fail(`${where}: action "${value}" ${problem}`);
  const kind = action === "FILTER" ? "filter" : action === "REDIRECT" ? "redirect" : "bcc";
  return (e, s, by) => {
    if (outsideMail(e, action, by)) return Promise.resolve({ kind: "dunno" });
    if (problem) {
      e.warn(`access table ${by}: entry "${value}" ${problem}`);
      return Promise.resolve({ kind: "dunno" });
    }
    add(e, { kind, text: `${subjectLabel(s, e.ctx)} triggers ${value}`, target: rest });
    return Promise.resolve({ kind: "dunno" });
  };
}

function add(e: EvalEnv, effect: MessageEffect): void {
  (e.effects ??= []).push(effect);
  e.trace?.add({
    kind: "note",
    text: `access action ${effect.kind.toUpperCase()}: ${
      effect.kind === "prepend" ? effect.header : effect.text
    }`,
  });
}

/**
 * Postfix's can_delegate_action/not_in_client_helo: an action that needs a
 * mail transaction is skipped, with a warning, where there is none.
 */
function outsideMail(e: EvalEnv, action: string, by: string): boolean {
  if (e.stage === "etrn") {
    e.warn(`access table ${by}: action ${action} is unavailable in smtpd_etrn_restrictions`);
    return true;
  }
  if (e.ctx.sender === undefined) {
    e.warn(
      `access table ${by}: with smtpd_delay_reject=no, action ${action} is always skipped in client or helo restrictions`,
    );
    return true;
  }
  return false;
}

/**
 * Compiles HOLD, DISCARD, PREPEND, INFO, DEFER_IF_REJECT, FILTER, REDIRECT or BCC.
 * @param upper the action word, upper case
 * @param rest the text after it
 * @param env the compile environment (reply codes; refuses a PREPEND without
 *   a header, a FILTER without a colon, a REDIRECT or BCC without "@")
 * @param where the table, for errors
 * @returns the action, or undefined for another word
 */
export function messageAction(
  upper: string,
  rest: string,
  env: CompileEnv,
  where: string,
): Action | undefined {
  switch (upper) {
    case "HOLD":
      return (e, s, by) => {
        const already = e.ctx.held || e.effects?.some((x) => x.kind === "hold");
        if (outsideMail(e, "HOLD", by) || already) {
          return Promise.resolve({ kind: "dunno" });
        }
        add(e, {
          kind: "hold",
          text: `${subjectLabel(s, e.ctx)} ${rest || "triggers HOLD action"}`,
        });
        return Promise.resolve({ kind: "dunno" });
      };
    case "DISCARD":
      return (e, s, by) => {
        if (outsideMail(e, "DISCARD", by)) return Promise.resolve({ kind: "dunno" });
        add(e, {
          kind: "discard",
          text: `${subjectLabel(s, e.ctx)} ${rest || "triggers DISCARD action"}`,
        });
        return Promise.resolve({ kind: "permit", by });
      };
    case "PREPEND": {
      // Known only at run time (a policy reply, a $n result), a value
      // without a header is skipped with Postfix's warning, as there.
      const header = isHeaderText(rest);
      if (!header && !env.runtime) {
        env.fail(`${where}: action "PREPEND ${rest}" requires header: text`);
      }
      return (e, _s, by) => {
        if (!header) {
          e.warn(`access table ${by}: entry "${`PREPEND ${rest}`.trim()}" requires header: text`);
        } else if (e.stage === "eod") {
          e.warn(
            `access table ${by}: action PREPEND must be used before smtpd_end_of_data_restrictions`,
          );
        } else if (!outsideMail(e, "PREPEND", by)) {
          add(e, { kind: "prepend", header: rest });
        }
        return Promise.resolve({ kind: "dunno" });
      };
    }
    case "INFO":
      return (e) => {
        add(e, { kind: "info", text: rest });
        return Promise.resolve({ kind: "dunno" });
      };
    case "FILTER":
    case "REDIRECT":
    case "BCC":
      return delegated(upper, rest, env, where);
    case "DEFER_IF_REJECT":
      return (e, s) => {
        // Postfix's access_map_defer_code (450; DEFER uses the same).
        e.deferIfReject ??= refusal(450, "7.1", s, e.ctx, rest || "Service unavailable");
        return Promise.resolve({ kind: "dunno" });
      };
    default:
      return undefined;
  }
}
