/**
 * Triggers for ETRN (flush) and queue wakeups.
 *
 * @module
 */

export {
  FLUSH_REQUEST,
  qmgrFlushTrigger,
  triggerEndpoint,
  WAKEUP_REQUEST,
  wakeupTrigger,
} from "./flush_trigger.ts";
export type { FlushOutcome, FlushTrigger, Wakeup } from "./flush_trigger.ts";
export { TriggerClock, TriggerGate } from "./trigger_gate.ts";
export type { GateOutcome, TriggerGateOptions } from "./trigger_gate.ts";
