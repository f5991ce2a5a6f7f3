/**
 * Connection flood past the limits: 120 idle connections from 12
 * addresses (past default_process_limit together) and 60 from one more
 * address (past smtpd_client_connection_count_limit), each opened again at
 * once when the server closes it, plus 10 loops that connect and drop as
 * fast as they can from that one address.
 *
 * @module
 */

import { type Attack, type AttackContext, type AttackOutcome, pause, workers } from "../attack.ts";
import { SmtpConn } from "../smtp_conn.ts";

const SPREAD = 120;
const SPREAD_HOSTS = 12;
const GREEDY = 60;
const CHURNERS = 10;
const MAX_REOPEN = 300;
const MAX_CHURN = 2000;

/** The attack. */
export const connectionFlood: Attack = {
  name: "connection-flood",
  summary:
    `${SPREAD} idle connections from ${SPREAD_HOSTS} addresses + ${GREEDY} from one, reopened ` +
    `when closed, + ${CHURNERS} connect/drop loops`,
  target: "main",
  // A refused client is held 2 s before its 421, then retries: give the lock-out time to show.
  quickMinMs: 5000,
  async run(ctx: AttackContext): Promise<AttackOutcome> {
    const live = new Set<SmtpConn>();
    let opened = 0;
    let greeted = 0;
    let refused = 0;
    let failedConnects = 0;
    let churned = 0;
    let firstRound = 0;
    const allOpen = Promise.withResolvers<void>();
    const greedy = ctx.address(200);
    const holder = async (i: number) => {
      const from = i < SPREAD ? ctx.address(i % SPREAD_HOSTS) : greedy;
      for (let n = 0; n < MAX_REOPEN && !ctx.signal.aborted; n++) {
        const c = await SmtpConn.open({ port: ctx.port, localAddress: from }).catch(() =>
          undefined
        );
        if (n === 0 && ++firstRound === SPREAD + GREEDY) allOpen.resolve();
        if (!c) {
          failedConnects++;
          await pause(100, ctx.signal);
          continue;
        }
        opened++;
        live.add(c);
        const first = await c.reply(3000);
        if (first.startsWith("220")) greeted++;
        else if (first.startsWith("421")) refused++;
        // Hold it, idle, until the server lets go or the window ends.
        while (!c.closed && !ctx.signal.aborted) await c.waitClosed(500);
        live.delete(c);
        c.destroy();
        await pause(20, ctx.signal);
      }
    };
    const churner = async () => {
      for (let n = 0; n < MAX_CHURN && !ctx.signal.aborted; n++) {
        const c = await SmtpConn.open({ port: ctx.port, localAddress: greedy }).catch(() =>
          undefined
        );
        if (!c) continue;
        churned++;
        await c.waitInput(200);
        c.destroy();
      }
    };
    const run = workers(
      SPREAD + GREEDY + CHURNERS,
      (i) => i < SPREAD + GREEDY ? holder(i) : churner(),
    );
    await Promise.race([allOpen.promise, ctx.ended]);
    ctx.ready();
    await ctx.ended;
    for (const c of live) c.destroy();
    await run;
    return {
      checks: [],
      notes: [
        `${opened} connections held (${greeted} greeted, ${refused} got 421), ` +
        `${failedConnects} connects failed, ${churned} connect/drop`,
      ],
    };
  },
};
