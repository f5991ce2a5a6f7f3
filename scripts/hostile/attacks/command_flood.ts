/**
 * VRFY, NOOP and ETRN floods: 20 connections from 2 addresses each send
 * bursts of 500 pipelined commands, and reconnect when the server hangs
 * up. The server must not answer without end: after
 * smtpd_junk_command_limit junk commands each one counts as an error, and
 * smtpd_hard_error_limit errors end the session.
 *
 * @module
 */

import {
  type Attack,
  type AttackContext,
  type AttackOutcome,
  command,
  openGreeted,
  pause,
  readyWhenStarted,
  workers,
} from "../attack.ts";
import type { SmtpConn } from "../smtp_conn.ts";

const CONNECTIONS = 20;
const HOSTS = 2;
const BURST = 500;
const MAX_BURSTS = 20;
const MAX_SESSIONS = 50;

/** The limits the harness configures (production defaults). */
export const JUNK_COMMAND_LIMIT = 100;
/** See {@linkcode JUNK_COMMAND_LIMIT}. */
export const HARD_ERROR_LIMIT = 20;
/** Replies one session may get at most: greeting, EHLO, the junk and error allowances, slack. */
const MAX_REPLIES = JUNK_COMMAND_LIMIT + HARD_ERROR_LIMIT + 10;

function flood(name: string, line: string): Attack {
  const burst = `${line}\r\n`.repeat(BURST);
  return {
    name,
    summary: `${CONNECTIONS} connections from ${HOSTS} addresses, bursts of ${BURST} pipelined ${
      line.split(" ")[0]
    }`,
    target: "main",
    async run(ctx: AttackContext): Promise<AttackOutcome> {
      const live = new Set<SmtpConn>();
      let sessions = 0;
      let cut = 0;
      let maxReplies = 0;
      let sent = 0;
      const startedOne = readyWhenStarted(ctx, CONNECTIONS);
      const run = workers(CONNECTIONS, async (i) => {
        for (let s = 0; s < MAX_SESSIONS && !ctx.signal.aborted; s++) {
          const o = await openGreeted(ctx, ctx.address(i % HOSTS));
          if (s === 0) startedOne();
          if (!o) {
            await pause(100, ctx.signal);
            continue;
          }
          live.add(o.conn);
          sessions++;
          if (o.greeting.startsWith("220")) {
            await command(o.conn, "EHLO flood.example", 5000);
            for (let b = 0; b < MAX_BURSTS && !ctx.signal.aborted && !o.conn.closed; b++) {
              if (await o.conn.write(burst)) sent += BURST;
              await o.conn.waitClosed(200);
              o.conn.takeBuffered();
            }
          }
          if (o.conn.closedByServer) cut++;
          maxReplies = Math.max(maxReplies, o.conn.repliesIn);
          live.delete(o.conn);
          o.conn.destroy();
          await pause(50, ctx.signal);
        }
      });
      await ctx.ended;
      for (const c of live) {
        maxReplies = Math.max(maxReplies, c.repliesIn);
        c.destroy();
      }
      await run;
      return {
        checks: [{
          name: "flood sessions cut off",
          ok: maxReplies <= MAX_REPLIES,
          detail: `most replies in one session ${maxReplies} (at most ${MAX_REPLIES}: ` +
            `junk limit ${JUNK_COMMAND_LIMIT} + hard error limit ${HARD_ERROR_LIMIT} + 10)`,
        }],
        notes: [`${sessions} sessions, ${sent} commands sent, ${cut} sessions ended by the server`],
      };
    },
  };
}

/** VRFY flood. */
export const vrfyFlood: Attack = flood("vrfy-flood", "VRFY u@hostile.example");
/** NOOP flood. */
export const noopFlood: Attack = flood("noop-flood", "NOOP");
/** ETRN flood. */
export const etrnFlood: Attack = flood("etrn-flood", "ETRN hostile.example");
