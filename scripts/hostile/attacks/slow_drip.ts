/**
 * Slow drip: 90 clients from 9 addresses that send one byte per second:
 * a third drip commands, a third get to DATA quickly and then drip the
 * message, a third drip one line that never ends.
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
  pause,
  stressCutCheck,
  workers,
} from "../attack.ts";

const CLIENTS = 90;
const HOSTS = 9;

const SCRIPTS = [
  "EHLO drip.example\r\nMAIL FROM:<drip@evil.example>\r\nRCPT TO:<u@hostile.example>\r\n".repeat(
    20,
  ),
  "Subject: drip\r\n\r\n" + "dripping body line\r\n".repeat(100),
  "x".repeat(4000),
];

/** The attack. */
export const slowDrip: Attack = {
  name: "slow-drip",
  summary: `${CLIENTS} clients from ${HOSTS} addresses sending one byte per second`,
  target: "main",
  async run(ctx: AttackContext): Promise<AttackOutcome> {
    const drippers: (HeldSession & { text: string; at: number })[] = [];
    let refused = 0;
    await workers(CLIENTS, async (i) => {
      if (ctx.signal.aborted) return;
      const o = await openGreeted(ctx, ctx.address(i % HOSTS));
      if (!o) return;
      if (!o.greeting.startsWith("220")) {
        refused++;
        o.conn.destroy();
        return;
      }
      const kind = i % 3;
      // Entered at its greeting, so that the list is in the server's
      // admission order (the stress check judges the sessions from the
      // threshold on), also for those that first get to DATA.
      const held = { conn: o.conn, since: Date.now(), text: SCRIPTS[kind]!, at: 0 };
      drippers.push(held);
      if (kind === 1) {
        held.at = held.text.length; // not dripping until DATA is reached
        await command(o.conn, "EHLO drip.example");
        await command(o.conn, "MAIL FROM:<drip@evil.example>");
        await command(o.conn, "RCPT TO:<u@hostile.example>");
        await command(o.conn, "DATA");
        held.at = 0;
      }
    });
    ctx.ready();
    // One byte per client per second, until the window ends (each script outlasts any window).
    for (let tick = 0; tick < 3600 && !ctx.signal.aborted; tick++) {
      for (const d of drippers) {
        if (d.conn.closed || d.at >= d.text.length) continue;
        d.conn.write(d.text[d.at++]!);
      }
      await pause(1000, ctx.signal);
    }
    const cut = drippers.filter((d) => d.conn.closedByServer).length;
    drippers.sort((a, b) => a.since - b.since);
    const stress = stressCutCheck("drippers under stress cut", drippers, Date.now());
    closeAll(drippers.map((d) => d.conn));
    return {
      checks: typeof stress === "string" ? [] : [stress],
      notes: [
        ...(typeof stress === "string" ? [stress] : []),
        `${drippers.length} of ${CLIENTS} dripping, ${refused} refused; ` +
        `the server cut ${cut} during the window`,
      ],
    };
  },
};
