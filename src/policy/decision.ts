/**
 * The outcome of a restriction or a whole list.
 *
 * @module
 */

import type { Reply } from "../protocol/reply.ts";

/** What a restriction decided. */
export type Decision =
  | { kind: "permit"; by: string }
  | { kind: "dunno" }
  | { kind: "reject"; reply: Reply; by: string }
  | { kind: "defer"; reply: Reply; by: string };

/**
 * What an access action asks of the message, beyond the decision: HOLD
 * (the file goes to hold/), DISCARD (accepted, not queued), PREPEND (a
 * header above our Received:), and INFO (a log line only). `text` is what
 * the "hold:", "discard:" or "info:" log line says, as Postfix's
 * log_whatsup writes it.
 */
export type MessageEffect =
  | { readonly kind: "hold" | "discard" | "info"; readonly text: string }
  | { readonly kind: "prepend"; readonly header: string };

/** A stage's outcome: the decision and the access actions met on the way. */
export type Verdict = Decision & { readonly effects?: readonly MessageEffect[] };
