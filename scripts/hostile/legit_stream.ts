/**
 * The legitimate stream: the timing client (legit_client.ts, a process of
 * its own) and, for volume, Postfix's `smtp-source` sending alongside from
 * 127.0.0.1. Every queue ID the timing client gets goes into the
 * instance's {@linkcode Ledger}; smtp-source's running count (`-c`) is
 * entered by sender. {@linkcode windowStats} turns the events of one
 * attack's window into messages/s, the worst DATA-to-250 latency and the
 * longest stall of any session.
 *
 * @module
 */

import { ROOT } from "./server.ts";
import type { Ledger } from "./ledger.ts";

/** smtp-source's envelope sender (its files are counted by it). */
export const VOLUME_SENDER = "volume@legit.example";
/** The timing client's envelope sender. */
export const LEGIT_SENDER = "legit@legit.example";

/** One acknowledged message of the timing client. */
export interface AckEvent {
  session: number;
  id: string;
  dotAt: number;
  ackAt: number;
}

/** One failed transaction or connection of the timing client. */
export interface FailEvent {
  session: number;
  at: number;
  dotAt: number | undefined;
  reason: string;
}

/** What a window of the stream looked like. */
export interface WindowStats {
  /** Acknowledged messages per second in [t0, t1], both clients. */
  msgsPerSec: number;
  /** The timing client's acknowledgements in [t0, t1]. */
  timedAcks: number;
  /** smtp-source's acknowledgements in [t0, t1]. */
  volumeAcks: number;
  /** Worst end-of-data to 250 (or to failure) in [t0, tEnd], ms. */
  worst250Ms: number;
  /** Worst connect to greeting in [t0, tEnd], ms. */
  worstGreetMs: number;
  /** Longest time any timing session went without an acknowledgement in [t0, tEnd], ms. */
  longestStallMs: number;
  /** Failures of the timing client in [t0, tEnd], with their reasons (first few). */
  failures: number;
  failureSamples: string[];
}

/** Options for {@linkcode LegitStream.start}. */
export interface StreamOptions {
  port: number;
  ledger: Ledger;
  /** Timing sessions. @default {2} */
  sessions?: number;
  /** Run smtp-source alongside. */
  smtpSource: boolean;
  /** Send a PROXY v1 header naming this client (PROXY instances). */
  proxyClient?: string;
}

const SMTP_SOURCE_SESSIONS = 4;

/** A running legitimate stream. */
export class LegitStream {
  readonly acks: AckEvent[] = [];
  readonly fails: FailEvent[] = [];
  readonly greets: { session: number; connectAt: number; greetAt: number; code: string }[] = [];
  /** smtp-source's cumulative count, with the time each value was read. */
  readonly volume: { at: number; total: number }[] = [{ at: 0, total: 0 }];
  /** smtp-source exits (it stops at its first 4xx/5xx reply) and their last words. */
  volumeExits: string[] = [];
  readonly sessions: number;
  #opts: StreamOptions;
  #child: Deno.ChildProcess | undefined;
  #childDone: Promise<void> | undefined;
  #source: Deno.ChildProcess | undefined;
  #sourceLoop: Promise<void> | undefined;
  #stopping = false;

  private constructor(opts: StreamOptions) {
    this.#opts = opts;
    this.sessions = opts.sessions ?? 2;
  }

  /**
   * Starts the stream and waits until every timing session has had a message acknowledged.
   * @param opts port, ledger, sessions, smtp-source, PROXY client
   * @returns the stream
   * @throws Error when no message gets through within 30 s
   */
  static async start(opts: StreamOptions): Promise<LegitStream> {
    const s = new LegitStream(opts);
    s.#startTiming();
    if (opts.smtpSource) s.#sourceLoop = s.#runSource();
    const end = Date.now() + 30_000;
    while (Date.now() < end) {
      const seen = new Set(s.acks.map((a) => a.session));
      if (seen.size === s.sessions) return s;
      await sleep(50);
    }
    await s.stop();
    throw new Error(
      `legitimate stream did not get going: ${
        s.fails.slice(-3).map((f) => f.reason).join("; ") || "no reply"
      }`,
    );
  }

  #startTiming(): void {
    const args = [
      "run",
      "--allow-net=127.0.0.1",
      "scripts/hostile/legit_client.ts",
      String(this.#opts.port),
      String(this.sessions),
      ...(this.#opts.proxyClient ? [this.#opts.proxyClient] : []),
    ];
    const child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#child = child;
    this.#childDone = (async () => {
      let rest = "";
      const decoder = new TextDecoder();
      for await (const chunk of child.stdout) {
        const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n");
        rest = lines.pop() ?? "";
        for (const line of lines) this.#event(line);
      }
      await child.status;
    })();
  }

  #event(line: string): void {
    const f = line.split(" ");
    switch (f[0]) {
      case "ack": {
        const a = { session: Number(f[1]), id: f[2]!, dotAt: Number(f[3]), ackAt: Number(f[4]) };
        this.acks.push(a);
        this.#opts.ledger.ack(a.id, a.ackAt, "legit");
        break;
      }
      case "greet":
        this.greets.push({
          session: Number(f[1]),
          connectAt: Number(f[2]),
          greetAt: Number(f[3]),
          code: f[4] ?? "",
        });
        break;
      case "fail":
        this.fails.push({
          session: Number(f[1]),
          at: Number(f[2]),
          dotAt: f[3] === "-" ? undefined : Number(f[3]),
          reason: f.slice(4).join(" "),
        });
        break;
    }
  }

  async #runSource(): Promise<void> {
    let base = 0;
    // Bounded: smtp-source is restarted after an exit at most 200 times.
    for (let run = 0; run < 200 && !this.#stopping; run++) {
      const child = new Deno.Command("smtp-source", {
        args: [
          "-c",
          "-d",
          "-s",
          String(SMTP_SOURCE_SESSIONS),
          "-w",
          "1",
          "-m",
          "1000000",
          "-l",
          "1024",
          "-M",
          "volume.legit.example",
          "-f",
          VOLUME_SENDER,
          "-t",
          "u@hostile.example",
          `127.0.0.1:${this.#opts.port}`,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      this.#source = child;
      let last = 0;
      const errText = new Response(child.stderr).text();
      let rest = "";
      const decoder = new TextDecoder();
      for await (const chunk of child.stdout) {
        const parts = (rest + decoder.decode(chunk, { stream: true })).split(/[\r\n]/);
        rest = parts.pop() ?? "";
        for (const p of parts) {
          if (/^\d+$/.test(p)) last = Number(p);
        }
        this.volume.push({ at: Date.now(), total: base + last });
        this.#opts.ledger.counted(VOLUME_SENDER, base + last, SMTP_SOURCE_SESSIONS);
      }
      await child.status;
      // Of this run's count, the messages in flight at its end (one per
      // session) may have had no 250: the next run's count starts below them.
      base += Math.max(0, last - SMTP_SOURCE_SESSIONS);
      const why = (await errText).trim().split("\n").at(-1) ?? "";
      if (!this.#stopping) {
        this.volumeExits.push(`${new Date().toISOString().slice(11, 19)} ${why}`.slice(0, 200));
        await sleep(300);
      }
    }
  }

  /** Cumulative smtp-source count known at a time. */
  volumeAt(t: number): number {
    let v = 0;
    for (const p of this.volume) {
      if (p.at <= t) v = p.total;
      else break;
    }
    return v;
  }

  /**
   * Waits until every timing session has had a message acknowledged after `t`.
   * @param t the time (epoch ms)
   * @param timeoutMs longest wait
   * @returns when that happened, or the time the wait gave up
   */
  async recovered(t: number, timeoutMs: number): Promise<{ at: number; ok: boolean }> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const firsts = new Map<number, number>();
      for (const a of this.acks) {
        if (a.ackAt > t && !firsts.has(a.session)) firsts.set(a.session, a.ackAt);
      }
      if (firsts.size === this.sessions) return { at: Math.max(...firsts.values()), ok: true };
      if (Date.now() >= end) return { at: Date.now(), ok: false };
      await sleep(25);
    }
  }

  /**
   * Whether every timing session had an acknowledgement within the last `ms`.
   * @param ms how recent
   * @returns true when all did
   */
  allAckedWithin(ms: number): boolean {
    const since = Date.now() - ms;
    const seen = new Set<number>();
    for (let i = this.acks.length - 1; i >= 0; i--) {
      const a = this.acks[i]!;
      if (a.ackAt < since) break;
      seen.add(a.session);
    }
    return seen.size === this.sessions;
  }

  /**
   * The stream's figures for one window.
   * @param t0 the attack's start
   * @param t1 the attack's end
   * @param tEnd when the stream had recovered (every session acknowledged after t1)
   * @returns the figures
   */
  window(t0: number, t1: number, tEnd: number): WindowStats {
    return windowStats(
      { acks: this.acks, fails: this.fails, greets: this.greets, sessions: this.sessions },
      { t0, t1, tEnd, volume: this.volumeAt(t1) - this.volumeAt(t0) },
    );
  }

  /** Stops both clients (by PID) and waits for them. */
  async stop(): Promise<void> {
    this.#stopping = true;
    const child = this.#child;
    if (child) {
      await child.stdin.close().catch(() => {});
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 35_000);
      await this.#childDone;
      clearTimeout(timer);
    }
    try {
      this.#source?.kill("SIGTERM");
    } catch { /* gone */ }
    await this.#sourceLoop;
  }
}

/** The events {@linkcode windowStats} reads. */
export interface StreamEvents {
  acks: readonly AckEvent[];
  fails: readonly FailEvent[];
  greets: readonly { session: number; connectAt: number; greetAt: number }[];
  sessions: number;
}

/**
 * Figures for one window of a stream's events.
 * @param ev the timing client's events
 * @param w the window: start, end of the attack, end of recovery, smtp-source's count in it
 * @returns the figures
 */
export function windowStats(
  ev: StreamEvents,
  w: { t0: number; t1: number; tEnd: number; volume: number },
): WindowStats {
  const { t0, t1, tEnd } = w;
  const timedAcks = ev.acks.filter((a) => a.ackAt >= t0 && a.ackAt <= t1).length;
  const seconds = Math.max(0.001, (t1 - t0) / 1000);
  let worst250 = 0;
  for (const a of ev.acks) {
    if (a.ackAt >= t0 && a.ackAt <= tEnd) worst250 = Math.max(worst250, a.ackAt - a.dotAt);
  }
  const fails = ev.fails.filter((f) => f.at >= t0 && f.at <= tEnd);
  for (const f of fails) if (f.dotAt !== undefined) worst250 = Math.max(worst250, f.at - f.dotAt);
  let worstGreet = 0;
  for (const g of ev.greets) {
    if (g.greetAt >= t0 && g.greetAt <= tEnd) {
      worstGreet = Math.max(worstGreet, g.greetAt - g.connectAt);
    }
  }
  let stall = 0;
  for (let s = 0; s < ev.sessions; s++) {
    let prev = t0;
    for (const a of ev.acks) {
      if (a.session !== s || a.ackAt <= t0 || a.ackAt > tEnd) continue;
      stall = Math.max(stall, a.ackAt - prev);
      prev = a.ackAt;
    }
    stall = Math.max(stall, tEnd - prev);
  }
  return {
    msgsPerSec: (timedAcks + w.volume) / seconds,
    timedAcks,
    volumeAcks: w.volume,
    worst250Ms: worst250,
    worstGreetMs: worstGreet,
    longestStallMs: stall,
    failures: fails.length,
    failureSamples: [...new Set(fails.map((f) => f.reason))].slice(0, 3),
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
