/**
 * Implicit-TLS stall: 90 clients from 9 addresses connect to the
 * implicit-TLS port (smtpd_tls_wrappermode_listen) and never send a
 * ClientHello, holding a session each in the TLS handshake, before any
 * greeting, for the whole window. Under stress the server must cut them
 * within smtpd_stress_starttls_timeout, as it does after STARTTLS.
 *
 * @module
 */

import {
  type Attack,
  type AttackContext,
  type AttackOutcome,
  closeAll,
  descriptorsReleased,
  type HeldSession,
  openTo,
  stressCutCheck,
  workers,
} from "../attack.ts";
import type { SmtpConn } from "../smtp_conn.ts";

const CLIENTS = 90;
const HOSTS = 9;

/** The attack. */
export const wrapperStall: Attack = {
  name: "wrapper-stall",
  summary: `${CLIENTS} clients from ${HOSTS} addresses connect to the implicit-TLS port, ` +
    `then silence`,
  target: "tls",
  async run(ctx: AttackContext): Promise<AttackOutcome> {
    if (!ctx.wrapperPort) throw new Error("the target has no implicit-TLS port");
    const fdsBefore = ctx.server.openFds();
    const conns: SmtpConn[] = [];
    const held: HeldSession[] = [];
    await workers(CLIENTS, async (i) => {
      if (ctx.signal.aborted) return;
      const conn = await openTo(ctx.wrapperPort, ctx.address(i % HOSTS));
      if (!conn) return;
      conns.push(conn);
      held.push({ conn, since: Date.now() });
    });
    ctx.ready();
    await ctx.ended;
    const cut = conns.filter((c) => c.closedByServer).length;
    const early = conns.filter((c) => c.closedByServer && c.bytesIn > 0).length;
    const stress = stressCutCheck(
      "silent implicit-TLS sessions under stress cut",
      held,
      Date.now(),
    );
    closeAll(conns);
    const fds = await descriptorsReleased(ctx, fdsBefore);
    return {
      checks: [...(typeof stress === "string" ? [] : [stress]), fds],
      notes: [
        ...(typeof stress === "string" ? [stress] : []),
        `${held.length} of ${CLIENTS} connected and silent; the server closed ${cut} during ` +
        `the window (${early} after sending something)`,
      ],
    };
  },
};
