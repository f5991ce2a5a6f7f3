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
 * header above our Received:), INFO (a log line only), and FILTER,
 * REDIRECT and BCC (records in the queue file for Postfix's qmgr: a
 * content filter `transport:destination`, the one address all mail goes
 * to instead, one more recipient). `text` is what the "hold:",
 * "discard:", "info:", "filter:", "redirect:" or "bcc:" log line says, as
 * Postfix's log_whatsup writes it; `target` is the action's argument.
 */
export type MessageEffect =
  | {
    readonly kind: "hold" | "discard" | "info" | "warn" | "reject_warning";
    readonly text: string;
  }
  | { readonly kind: "prepend"; readonly header: string }
  | {
    readonly kind: "filter" | "redirect" | "bcc";
    readonly text: string;
    readonly target: string;
  };

/** A stage's outcome: the decision and the access actions met on the way. */
export type Verdict = Decision & { readonly effects?: readonly MessageEffect[] };
