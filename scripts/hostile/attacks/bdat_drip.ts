/**
 * BDAT drip: 90 clients from 9 addresses get to BDAT and announce a large
 * chunk, then send its octets one a second: a quarter within
 * message_size_limit (5 MB: the queue file is open), a quarter past it
 * but under 1.5 × (12 MB: refused, read and dropped), a quarter send
 * nothing at all after `BDAT n`, and a quarter announce 100 MB, past
 * 1.5 × message_size_limit, which the server must refuse and hang up on
 * at once (Postfix disables further input). When the window ends the
 * attackers close and the server's descriptors must come back down (no
 * queue file or socket held for a session that is gone).
 *
 * @module
 */

import {
  type Attack,
  type AttackContext,
  type AttackOutcome,
  closeAll,
  command,
  descriptorsReleased,
  type HeldSession,
  openGreeted,
  pause,
  stressCutCheck,
  workers,
} from "../attack.ts";

const CLIENTS = 90;
const HOSTS = 9;
/** message_size_limit (the server's default, the harness does not set it). */
const SIZE_LIMIT = 10_240_000;
const KINDS = [
  { name: "within", size: 5_000_000, drip: true },
  { name: "past the limit", size: 12_000_000, drip: true },
  { name: "silent", size: 5_000_000, drip: false },
  { name: "past 1.5 x the limit", size: 100_000_000, drip: false },
] as const;
/** Longest wait for the server's refusal and close of a chunk past 1.5 × the limit. */
const HANGUP_MS = 3000;

/** The attack. */
export const bdatDrip: Attack = {
  name: "bdat-drip",
  summary: `${CLIENTS} clients from ${HOSTS} addresses: BDAT of 5, 12 or 100 MB, ` +
    `octets at one a second, or none`,
  target: "main",
  async run(ctx: AttackContext): Promise<AttackOutcome> {
    const fdsBefore = ctx.server.openFds();
    const drippers: (HeldSession & { kind: number; at: number })[] = [];
    let refused = 0;
    const bigReplies: string[] = [];
    let bigCut = 0;
    let bigCrowded = 0;
    let big = 0;
    let notReached = 0;
    await workers(CLIENTS, async (i) => {
      if (ctx.signal.aborted) return;
      const o = await openGreeted(ctx, ctx.address(i % HOSTS));
      if (!o) return;
      if (!o.greeting.startsWith("220")) {
        refused++;
        o.conn.destroy();
        return;
      }
      const kind = i % KINDS.length;
      // Entered at the greeting: the list is in the server's admission order.
      const held = { conn: o.conn, since: Date.now(), kind, at: 0 };
      drippers.push(held);
      await command(o.conn, "EHLO drip.example");
      await command(o.conn, "MAIL FROM:<bdat-drip@evil.example>");
      if (!(await command(o.conn, "RCPT TO:<u@hostile.example>")).startsWith("250")) {
        notReached++;
        return;
      }
      const k = KINDS[kind]!;
      await o.conn.write(`BDAT ${k.size} LAST\r\n`);
      if (k.size > 1.5 * SIZE_LIMIT) {
        big++;
        const reply = await o.conn.reply(HANGUP_MS);
        const gone = await o.conn.waitClosed(HANGUP_MS);
        if (bigReplies.length < 2) bigReplies.push(reply.trim() || "(none)");
        if (gone && reply.startsWith("552")) bigCut++;
        // Closed with 421 before its chunk was answered: room made for a
        // client of a less crowded address (the listener's crowding rule),
        // which refuses and hangs up on it just as well.
        else if (gone && reply.startsWith("421")) bigCrowded++;
      }
    });
    ctx.ready();
    // One octet per dripping client per second until the window ends (each chunk outlasts it).
    for (let tick = 0; tick < 3600 && !ctx.signal.aborted; tick++) {
      for (const d of drippers) {
        if (d.conn.closed || !KINDS[d.kind]!.drip || d.at >= KINDS[d.kind]!.size) continue;
        d.at++;
        d.conn.write(tick % 40 === 39 ? "\n" : "x");
      }
      await pause(1000, ctx.signal);
    }
    const cut = drippers.filter((d) => d.conn.closedByServer).length;
    const stress = stressCutCheck("BDAT drippers under stress cut", drippers, Date.now());
    closeAll(drippers.map((d) => d.conn));
    // The server must let go of what the sessions held: queue files, sockets.
    const fds = await descriptorsReleased(ctx, fdsBefore);
    return {
      checks: [
        ...(typeof stress === "string" ? [] : [stress]),
        {
          name: "chunk past 1.5 x message_size_limit refused and hung up on",
          ok: bigCut > 0 && bigCut + bigCrowded === big,
          detail: `${bigCut} of ${big} got 552 and were closed within ${HANGUP_MS / 1000} s, ` +
            `${bigCrowded} were closed with 421 before (room made for other clients) ` +
            `(${bigReplies.join("; ")})`,
        },
        fds,
      ],
      notes: [
        ...(typeof stress === "string" ? [stress] : []),
        `${drippers.length} of ${CLIENTS} sessions, ${refused} refused, ${notReached} never ` +
        `reached BDAT; the server cut ${cut} during the window`,
      ],
    };
  },
};
