/**
 * The hostile-client harness (`deno task hostile`): the real server under
 * attack on loopback while a legitimate stream keeps sending.
 *
 * @module
 */

export { runHostile } from "./run.ts";
export type { HostileOptions, HostileReport } from "./run.ts";
export { failures, formatReport, TARGETS } from "./report.ts";
export type { Row } from "./report.ts";
export { ATTACKS } from "./attacks/mod.ts";
export type { Attack, AttackContext, AttackOutcome, Check } from "./attack.ts";
