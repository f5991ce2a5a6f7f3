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
