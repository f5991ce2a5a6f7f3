/**
 * Cleanup: turns an envelope and body into one durable queue file.
 *
 * @module
 */

export { Cleanup, DRAFT_FIRST_MEMORY, MessageDraft, UNLIMITED } from "./cleanup.ts";
export type {
  CleanupConfig,
  CleanupResult,
  MemoryReservation,
  MessageEnvelope,
  MessageOrigin,
  MessageRouting,
} from "./cleanup.ts";
export { compactStamp, formatRfc5322Date } from "./rfc5322_date.ts";
