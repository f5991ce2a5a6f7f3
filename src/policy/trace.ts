/**
 * What an evaluation did, step by step, for `smtpd explain` (and verbose
 * logs): each stage, each restriction tried, each table key looked up, each
 * DNS query and its answer, and each restriction's result.
 *
 * @module
 */

/** One step of an evaluation. */
export type TraceEvent =
  | { kind: "stage"; stage: string; list: string[] }
  | { kind: "restriction"; name: string; depth: number }
  | { kind: "lookup"; table: string; key: string; result: string }
  | { kind: "dns"; query: string; type: string; answer: string }
  | { kind: "result"; name: string; result: string; reply?: string }
  | { kind: "note"; text: string };

/** Collects trace events. */
export class Trace {
  readonly events: TraceEvent[] = [];

  /** Records one event. */
  add(event: TraceEvent): void {
    this.events.push(event);
  }
}
