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

/**
 * One trace event as one line of text (verbose logs).
 * @param ev the event
 * @returns the line
 */
export function describeTraceEvent(ev: TraceEvent): string {
  switch (ev.kind) {
    case "stage":
      return `${ev.stage} = ${ev.list.length ? ev.list.join(", ") : "(empty)"}`;
    case "restriction":
      return `${"  ".repeat(Math.max(0, ev.depth - 1))}try ${ev.name}`;
    case "lookup":
      return `lookup ${ev.table} key "${ev.key}": ${ev.result}`;
    case "dns":
      return `dns ${ev.type} ${ev.query}: ${ev.answer}`;
    case "result":
      return `${ev.name} => ${ev.result}${ev.reply ? `: ${ev.reply}` : ""}`;
    case "note":
      return ev.text;
  }
}
