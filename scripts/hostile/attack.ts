/**
 * What an attack is: a function that runs against one server instance
 * until the harness ends its window (an AbortSignal), then closes every
 * connection it opened and reports its own checks. Attackers come from
 * addresses in 127.0.0.0/8 other than 127.0.0.1 (the legitimate stream's),
 * outside `mynetworks`, each attack from its own /24.
 *
 * @module
 */

import type { FoundFile, Ledger } from "./ledger.ts";
import type { ServerUnderTest } from "./server.ts";
import { SmtpConn } from "./smtp_conn.ts";

/** One pass/fail finding of an attack beyond the common targets. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** What an attack hands back when its window ends. */
export interface AttackOutcome {
  /** Findings that decide the verdict. */
  checks: Check[];
  /** What happened, for the reader. */
  notes: string[];
  /** Runs after the sweep, on the files it found (e.g. no smuggled message). */
  verify?: (files: readonly FoundFile[]) => Check[];
}

/** What an attack gets. */
export interface AttackContext {
  /** The target's port on 127.0.0.1. */
  port: number;
  /** The target. */
  server: ServerUnderTest;
  /** The target's acknowledgement ledger (for queue IDs the attackers get). */
  ledger: Ledger;
  /** Short form (--quick): fewer rounds, same strength. */
  quick: boolean;
  /** Aborted when the window ends. */
  signal: AbortSignal;
  /** Call when the attack is at full strength (the window's minimum runs from here). */
  ready(): void;
  /**
   * An attacker source address.
   * @param host 0..253, which host of the attack's /24
   * @returns e.g. "127.0.12.3"
   */
  address(host: number): string;
  /** Resolves when the window ends. */
  ended: Promise<void>;
}

/** One attack. */
export interface Attack {
  /** Name for --only and the table. */
  readonly name: string;
  /** One line: what it does. */
  readonly summary: string;
  /** Which instance: the main one (STARTTLS offered) or the PROXY one. */
  readonly target: "main" | "proxy";
  /**
   * Shortest window in the short form (--quick), ms from full strength
   * (default 1500): longer where lock-outs take seconds to show.
   */
  readonly quickMinMs?: number;
  /**
   * Runs until `ctx.signal` aborts, then closes its connections.
   * @param ctx the context
   * @returns checks and notes
   */
  run(ctx: AttackContext): Promise<AttackOutcome>;
}

/**
 * Sleeps, returning early when the signal aborts.
 * @param ms how long
 * @param signal the window's signal
 */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

/**
 * Opens a connection from an address and reads the greeting.
 * @param ctx the attack context
 * @param from the source address
 * @param timeoutMs longest wait for the greeting
 * @returns the connection and its greeting ("" when none), or undefined when it could not connect
 */
export async function openGreeted(
  ctx: AttackContext,
  from: string,
  timeoutMs = 5000,
): Promise<{ conn: SmtpConn; greeting: string } | undefined> {
  const conn = await SmtpConn.open({ port: ctx.port, localAddress: from }).catch(() => undefined);
  if (!conn) return undefined;
  const greeting = await conn.reply(timeoutMs);
  return { conn, greeting };
}

/**
 * Sends a command and reads its reply.
 * @param conn the connection
 * @param line the command, without CRLF
 * @param timeoutMs longest wait
 * @returns the reply ("" when none)
 */
export async function command(conn: SmtpConn, line: string, timeoutMs = 10000): Promise<string> {
  if (!(await conn.write(`${line}\r\n`))) return "";
  return await conn.reply(timeoutMs);
}

/**
 * Closes every connection of a list.
 * @param conns the connections
 */
export function closeAll(conns: Iterable<SmtpConn>): void {
  for (const c of conns) c.destroy();
}

/**
 * Runs `count` workers at once.
 * @param count how many
 * @param worker the work, given its index
 */
export async function workers(count: number, worker: (i: number) => Promise<void>): Promise<void> {
  await Promise.all(Array.from({ length: count }, (_, i) => worker(i).catch(() => {})));
}

/** Stress settings the harness configures (production defaults), for the attacks' checks. */
export const STRESS = {
  /** default_process_limit. */
  processLimit: 100,
  /** smtpd_stress_threshold, percent. */
  thresholdPercent: 80,
  /** smtpd_stress_timeout and smtpd_stress_starttls_timeout, seconds. */
  timeoutS: 10,
} as const;

/** A session an attack holds open, with when it began to hold. */
export interface HeldSession {
  conn: SmtpConn;
  /** When the session began to stall (epoch ms). */
  since: number;
}

/**
 * Whether the sessions that certainly started under stress were cut by
 * the server within the stress timeout (plus 3 s). Sessions are given in
 * the order the server admitted them; from the threshold on (80 of 100)
 * the server was under stress however few legitimate sessions it had.
 * Only sessions held long enough to be due are judged.
 * @param name the check's name
 * @param held the sessions, in admission order
 * @param windowEnd when the attack's window ended
 * @returns the check, or a note when no session was due (a short window)
 */
export function stressCutCheck(
  name: string,
  held: readonly HeldSession[],
  windowEnd: number,
): Check | string {
  const first = Math.floor(STRESS.processLimit * STRESS.thresholdPercent / 100);
  const dueMs = (STRESS.timeoutS + 3) * 1000;
  const judged = held.slice(first).filter((h) => windowEnd - h.since >= dueMs);
  if (judged.length === 0) {
    return `${name}: not judged (the window is shorter than the stress timeout + 3 s)`;
  }
  const late = judged.filter((h) =>
    !h.conn.closedByServer || h.conn.closedAt === undefined || h.conn.closedAt - h.since > dueMs
  );
  return {
    name,
    ok: late.length === 0,
    detail: `${judged.length - late.length} of ${judged.length} sessions admitted under stress ` +
      `(session ${first + 1} on) cut within ${STRESS.timeoutS} + 3 s`,
  };
}
