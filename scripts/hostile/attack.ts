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

/** The server instances an attack may run against. */
export type Target = "main" | "proxy" | "tls";

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
  /**
   * A peak RSS target of the attack's own, in place of the common one, for
   * an attack whose held bytes the server keeps by design (what it may hold
   * follows from what it acknowledged): MiB, and why.
   */
  rssTarget?: { miB: number; why: string };
}

/** What an attack gets. */
export interface AttackContext {
  /** The target's port on 127.0.0.1. */
  port: number;
  /** The target's implicit-TLS port on 127.0.0.1 (the "tls" instance), 0 when none. */
  wrapperPort: number;
  /** The target offers AUTH through a real Dovecot (the "tls" instance, Dovecot installed). */
  auth: boolean;
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
  /**
   * Which instance: the main one (STARTTLS offered), the PROXY one, or the
   * TLS one (STARTTLS, an implicit-TLS port, AUTH through Dovecot, the TLS
   * and AUTH rate limits on).
   */
  readonly target: Target;
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
 * Opens a connection to a port from an address, or undefined when it cannot.
 * @param port the port on 127.0.0.1
 * @param from the source address
 * @returns the connection
 */
export function openTo(port: number, from: string): Promise<SmtpConn | undefined> {
  return SmtpConn.open({ port, localAddress: from }).catch(() => undefined);
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

/**
 * The rate limits of the "tls" instance (per anvil_rate_time_unit, 60 s;
 * the legitimate stream, in mynetworks, is exempt).
 */
export const RATE_LIMITS = {
  /** smtpd_client_new_tls_session_rate_limit. */
  newTlsSession: 10,
  /** smtpd_client_auth_rate_limit. */
  auth: 10,
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

/** Descriptors the server may hold after an attack beyond those it held before. */
export const FD_SLACK = 24;

/**
 * Whether the server gave back the descriptors an attack's sessions held
 * (sockets, queue files, TLS state) once its clients are gone: waits up
 * to 3 s for the count to come back within {@linkcode FD_SLACK} of before.
 * @param ctx the attack context
 * @param before {@linkcode ServerUnderTest.openFds} before the attack
 * @returns the check
 */
export async function descriptorsReleased(ctx: AttackContext, before: number): Promise<Check> {
  let after = ctx.server.openFds();
  for (let n = 0; n < 30 && after > before + FD_SLACK; n++) {
    await new Promise((r) => setTimeout(r, 100));
    after = ctx.server.openFds();
  }
  return {
    name: "descriptors released",
    ok: before === 0 || after <= before + FD_SLACK,
    detail: `server descriptors ${before} before, ${after} once the attackers closed ` +
      `(at most ${FD_SLACK} more)`,
  };
}

/**
 * The server's CPU time spent on an attack, less what the legitimate
 * stream costs it: the stream's rate is sampled for `sampleMs` before the
 * attack starts, and {@linkcode CpuMeter.cost} takes that rate times the
 * time since off the CPU used since.
 */
export class CpuMeter {
  readonly #server: ServerUnderTest;
  #streamRate = 0;
  #from = 0;
  #cpuFrom = 0;

  private constructor(server: ServerUnderTest) {
    this.#server = server;
  }

  /**
   * Samples the stream's share, then starts counting.
   * @param ctx the attack context
   * @param sampleMs how long to sample the stream alone
   * @returns the meter
   */
  static async start(ctx: AttackContext, sampleMs = 1000): Promise<CpuMeter> {
    const m = new CpuMeter(ctx.server);
    const c0 = ctx.server.cpuSeconds();
    const t0 = Date.now();
    await pause(sampleMs, ctx.signal);
    const dt = (Date.now() - t0) / 1000;
    m.#streamRate = dt > 0.2 ? (ctx.server.cpuSeconds() - c0) / dt : 0;
    m.#from = Date.now();
    m.#cpuFrom = ctx.server.cpuSeconds();
    return m;
  }

  /** The stream's share, CPU seconds per second. */
  get streamRate(): number {
    return this.#streamRate;
  }

  /** CPU seconds used since the start, the stream's share taken off (at least 0). */
  cost(): number {
    const used = this.#server.cpuSeconds() - this.#cpuFrom;
    return Math.max(0, used - this.#streamRate * (Date.now() - this.#from) / 1000);
  }

  /** CPU seconds used since the start, all of it. */
  total(): number {
    return this.#server.cpuSeconds() - this.#cpuFrom;
  }
}

/**
 * A TLS ClientHello, as Deno's own TLS client sends it (TLS 1.3 and 1.2,
 * with a key share): captured once from a loopback listener of ours, then
 * replayed byte for byte (a server does a full handshake for each, whatever
 * the client random).
 * (to an address: no SNI).
 * @returns the record of the ClientHello
 */
export async function captureClientHello(): Promise<Uint8Array> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const accepted = listener.accept();
    const client = Deno.connectTls({
      hostname: "127.0.0.1",
      port: (listener.addr as Deno.NetAddr).port,
    }).catch(() => undefined);
    const conn = await accepted;
    const chunks: Uint8Array[] = [];
    let got = 0;
    let want = Infinity;
    const buf = new Uint8Array(16384);
    const deadline = Date.now() + 5000;
    while (got < want && Date.now() < deadline) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
      got += n;
      if (want === Infinity && got >= 5) {
        const head = concat(chunks);
        if (head[0] !== 0x16) throw new Error("no TLS handshake record from the client");
        want = 5 + ((head[3]! << 8) | head[4]!);
      }
    }
    conn.close();
    (await client)?.close();
    const hello = concat(chunks);
    if (hello.length < want) throw new Error("short ClientHello");
    return hello.subarray(0, want);
  } finally {
    listener.close();
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Says the attack is at full strength (`ctx.ready()`) once `count` of its
 * attackers have started; should some never start, the harness's own
 * time limit for getting ready applies.
 * @param ctx the attack's context
 * @param count how many attackers start
 * @returns what each attacker calls, once, when it has started
 */
export function readyWhenStarted(ctx: AttackContext, count: number): () => void {
  let started = 0;
  return () => {
    if (++started === count) ctx.ready();
  };
}
