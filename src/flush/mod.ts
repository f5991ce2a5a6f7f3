/**
 * Flush triggers for ETRN.
 *
 * @module
 */

export type { FlushOutcome, FlushTrigger } from "./flush_trigger.ts";
