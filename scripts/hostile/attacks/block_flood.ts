/**
 * Block flood: one attacker with an IPv6 network of its own, behind the
 * load balancer (the PROXY instance), opens 150 sessions from 150
 * addresses of one /64 and keeps every one busy: a NOOP every 300 ms, so
 * none is idle (1 s) or slow (10 s) within the window, and behind a
 * balancer no session is closed for crowding. Counted per address, each
 * of them is one client with one session, far under
 * smtpd_client_connection_count_limit (50), and together they hold every
 * slot. Counted per /84 (smtpd_client_ipv6_prefix_length, Postfix 3.8's
 * default), they are one client, held to 50 sessions, and the
 * legitimate stream keeps its room.
 *
 * @module
 */

import { type Attack, type AttackContext, type AttackOutcome, pause, workers } from "../attack.ts";
import { SmtpConn } from "../smtp_conn.ts";

const SESSIONS = 150;
const BALANCER = "127.0.0.1";
/** smtpd_client_connection_count_limit's default, which the instance keeps. */
const PER_CLIENT = 50;

/** The attack. */
export const blockFlood: Attack = {
  name: "block-flood",
  summary: `${SESSIONS} busy sessions from ${SESSIONS} addresses of one IPv6 /64, behind PROXY`,
  target: "proxy",
  // A lock-out shows as a stall of the legitimate stream: give it time to pass 5 s.
  quickMinMs: 5000,
  async run(ctx: AttackContext): Promise<AttackOutcome> {
    const held: SmtpConn[] = [];
    const all: SmtpConn[] = [];
    let open = 0;
    let peakOpen = 0;
    let refused = 0;
    await workers(SESSIONS, async (i) => {
      if (ctx.signal.aborted) return;
      const conn = await SmtpConn.open({ port: ctx.port, localAddress: BALANCER }).catch(() =>
        undefined
      );
      if (!conn) return;
      all.push(conn);
      const from = `2001:db8:bad:1::${(i + 1).toString(16)}`;
      await conn.write(`PROXY TCP6 ${from} ::1 ${40000 + i} 25\r\n`);
      const greeting = await conn.reply(5000);
      if (!greeting.startsWith("220")) {
        refused++;
        conn.destroy();
        return;
      }
      held.push(conn);
      peakOpen = Math.max(peakOpen, ++open);
      conn.write("EHLO block.example\r\n");
    });
    ctx.ready();
    // Busy: a NOOP every 300 ms from every session, until the window ends.
    for (let tick = 0; tick < 10_000 && !ctx.signal.aborted; tick++) {
      for (const c of held) {
        if (c.closed) continue;
        c.takeBuffered();
        c.write("NOOP\r\n");
      }
      await pause(300, ctx.signal);
    }
    const cut = held.filter((c) => c.closed).length;
    for (const c of all) c.destroy();
    return {
      checks: [{
        name: "one /84 holds at most smtpd_client_connection_count_limit sessions",
        ok: peakOpen <= PER_CLIENT,
        detail: `${peakOpen} sessions from the /64 greeted at once (limit ${PER_CLIENT}); ` +
          `${refused} refused`,
      }],
      notes: [`${held.length} busy sessions held, ${refused} refused, ${cut} closed by the server`],
    };
  },
};
