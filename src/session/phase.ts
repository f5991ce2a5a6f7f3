/**
 * Where a session stands. The phase is explicit, never inferred from which
 * fields happen to be set: connected (no accepted HELO/EHLO yet), greeted
 * (HELO/EHLO accepted), or inside a mail transaction. MAIL is allowed
 * before HELO unless smtpd_helo_required is set, so a transaction keeps
 * the HELO name it started with, or none.
 *
 * @module
 */

import type { Transaction } from "./transaction.ts";

/** The session phase. */
export type SessionPhase =
  | { readonly kind: "connected" }
  | { readonly kind: "greeted"; readonly helo: string }
  | { readonly kind: "inMail"; readonly helo: string | undefined; readonly tx: Transaction };

/** The name of a phase, as the command table lists them. */
export type PhaseKind = SessionPhase["kind"];

/**
 * The HELO/EHLO name the client gave, if any.
 * @param phase the phase
 * @returns the name, or undefined before HELO/EHLO
 */
export function heloName(phase: SessionPhase): string | undefined {
  return phase.kind === "connected" ? undefined : phase.helo;
}

/**
 * The phase after a transaction ends (RSET, end of DATA): greeted when the
 * client gave HELO/EHLO, otherwise connected.
 * @param phase the phase
 * @returns the phase outside a transaction
 */
export function outsideTransaction(phase: SessionPhase): SessionPhase {
  if (phase.kind !== "inMail") return phase;
  return phase.helo === undefined ? { kind: "connected" } : { kind: "greeted", helo: phase.helo };
}
