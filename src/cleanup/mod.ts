/**
 * Cleanup: turns an envelope and body into one durable queue file.
 *
 * @module
 */

export { Cleanup, MessageDraft } from "./cleanup.ts";
export type { CleanupConfig, CleanupResult, MessageEnvelope, MessageOrigin } from "./cleanup.ts";
export { compactStamp, formatRfc5322Date } from "./rfc5322_date.ts";
