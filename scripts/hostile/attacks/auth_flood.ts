/**
 * AUTH flood against a real Dovecot (the "tls" instance, as
 * tests/_dovecot.ts runs it): 30 connections from 2 addresses each
 * pipeline bursts of 50 `AUTH PLAIN` with wrong passwords, reconnecting
 * when cut. Every failure is an error reply, so a session must end within
 * smtpd_hard_error_limit replies, and smtpd_client_auth_rate_limit must
 * keep all but its allowance of them from Dovecot. A right password from
 * another address must still be accepted meanwhile, and no password
 * (plain or in its base64 response) may reach any line of the server's
 * log.
 *
 * @module
 */

import { join } from "node:path";
import {
  type Attack,
  type AttackContext,
  type AttackOutcome,
  command,
  openGreeted,
  openTo,
  pause,
  RATE_LIMITS,
  readyWhenStarted,
  workers,
} from "../attack.ts";
import { HARD_ERROR_LIMIT } from "./command_flood.ts";
import { DOVECOT_USERS } from "../../../tests/_dovecot.ts";
import type { SmtpConn } from "../smtp_conn.ts";

const CONNECTIONS = 30;
const HOSTS = 2;
const BURST = 50;
const MAX_BURSTS = 10;
const MAX_SESSIONS = 20;
/** Replies one session may get at most: greeting, EHLO, the hard error limit, slack. */
const MAX_REPLIES = HARD_ERROR_LIMIT + 10;

function plain(user: string, password: string): string {
  return btoa(`\0${user}\0${password}`);
}

/**
 * The forms a wrong password is sent in (each ends with its line end):
 * the usual one, and odd ones whose handling (a refusal, a syntax error,
 * a malformed response, a mechanism not offered) might log the line.
 */
const FORMS: readonly ((p: string) => string)[] = [
  (p) => `AUTH PLAIN ${plain("alice", p)}\r\n`,
  (p) => `auth plain ${plain("alice", p)}\r\n`,
  (p) => `AUTH PLAIN\r\n${plain("alice", p)}\r\n`,
  (p) => `AUTH LOGIN ${btoa("alice")}\r\n${btoa(p)}\r\n`,
  (p) => `AUTH LOGIN\r\n${btoa("alice")}\r\n${p}\r\n`,
  (p) => `AUTH FOO ${plain("alice", p)}\r\n`,
  (p) => `AUTH PLAIN ${plain("alice", p)} trailing\r\n`,
  (p) => `AUTH PLAIN ${plain("alice", p)}!!\r\n`,
  (p) => `AUTH  PLAIN   ${plain("alice", p)}\r\n`,
  (p) => `AUTH PLAIN ${plain("alice", p)}\n`,
  (p) => `AUTH PLAIN ${plain("alice", p)}\r\n*\r\n`,
  (p) => `AUTH PLAIN ${plain("alice", p)}${"A".repeat(13000)}\r\n`,
];

/** The attack. */
export const authFlood: Attack = {
  name: "auth-flood",
  summary: `${CONNECTIONS} connections from ${HOSTS} addresses pipelining bursts of ${BURST} ` +
    `wrong AUTH PLAIN (Dovecot)`,
  target: "tls",
  // Dovecot answers a wrong password after its auth_failure_delay (2 s): give it time.
  quickMinMs: 5000,
  async run(ctx: AttackContext): Promise<AttackOutcome> {
    if (!ctx.auth) {
      ctx.ready();
      await ctx.ended;
      return { checks: [], notes: ["skipped: Dovecot is not installed (no AUTH to flood)"] };
    }
    const tag = crypto.randomUUID().slice(0, 8);
    const secrets = new Set<string>([DOVECOT_USERS.alice]);
    const forms = new Set<string>([plain("alice", DOVECOT_USERS.alice)]);
    const password = (i: number, n: number) => {
      const p = `${n % 10}wrong-${tag}-${i}-${n}`;
      secrets.add(p);
      forms.add(plain("alice", p)).add(btoa(p));
      return p;
    };
    const live = new Set<SmtpConn>();
    const codes = new Map<string, number>();
    let sessions = 0;
    let cut = 0;
    let maxReplies = 0;
    let sent = 0;
    const startedOne = readyWhenStarted(ctx, CONNECTIONS);
    const run = workers(CONNECTIONS, async (i) => {
      let n = 0;
      for (let s = 0; s < MAX_SESSIONS && !ctx.signal.aborted; s++) {
        // A few talk first: AUTH before the greeting (the improper pipelining log line).
        const o = s % 5 === 1
          ? await openTo(ctx.port, ctx.address(i % HOSTS)).then(async (conn) => {
            if (!conn) return undefined;
            await conn.write(FORMS[0]!(password(i, n++)));
            return { conn, greeting: await conn.reply(5000) };
          })
          : await openGreeted(ctx, ctx.address(i % HOSTS));
        if (s === 0) startedOne();
        if (!o) {
          await pause(100, ctx.signal);
          continue;
        }
        live.add(o.conn);
        sessions++;
        if (o.greeting.startsWith("220")) {
          await command(o.conn, "EHLO auth.example", 5000);
          for (let b = 0; b < MAX_BURSTS && !ctx.signal.aborted && !o.conn.closed; b++) {
            let burst = "";
            for (let k = 0; k < BURST; k++) {
              const p = password(i, n++);
              burst += FORMS[(i + k) % FORMS.length]!(p);
            }
            if (await o.conn.write(burst)) sent += BURST;
            await o.conn.waitClosed(1000);
            for (const m of o.conn.takeBuffered().matchAll(/^(\d{3}) /gm)) {
              codes.set(m[1]!, (codes.get(m[1]!) ?? 0) + 1);
            }
          }
        }
        if (o.conn.closedByServer) cut++;
        maxReplies = Math.max(maxReplies, o.conn.repliesIn);
        live.delete(o.conn);
        o.conn.destroy();
        await pause(50, ctx.signal);
      }
    });
    // A right password from an address of its own, while the flood runs.
    let rightReply = "";
    const right = await openGreeted(ctx, ctx.address(200));
    if (right) {
      await command(right.conn, "EHLO right.example", 5000);
      rightReply = await command(
        right.conn,
        `AUTH PLAIN ${plain("alice", DOVECOT_USERS.alice)}`,
        15_000,
      );
      right.conn.destroy();
    }
    await ctx.ended;
    for (const c of live) {
      maxReplies = Math.max(maxReplies, c.repliesIn);
      c.destroy();
    }
    await run;
    // The whole log (the file the harness writes, not only the tail it keeps in memory).
    await new Promise((r) => setTimeout(r, 300));
    // A log that cannot be read fails the check: an empty one would pass it unread.
    const log = await Deno.readTextFile(join(ctx.server.spec.dir, "smtpd.log")).catch((e) =>
      e instanceof Error ? e : new Error(String(e))
    );
    const leaked: string[] = [];
    const text = typeof log === "string" ? log : "";
    for (const form of [...secrets, ...forms]) {
      const at = text.indexOf(form);
      if (at >= 0 && leaked.length < 3) {
        leaked.push(JSON.stringify(text.slice(text.lastIndexOf("\n", at) + 1, at + 40)));
      }
    }
    const rateRefused = codes.get("450") ?? 0;
    return {
      checks: [
        {
          name: "AUTH flood sessions cut off",
          ok: maxReplies <= MAX_REPLIES,
          detail: `most replies in one session ${maxReplies} (at most ${MAX_REPLIES}: ` +
            `hard error limit ${HARD_ERROR_LIMIT} + 10)`,
        },
        {
          name: "smtpd_client_auth_rate_limit applied",
          ok: rateRefused > 0 || sent <= HOSTS * RATE_LIMITS.auth,
          detail: `${rateRefused} AUTH refused with 450 over the limit of ${RATE_LIMITS.auth}`,
        },
        {
          name: "a right password from another address accepted meanwhile",
          ok: rightReply.startsWith("235"),
          detail: rightReply.trim() || "no reply within 15 s",
        },
        {
          name: "no password in the server's log",
          ok: typeof log === "string" && log.length > 0 && leaked.length === 0,
          detail: typeof log !== "string"
            ? `the server's log could not be read: ${log.message}`
            : leaked.length
            ? leaked.join("; ")
            : `none of the ${secrets.size} passwords (plain, base64, in ${FORMS.length} ` +
              `forms of AUTH) in ${log.length} bytes`,
        },
      ],
      notes: [
        `${sessions} sessions, ${sent} AUTH sent, ${cut} sessions ended by the server; replies: ${
          [...codes].sort().map(([k, v]) => `${k} x${v}`).join(", ")
        }`,
      ],
    };
  },
};
