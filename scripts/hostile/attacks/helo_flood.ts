/**
 * HELO flood: 30 connections from 3 addresses each pipeline bursts of
 * 2,000 HELO commands and read every reply before the next burst. HELO is
 * no junk command (Postfix counts only NOOP, VRFY, ETRN and RSET against
 * smtpd_junk_command_limit), so no limit ends these sessions, in Postfix
 * or here: each costs the server CPU for as long as the client pays for
 * its bytes. What must hold is that they get no more of the thread than
 * their share: sessions take turns (src/io/turns.ts), so the
 * legitimate stream keeps its pace while every burst is answered.
 *
 * @module
 */

import {
  type Attack,
  type AttackContext,
  type AttackOutcome,
  closeAll,
  command,
  openGreeted,
  readyWhenStarted,
  workers,
} from "../attack.ts";
import type { SmtpConn } from "../smtp_conn.ts";

const CONNECTIONS = 30;
const HOSTS = 3;
const BURST = 2000;
const MAX_BURSTS = 200;

const burst = "HELO flood.example\r\n".repeat(BURST);

/** The attack. */
export const heloFlood: Attack = {
  name: "helo-flood",
  summary: `${CONNECTIONS} connections from ${HOSTS} addresses, bursts of ${BURST} pipelined ` +
    "HELO (no junk command: no limit ends them)",
  target: "main",
  async run(ctx: AttackContext): Promise<AttackOutcome> {
    const conns: SmtpConn[] = [];
    let answered = 0;
    let bursts = 0;
    let short = 0;
    const startedOne = readyWhenStarted(ctx, CONNECTIONS);
    const run = workers(CONNECTIONS, async (i) => {
      const o = await openGreeted(ctx, ctx.address(i % HOSTS));
      startedOne();
      if (!o) return;
      conns.push(o.conn);
      if (!o.greeting.startsWith("220")) return;
      await command(o.conn, "EHLO flood.example", 5000);
      for (let b = 0; b < MAX_BURSTS && !ctx.signal.aborted && !o.conn.closed; b++) {
        const got = await o.conn.burst(burst, BURST, 15_000);
        answered += got;
        // The burst under way when the window ends is cut short by that.
        if (got === BURST) bursts++;
        else if (!ctx.signal.aborted) short++;
        o.conn.takeBuffered();
      }
    });
    await ctx.ended;
    closeAll(conns);
    await run;
    return {
      checks: [{
        name: "every burst answered in full",
        ok: short === 0 && bursts > 0,
        detail: `${bursts} bursts of ${BURST} answered in full, ${short} not (the window's ` +
          `end aside); ${answered} HELO replies`,
      }],
      notes: [`${conns.length} sessions, ${answered} HELO answered`],
    };
  },
};
