/**
 * TLS handshake flood, the classic asymmetric cost: the client sends a
 * ClientHello (one captured from Deno's TLS client, replayed) and hangs up
 * as soon as the server's first flight arrives, so that the server does
 * the key exchange and signs with its key for nothing. Two greedy loops
 * (one address by STARTTLS, one by the implicit-TLS port) must be held to
 * smtpd_client_new_tls_session_rate_limit; eight spread loops take each
 * of 200 addresses up to that limit, alternating STARTTLS and the
 * implicit-TLS port, to measure what a handshake costs the server (its
 * CPU from /proc/PID/stat, less the legitimate stream's share).
 *
 * @module
 */

import {
  type Attack,
  type AttackContext,
  type AttackOutcome,
  captureClientHello,
  command,
  CpuMeter,
  descriptorsReleased,
  openTo,
  RATE_LIMITS,
  readyWhenStarted,
  workers,
} from "../attack.ts";
import type { SmtpConn } from "../smtp_conn.ts";

const GREEDY_ROUNDS = 200;
const SPREAD_LOOPS = 8;
const SPREAD_HOSTS = 200;
const FLIGHT_MS = 3000;

type Outcome = "served" | "refused" | "none";

/** One attempt: connect, (STARTTLS,) ClientHello, wait for the first flight, hang up. */
async function attempt(
  ctx: AttackContext,
  hello: Uint8Array,
  from: string,
  wrapper: boolean,
  live: Set<SmtpConn>,
): Promise<Outcome> {
  const conn = await openTo(wrapper ? ctx.wrapperPort : ctx.port, from);
  if (!conn) return "none";
  live.add(conn);
  try {
    if (!wrapper) {
      if (!(await conn.reply(5000)).startsWith("220")) return "none";
      await command(conn, "EHLO flood.example", 5000);
      const r = await command(conn, "STARTTLS", 5000);
      if (r.startsWith("454")) return "refused";
      if (!r.startsWith("220")) return "none";
    }
    conn.markInput();
    if (!(await conn.write(hello))) return wrapper ? "refused" : "none";
    await conn.waitInput(FLIGHT_MS);
    // A TLS handshake record (22): the server did its half of the key exchange.
    if (conn.firstAfterMark?.charCodeAt(0) === 0x16) return "served";
    return wrapper && conn.closedByServer ? "refused" : "none";
  } finally {
    live.delete(conn);
    conn.destroy();
  }
}

let cachedHello: Uint8Array | undefined;

/** The attack. */
export const tlsHandshakeFlood: Attack = {
  name: "tls-handshake-flood",
  summary: `ClientHello then hang-up at the server's first flight: 2 greedy loops (STARTTLS, ` +
    `implicit TLS) + ${SPREAD_LOOPS} loops over ${SPREAD_HOSTS} addresses`,
  target: "tls",
  async run(ctx: AttackContext): Promise<AttackOutcome> {
    if (!ctx.wrapperPort) throw new Error("the target has no implicit-TLS port");
    cachedHello ??= await captureClientHello();
    const hello = cachedHello;
    const limit = RATE_LIMITS.newTlsSession;
    const fdsBefore = ctx.server.openFds();
    const meter = await CpuMeter.start(ctx);
    const live = new Set<SmtpConn>();
    const greedy = [
      { wrapper: false, served: 0, refused: 0, other: 0 },
      { wrapper: true, served: 0, refused: 0, other: 0 },
    ];
    let spreadServed = 0;
    let spreadOther = 0;
    let next = 0;
    const startedOne = readyWhenStarted(ctx, 2 + SPREAD_LOOPS);
    const mark = () => {
      startedOne();
    };
    const run = workers(2 + SPREAD_LOOPS, async (i) => {
      if (i < 2) {
        const g = greedy[i]!;
        for (let r = 0; r < GREEDY_ROUNDS && !ctx.signal.aborted; r++) {
          const o = await attempt(ctx, hello, ctx.address(250 + i), g.wrapper, live);
          if (r === 0) mark();
          if (o === "served") g.served++;
          else if (o === "refused") g.refused++;
          else g.other++;
        }
        return;
      }
      let first = true;
      while (!ctx.signal.aborted) {
        const host = next++;
        if (host >= SPREAD_HOSTS) break;
        for (let k = 0; k < limit && !ctx.signal.aborted; k++) {
          const o = await attempt(ctx, hello, ctx.address(host), (host + k) % 2 === 1, live);
          if (first) mark();
          first = false;
          if (o === "served") spreadServed++;
          else spreadOther++;
        }
      }
      if (first) mark();
    });
    await ctx.ended;
    for (const c of live) c.destroy();
    await run;
    const cpu = meter.cost();
    const fds = await descriptorsReleased(ctx, fdsBefore);
    const served = spreadServed + greedy[0]!.served + greedy[1]!.served;
    const perMs = served ? cpu / served * 1000 : 0;
    return {
      checks: [
        fds,
        ...greedy.map((g) => ({
          name: `new TLS sessions of one client held to the rate limit (${
            g.wrapper ? "implicit TLS" : "STARTTLS"
          })`,
          ok: g.served <= limit,
          detail: `${g.served} handshakes served to one address, ${g.refused} refused ` +
            `(${g.wrapper ? "dropped before the handshake" : "454"}), ${g.other} other; ` +
            `smtpd_client_new_tls_session_rate_limit = ${limit}`,
        })),
      ],
      notes: [
        `${served} handshakes served (${spreadServed} to ${
          Math.min(next, SPREAD_HOSTS)
        } spread addresses, ${spreadOther} not served); server CPU ${perMs.toFixed(2)} ms per ` +
        `handshake served (${cpu.toFixed(2)} s beyond the stream's ${
          meter.streamRate.toFixed(2)
        } s/s, refused attempts included)`,
      ],
    };
  },
};
