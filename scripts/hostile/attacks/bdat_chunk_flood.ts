/**
 * BDAT chunk flood: 10 connections from 2 addresses each send messages of
 * one-octet chunks (`BDAT 1` and its octet, pipelined in bursts of 2000,
 * 10 bursts a message, then `BDAT 1 LAST`), reading every reply; two of
 * them never read a reply, so that the server's writes block. It
 * measures what a chunk costs the server (its CPU time from
 * /proc/PID/stat, less the legitimate stream's share sampled before) and
 * holds it to a bound; every message acknowledged must be a complete queue
 * file of exactly the octets sent.
 *
 * @module
 */

import {
  type Attack,
  type AttackContext,
  type AttackOutcome,
  command,
  CpuMeter,
  openGreeted,
  pause,
  readyWhenStarted,
  workers,
} from "../attack.ts";
import type { SmtpConn } from "../smtp_conn.ts";

const CONNECTIONS = 10;
/** Of them, connections that never read a reply to their chunks (the server's writes block). */
const DEAF = 2;
/** Bursts a deaf connection writes at most (36 MB: far past the kernel's socket buffers). */
const DEAF_BURSTS = 2000;
const HOSTS = 2;
const BURST = 2000;
const BURSTS = 10;
const MAX_MESSAGES = 20;
/** Highest acceptable server CPU per one-octet chunk, µs (a NOOP costs some 10-30). */
export const MAX_CHUNK_CPU_US = 150;

/** The message, one octet per chunk: a header, then lines of 68 x's. */
function messageOctets(n: number): string {
  const head = "Subject: chunk flood\r\n\r\n";
  const line = "x".repeat(68) + "\r\n";
  let s = head;
  while (s.length < n) s += line;
  return s.slice(0, n - 2) + "\r\n";
}

const X_LINE = "x".repeat(68);

/** How many body lines of 68 x's a text holds (the message's or a queue file's content). */
function xLines(text: string): number {
  return text.split(/\r?\n/).filter((l) => l === X_LINE).length;
}

/** The attack. */
export const bdatChunkFlood: Attack = {
  name: "bdat-chunk-flood",
  summary: `${CONNECTIONS} connections from ${HOSTS} addresses: messages of ` +
    `${BURST * BURSTS} pipelined one-octet BDAT chunks`,
  target: "main",
  async run(ctx: AttackContext): Promise<AttackOutcome> {
    const octets = messageOctets(BURST * BURSTS + 1);
    const bursts = Array.from(
      { length: BURSTS },
      (_, b) => [...octets.slice(b * BURST, (b + 1) * BURST)].map((c) => `BDAT 1\r\n${c}`).join(""),
    );
    const lastChunk = `BDAT 1 LAST\r\n${octets.slice(BURST * BURSTS)}`;
    const wantLines = xLines(octets);
    const meter = await CpuMeter.start(ctx);
    const live = new Set<SmtpConn>();
    let chunksAnswered = 0;
    let messages = 0;
    let acked = 0;
    let unanswered = 0;
    let worstBurstMs = 0;
    let deafChunks = 0;
    let deafCut = 0;
    const odd: string[] = [];
    const startedOne = readyWhenStarted(ctx, CONNECTIONS);
    const run = workers(CONNECTIONS, async (i) => {
      let first = true;
      for (let m = 0; m < MAX_MESSAGES && !ctx.signal.aborted;) {
        const o = await openGreeted(ctx, ctx.address(i % HOSTS));
        if (first) startedOne();
        first = false;
        if (!o) {
          await pause(100, ctx.signal);
          continue;
        }
        live.add(o.conn);
        try {
          if (!o.greeting.startsWith("220")) continue;
          await command(o.conn, "EHLO chunks.example", 5000);
          if (i >= CONNECTIONS - DEAF) {
            // Deaf: chunks without end, replies never read, until the server or the window ends it.
            if (!(await command(o.conn, "MAIL FROM:<chunks@evil.example>")).startsWith("250")) {
              break;
            }
            if (!(await command(o.conn, "RCPT TO:<u@hostile.example>")).startsWith("250")) break;
            o.conn.stopReading();
            for (
              let b = 0;
              b < BURSTS * MAX_MESSAGES && !ctx.signal.aborted && !o.conn.closed;
              b++
            ) {
              if (await o.conn.write(bursts[b % BURSTS]!)) deafChunks += BURST;
            }
            deafCut += o.conn.closedByServer ? 1 : 0;
            break;
          }
          for (; m < MAX_MESSAGES && !ctx.signal.aborted && !o.conn.closed; m++) {
            if (!(await command(o.conn, "MAIL FROM:<chunks@evil.example>")).startsWith("250")) {
              break;
            }
            if (!(await command(o.conn, "RCPT TO:<u@hostile.example>")).startsWith("250")) break;
            messages++;
            let ok = true;
            for (const burst of bursts) {
              if (ctx.signal.aborted) return;
              const t = Date.now();
              const got = await o.conn.burst(burst, BURST, 30_000);
              chunksAnswered += got;
              const text = o.conn.takeBuffered();
              if (got < BURST) {
                if (!ctx.signal.aborted) unanswered += BURST - got;
                ok = false;
                break;
              }
              worstBurstMs = Math.max(worstBurstMs, Date.now() - t);
              if (!/^250 /.test(text) && odd.length < 2) odd.push(text.slice(0, 80));
            }
            if (!ok) break;
            if (!(await o.conn.write(lastChunk))) break;
            const r = await o.conn.reply(30_000);
            const id = /queued as (\S+)/.exec(r)?.[1];
            if (r.startsWith("250") && id) {
              acked++;
              ctx.ledger.ack(id, Date.now(), "bdat-chunk-flood", (e) => {
                const got = xLines(e.content ?? "");
                return got === wantLines ? undefined : `${got} body lines, ${wantLines} sent`;
              });
            } else if (odd.length < 2) odd.push(`LAST: ${r.slice(0, 80) || "no reply"}`);
          }
        } finally {
          live.delete(o.conn);
          o.conn.destroy();
        }
      }
    });
    await ctx.ended;
    for (const c of live) c.destroy();
    await run;
    const cpu = meter.cost();
    const perChunkUs = chunksAnswered ? cpu / chunksAnswered * 1e6 : 0;
    return {
      checks: [
        {
          name: "server CPU per one-octet chunk bounded",
          ok: chunksAnswered === 0 || perChunkUs <= MAX_CHUNK_CPU_US,
          detail: `${perChunkUs.toFixed(1)} µs per chunk (${cpu.toFixed(2)} s CPU beyond the ` +
            `stream's ${meter.streamRate.toFixed(2)} s/s for ${chunksAnswered} chunks; at most ` +
            `${MAX_CHUNK_CPU_US})`,
        },
        {
          name: "every chunk answered",
          ok: unanswered === 0,
          detail: `${unanswered} chunks without a reply within 30 s` +
            (odd.length ? ` (replies: ${odd.join("; ")})` : ""),
        },
      ],
      notes: [
        `${messages} messages begun, ${acked} acknowledged, ${chunksAnswered} chunks answered; ` +
        `slowest burst of ${BURST} answered in ${worstBurstMs} ms; ${DEAF} deaf connections ` +
        `wrote ${deafChunks} chunks of at most ${DEAF * DEAF_BURSTS * BURST} before the server ` +
        `stopped reading (${deafCut} ended by the server)`,
      ],
    };
  },
};
