/**
 * STARTTLS stall: many clients say EHLO and STARTTLS, get "220 Ready to
 * start TLS", and then send nothing (no ClientHello), holding a session
 * each in the TLS handshake for the whole window.
 *
 * @module
 */

import {
  type Attack,
  type AttackContext,
  type AttackOutcome,
  closeAll,
  command,
  type HeldSession,
  openGreeted,
  stressCutCheck,
  workers,
} from "../attack.ts";
import type { SmtpConn } from "../smtp_conn.ts";

const CLIENTS = 90;
const HOSTS = 9;

/** The attack. */
export const starttlsStall: Attack = {
  name: "starttls-stall",
  summary: `${CLIENTS} clients from ${HOSTS} addresses: EHLO, STARTTLS, then silence`,
  target: "main",
  async run(ctx: AttackContext): Promise<AttackOutcome> {
    const conns: SmtpConn[] = [];
    const held: HeldSession[] = [];
    let stalled = 0;
    let refused = 0;
    await workers(CLIENTS, async (i) => {
      if (ctx.signal.aborted) return;
      const o = await openGreeted(ctx, ctx.address(i % HOSTS));
      if (!o) return;
      conns.push(o.conn);
      if (!o.greeting.startsWith("220")) {
        refused++;
        return;
      }
      await command(o.conn, "EHLO stall.example", 5000);
      if ((await command(o.conn, "STARTTLS", 5000)).startsWith("220")) {
        stalled++;
        held.push({ conn: o.conn, since: Date.now() });
      }
    });
    ctx.ready();
    await ctx.ended;
    const cut = conns.filter((c) => c.closedByServer).length;
    const stress = stressCutCheck("stalled handshakes under stress cut", held, Date.now());
    closeAll(conns);
    return {
      checks: typeof stress === "string" ? [] : [stress],
      notes: [
        ...(typeof stress === "string" ? [stress] : []),
        `${stalled} of ${CLIENTS} sessions stalled in the TLS handshake, ${refused} refused; ` +
        `the server closed ${cut} during the window`,
      ],
    };
  },
};
