/**
 * Garbage after STARTTLS: after "220 Ready to start TLS" the client sends
 * no ClientHello but random bytes, plaintext SMTP, a record header that
 * promises 16 KB and stops, an SSLv2-style hello, a bare alert, or 64 KB
 * of zeros. 20 loops from 2 addresses, connection after connection. The
 * server must end each of these connections by itself (all but the
 * promising one, which a handshake timeout ends) and must never answer
 * the plaintext as SMTP.
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
import { Rng } from "../../fuzz/mod.ts";

const LOOPS = 20;
const HOSTS = 2;
const MAX_ROUNDS = 200;
const CLOSE_WAIT_MS = 3000;

function random(rng: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(256);
  return b;
}

const enc = new TextEncoder();

/** The garbage, by name; `stall` marks the one only a timeout can end. */
function variants(rng: Rng): { name: string; bytes: Uint8Array; stall?: boolean }[] {
  return [
    { name: "random", bytes: random(rng, 4096) },
    {
      name: "plaintext",
      bytes: enc.encode("MAIL FROM:<plain@evil.example>\r\nRCPT TO:<u@hostile.example>\r\n"),
    },
    {
      name: "promise",
      bytes: new Uint8Array([0x16, 0x03, 0x01, 0x40, 0x00, ...random(rng, 100)]),
      stall: true,
    },
    { name: "sslv2", bytes: new Uint8Array([0x80, 0x2e, 0x01, 0x00, 0x02, ...random(rng, 44)]) },
    { name: "alert", bytes: new Uint8Array([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]) },
    { name: "zeros", bytes: new Uint8Array(65536) },
  ];
}

/** The attack. */
export const garbageAfterStarttls: Attack = {
  name: "garbage-after-starttls",
  summary:
    `${LOOPS} loops from ${HOSTS} addresses: STARTTLS, then garbage instead of a ClientHello`,
  target: "main",
  async run(ctx: AttackContext): Promise<AttackOutcome> {
    const held = new Set<{ destroy(): void }>();
    let rounds = 0;
    let closed = 0;
    let lingering = 0;
    let stalls = 0;
    const lingered: string[] = [];
    const answered: string[] = [];
    const startedOne = readyWhenStarted(ctx, LOOPS);
    const run = workers(LOOPS, async (i) => {
      const rng = new Rng(0x5eed + i);
      const kinds = variants(rng);
      for (let r = 0; r < MAX_ROUNDS && !ctx.signal.aborted; r++) {
        const v = kinds[(i + r) % kinds.length]!;
        const o = await openGreeted(ctx, ctx.address(i % HOSTS));
        if (r === 0) startedOne();
        if (!o) {
          await pause(100, ctx.signal);
          continue;
        }
        held.add(o.conn);
        let keep = false;
        try {
          if (!o.greeting.startsWith("220")) continue;
          await command(o.conn, "EHLO garbage.example", 5000);
          if (!(await command(o.conn, "STARTTLS", 5000)).startsWith("220")) continue;
          o.conn.markInput();
          await o.conn.write(v.bytes);
          rounds++;
          if (v.stall) {
            if (stalls < LOOPS) {
              stalls++;
              keep = true;
            }
            continue; // held until the window ends (the handshake timeout's business)
          }
          const gone = await o.conn.waitClosed(CLOSE_WAIT_MS);
          const first = o.conn.firstAfterMark ?? "";
          if (/^\d{3}[ -]/.test(first)) answered.push(`${v.name}: ${JSON.stringify(first)}`);
          if (gone) closed++;
          else if (!ctx.signal.aborted) {
            lingering++;
            if (lingered.length < 3) lingered.push(v.name);
          }
        } finally {
          if (!keep || o.conn.closed) {
            held.delete(o.conn);
            o.conn.destroy();
          }
        }
      }
    });
    await ctx.ended;
    for (const c of held) c.destroy();
    await run;
    return {
      checks: [
        {
          name: "garbage connections closed",
          ok: lingering === 0,
          detail: `${closed} closed by the server within ${CLOSE_WAIT_MS / 1000} s, ${lingering} ` +
            `still open${lingered.length ? ` (${lingered.join(", ")})` : ""}`,
        },
        {
          name: "no plaintext answered after STARTTLS",
          ok: answered.length === 0,
          detail: answered.length ? answered.slice(0, 2).join("; ") : "none",
        },
      ],
      notes: [`${rounds} STARTTLS sessions fed garbage (${stalls} left stalled in a record)`],
    };
  },
};
