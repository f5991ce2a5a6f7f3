/**
 * SMTP smuggling: messages whose body holds a second SMTP transaction
 * behind a non-standard end of data (bare LF, bare CR, mixed), then the
 * real CRLF.CRLF. Only CRLF.CRLF may end DATA, so every message must be
 * queued whole (its tail marker present), exactly one reply must come per
 * message, and no file may carry the smuggled sender or recipient.
 *
 * @module
 */

import {
  type Attack,
  type AttackContext,
  type AttackOutcome,
  type Check,
  command,
  openGreeted,
  workers,
} from "../attack.ts";
import type { FoundFile } from "../ledger.ts";

const SESSIONS = 10;
const HOSTS = 5;
const SMUGGLED_SENDER = "smuggled@evil.example";
const SMUGGLED_RCPT = "victim@hostile.example";

/**
 * End-of-data look-alikes: what comes before and after the dot. (`\r\r\n.\r\n`
 * is not one: it holds the real `<CR><LF>.<CR><LF>`, which ends DATA on every
 * server; the line before it merely ends in a bare CR.)
 */
const VARIANTS: readonly [string, string, string][] = [
  ["lf-dot-lf", "\n", "\n"],
  ["cr-dot-cr", "\r", "\r"],
  ["crlf-dot-lf", "\r\n", "\n"],
  ["lf-dot-crlf", "\n", "\r\n"],
  ["cr-dot-crlf", "\r", "\r\n"],
  ["crlf-dot-cr", "\r\n", "\r"],
  ["lfcr-dot-crlf", "\n\r", "\r\n"],
  ["lflf-dot-crlf", "\n\n", "\r\n"],
  ["crlf-dot-space-crlf", "\r\n", " \r\n"],
  ["crlf-dot-nul-crlf", "\r\n", "\0\r\n"],
];

/**
 * The look-alike, then a second transaction whose body runs on into the
 * marker line: the only real end of data is the `<CR><LF>.<CR><LF>` after
 * the marker. A server that takes the look-alike for the end runs the
 * smuggled MAIL/RCPT/DATA and queues the rest as a second message; one
 * that does not stores it all, marker included, as one message.
 */
function payload(pre: string, post: string): string {
  const e = post.replace(/^[ \0]/, "");
  return `${pre}.${post}MAIL FROM:<${SMUGGLED_SENDER}>${e}RCPT TO:<${SMUGGLED_RCPT}>${e}DATA${e}` +
    `Subject: smuggled${e}${e}smuggled body${e}`;
}

/** The attack. */
export const smuggling: Attack = {
  name: "smuggling",
  summary: `${VARIANTS.length} end-of-data look-alikes hiding a second transaction, ` +
    `${SESSIONS} sessions`,
  target: "main",
  async run(ctx: AttackContext): Promise<AttackOutcome> {
    let acked = 0;
    let refused = 0;
    const desync: string[] = [];
    const rounds = ctx.quick ? 1 : 5;
    let done = 0;
    const run = workers(SESSIONS, async (i) => {
      const o = await openGreeted(ctx, ctx.address(i % HOSTS));
      if (!o) return;
      try {
        if (!o.greeting.startsWith("220")) return;
        await command(o.conn, "EHLO smuggler.example");
        for (let r = 0; r < rounds && !ctx.signal.aborted; r++) {
          for (const [name, pre, post] of VARIANTS) {
            if (!(await command(o.conn, "MAIL FROM:<smuggler@evil.example>")).startsWith("250")) {
              desync.push(`${name}: MAIL refused`);
              return;
            }
            await command(o.conn, "RCPT TO:<u@hostile.example>");
            if (!(await command(o.conn, "DATA")).startsWith("354")) {
              desync.push(`${name}: DATA refused`);
              return;
            }
            const marker = `tail-${i}-${r}-${name}`;
            await o.conn.write(
              `Subject: ${name}\r\n\r\nfirst line${payload(pre, post)}${marker}\r\n.\r\n`,
            );
            const reply = await o.conn.reply(15_000);
            const id = /queued as (\S+)/.exec(reply)?.[1];
            if (reply.startsWith("250") && id) {
              acked++;
              ctx.ledger.ack(
                id,
                Date.now(),
                `smuggling ${name}`,
                (e) =>
                  (e.content ?? "").includes(marker)
                    ? undefined
                    : `message cut short: no "${marker}"`,
              );
            } else if (/^5\d\d/.test(reply)) {
              refused++; // rejecting the bare newline is a defence too
            } else {
              desync.push(`${name}: ${JSON.stringify(reply.slice(0, 60))}`);
              return;
            }
            // A smuggled transaction that ran would have replies of its own.
            await o.conn.waitInput(150);
            const extra = o.conn.takeBuffered();
            if (extra) desync.push(`${name}: extra replies ${JSON.stringify(extra.slice(0, 80))}`);
          }
        }
        await command(o.conn, "QUIT", 2000);
      } finally {
        o.conn.destroy();
        done++;
      }
    });
    await Promise.race([run, ctx.ended]);
    ctx.ready();
    await ctx.ended;
    await run;
    const expected = SESSIONS * rounds * VARIANTS.length;
    return {
      checks: [{
        name: "one reply per message",
        ok: desync.length === 0,
        detail: desync.length ? desync.slice(0, 3).join("; ") : "no extra or missing replies",
      }],
      notes: [
        `${done} sessions, ${acked} of ${expected} messages queued, ${refused} refused with 5xx`,
      ],
      verify: (files: readonly FoundFile[]): Check[] => {
        const smuggled = files.filter((f) =>
          f.sender === SMUGGLED_SENDER || f.recipients.includes(SMUGGLED_RCPT)
        );
        return [{
          name: "no smuggled message",
          ok: smuggled.length === 0,
          detail: smuggled.length
            ? `${smuggled.length} files from ${SMUGGLED_SENDER} or to ${SMUGGLED_RCPT}`
            : `none of ${files.length} files carries the smuggled envelope`,
        }];
      },
    };
  },
};
