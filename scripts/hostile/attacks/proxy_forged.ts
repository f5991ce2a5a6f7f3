/**
 * Forged and malformed PROXY headers, against an instance with
 * smtpd_upstream_proxy_protocol = "haproxy" whose only allowed balancer
 * (smtpd_upstream_proxy_networks) is 127.0.0.1. From the balancer's
 * address come malformed v1 and v2 headers (escape bytes, a name for an
 * address, bad ports, families and lengths); from another address come
 * well-formed headers that claim a trusted client. None may get a
 * greeting; where one does, the attacker tries to relay through it.
 *
 * @module
 */

import {
  type Attack,
  type AttackContext,
  type AttackOutcome,
  command,
  pause,
  workers,
} from "../attack.ts";
import { SmtpConn } from "../smtp_conn.ts";

const LOOPS = 10;
const MAX_ROUNDS = 200;
const GREETING_WAIT_MS = 1500;
const BALANCER = "127.0.0.1";

const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const enc = new TextEncoder();

function v2(verCmd: number, fam: number, body: number[], length = body.length): Uint8Array {
  return new Uint8Array([...SIG, verCmd, fam, length >> 8, length & 0xff, ...body]);
}

// 192.0.2.66 -> 127.0.0.1, ports 1111 -> 25
const V2_TCP4 = [192, 0, 2, 66, 127, 0, 0, 1, 0x04, 0x57, 0x00, 0x19];

interface Variant {
  name: string;
  from: "balancer" | "outsider";
  bytes: Uint8Array;
}

const VARIANTS: readonly Variant[] = [
  ...[
    ["v1-escape-bytes", "PROXY TCP4 \x1b]0;owned\x07\x1b[2J 127.0.0.1 1111 25\r\n"],
    ["v1-name-for-address", "PROXY TCP4 mail.evil.example 127.0.0.1 1111 25\r\n"],
    ["v1-octet-overflow", "PROXY TCP4 192.0.2.300 127.0.0.1 1111 25\r\n"],
    ["v1-port-overflow", "PROXY TCP4 192.0.2.1 127.0.0.1 99999 25\r\n"],
    ["v1-family-mismatch", "PROXY TCP6 192.0.2.1 127.0.0.1 1111 25\r\n"],
    ["v1-extra-field", "PROXY TCP4 192.0.2.1 127.0.0.1 1111 25 extra\r\n"],
    ["v1-nul-byte", "PROXY TCP4 192.0.2.1\0 127.0.0.1 1111 25\r\n"],
    ["v1-too-long", `PROXY TCP4 ${"1".repeat(200)}\r\n`],
    ["v1-bare-lf", "PROXY TCP4 192.0.2.1 127.0.0.1 1111 25\n"],
  ].map(([name, text]) => ({ name: name!, from: "balancer" as const, bytes: enc.encode(text) })),
  { name: "v2-version-3", from: "balancer", bytes: v2(0x31, 0x11, V2_TCP4) },
  { name: "v2-short-address", from: "balancer", bytes: v2(0x21, 0x11, [192, 0, 2, 66]) },
  { name: "v2-unknown-family", from: "balancer", bytes: v2(0x21, 0x51, V2_TCP4) },
  { name: "v2-length-promise", from: "balancer", bytes: v2(0x21, 0x11, V2_TCP4, 0xffff) },
  {
    name: "forged-v1-trusted",
    from: "outsider",
    bytes: enc.encode("PROXY TCP4 127.0.0.1 127.0.0.1 1111 25\r\n"),
  },
  { name: "forged-v2-trusted", from: "outsider", bytes: v2(0x21, 0x11, V2_TCP4) },
];

/** The attack. */
export const proxyForged: Attack = {
  name: "proxy-forged",
  summary: `${VARIANTS.length} forged or malformed PROXY v1/v2 headers, ${LOOPS} loops`,
  target: "proxy",
  async run(ctx: AttackContext): Promise<AttackOutcome> {
    const live = new Set<SmtpConn>();
    const greeted = new Map<string, number>();
    const relayed = new Set<string>();
    const tried = new Map<string, number>();
    let passes = 0;
    const firstPass = Promise.withResolvers<void>();
    const run = workers(LOOPS, async (i) => {
      for (let r = 0; r < MAX_ROUNDS && !ctx.signal.aborted; r++) {
        const k = i + r * LOOPS;
        const v = VARIANTS[k % VARIANTS.length]!;
        if (k >= VARIANTS.length && ++passes === 1) firstPass.resolve();
        const from = v.from === "balancer" ? BALANCER : ctx.address(66);
        const c = await SmtpConn.open({ port: ctx.port, localAddress: from }).catch(() =>
          undefined
        );
        if (!c) {
          await pause(100, ctx.signal);
          continue;
        }
        live.add(c);
        try {
          await c.write(v.bytes);
          tried.set(v.name, (tried.get(v.name) ?? 0) + 1);
          const g = await c.reply(GREETING_WAIT_MS);
          if (!g.startsWith("220")) continue;
          greeted.set(v.name, (greeted.get(v.name) ?? 0) + 1);
          await command(c, "EHLO forged.example", 5000);
          if (!(await command(c, "MAIL FROM:<p@evil.example>", 5000)).startsWith("250")) continue;
          if ((await command(c, "RCPT TO:<x@elsewhere.example>", 5000)).startsWith("250")) {
            relayed.add(v.name);
          }
        } finally {
          live.delete(c);
          c.destroy();
        }
      }
    });
    await Promise.race([firstPass.promise, run, ctx.ended]);
    ctx.ready();
    await ctx.ended;
    for (const c of live) c.destroy();
    await run;
    const untried = VARIANTS.filter((v) => !tried.has(v.name)).map((v) => v.name);
    return {
      checks: [
        {
          name: "no greeting after a bad header",
          ok: greeted.size === 0 && untried.length === 0,
          detail: greeted.size
            ? `greeted: ${[...greeted].map(([k, n]) => `${k} x${n}`).join(", ")}`
            : untried.length
            ? `not tried: ${untried.join(", ")}`
            : `all ${VARIANTS.length} kinds dropped`,
        },
        {
          name: "no relay for a forged client",
          ok: relayed.size === 0,
          detail: relayed.size ? `relay granted after ${[...relayed].join(", ")}` : "none",
        },
      ],
      notes: [`${[...tried.values()].reduce((a, b) => a + b, 0)} headers sent`],
    };
  },
};
