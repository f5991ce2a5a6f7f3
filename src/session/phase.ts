/**
 * Where a session stands. The phase is explicit, never inferred from which
 * fields happen to be set.
 *
 * @module
 */

import type { Transaction } from "./transaction.ts";

/** The session phase: outside a transaction, or inside one. */
export type SessionPhase =
  | { readonly kind: "ready" }
  | { readonly kind: "inMail"; readonly tx: Transaction };
