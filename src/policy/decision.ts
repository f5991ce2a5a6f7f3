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
