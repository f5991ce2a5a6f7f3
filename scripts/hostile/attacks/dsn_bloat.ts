/**
 * DSN and SMTPUTF8 envelope bloat: 90 sessions from 9 addresses each
 * open a transaction (MAIL with SMTPUTF8, RET and a 100-character ENVID)
 * and pipeline up to smtpd_recipient_limit (1000) recipients, each as
 * long as a command line allows: a UTF-8 local part of Cyrillic letters
 * (two bytes each, and no Latin-1 string in the server's memory), NOTIFY
 * and a 500-character ORCPT (RFC 3461's most). Then they hold the
 * transaction, never sending DATA, so that the server keeps every
 * envelope in memory at once: about 1.8 MB of parameters a session.
 *
 * The server holds a transaction's envelope in memory until DATA (Postfix's
 * smtpd writes each recipient to its cleanup at once, so to disk), so what
 * 90 such sessions make it hold is about what they sent, bounded by
 * default_process_limit x smtpd_recipient_limit x line_length_limit and by
 * smtpd_memory_budget (README). The common 256 MiB target is therefore not
 * this attack's: its own is the server's RSS when the attack began plus
 * twice the envelope bytes the server acknowledged (the strings as sent,
 * and V8's room to grow between collections), never below 256 MiB. It
 * fails when the server keeps more than that per recipient, or copies.
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
  workers,
} from "../attack.ts";
import { TARGETS } from "../report.ts";
import type { SmtpConn } from "../smtp_conn.ts";

const CLIENTS = 90;
const HOSTS = 9;
const RECIPIENTS = 1000;
const BURST = 100;

const enc = new TextEncoder();

/** One RCPT line of about 1.8 KB (line_length_limit is 2048). */
function rcpt(session: number, n: number): string {
  const local = `ж${session}x${n}`.padEnd(600, "ж");
  const orcpt = `rfc822;${`o${session}.${n}`.padEnd(470, "o")}@hostile.example`;
  return `RCPT TO:<${local}@hostile.example> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=${orcpt}\r\n`;
}

/** The attack. */
export const dsnBloat: Attack = {
  name: "dsn-bloat",
  summary: `${CLIENTS} sessions from ${HOSTS} addresses hold ${RECIPIENTS} recipients each, ` +
    `with UTF-8 local parts and 500-character ORCPTs`,
  target: "main",
  async run(ctx: AttackContext): Promise<AttackOutcome> {
    const startMiB = ctx.server.rssMiB();
    const conns: SmtpConn[] = [];
    let accepted = 0;
    let full = 0;
    let transactions = 0;
    const codes = new Map<string, number>();
    const samples: string[] = [];
    const lineBytes = enc.encode(rcpt(0, 0)).length;
    await workers(CLIENTS, async (i) => {
      if (ctx.signal.aborted) return;
      const o = await openGreeted(ctx, ctx.address(i % HOSTS));
      if (!o) return;
      conns.push(o.conn);
      if (!o.greeting.startsWith("220")) return;
      await command(o.conn, "EHLO bloat.example", 5000);
      const mail = await command(
        o.conn,
        `MAIL FROM:<жbloat${i}@evil.example> SMTPUTF8 RET=HDRS ENVID=${"e".repeat(100)}`,
      );
      if (!mail.startsWith("250")) {
        codes.set(`MAIL ${mail.slice(0, 3)}`, (codes.get(`MAIL ${mail.slice(0, 3)}`) ?? 0) + 1);
        return;
      }
      transactions++;
      let mine = 0;
      for (let b = 0; b < RECIPIENTS / BURST && !ctx.signal.aborted && !o.conn.closed; b++) {
        let burst = "";
        for (let k = 0; k < BURST; k++) burst += rcpt(i, b * BURST + k);
        await o.conn.burst(burst, BURST, 15_000);
        const text = o.conn.takeBuffered();
        if (samples.length < 2 && /^[45]/m.test(text)) {
          samples.push(/^[45]\d\d [^\r\n]*/m.exec(text)![0].slice(0, 100));
        }
        for (const m of text.matchAll(/^(\d{3}) /gm)) {
          codes.set(m[1]!, (codes.get(m[1]!) ?? 0) + 1);
          if (m[1] === "250") mine++;
        }
      }
      accepted += mine;
      if (mine === RECIPIENTS) full++;
    });
    ctx.ready();
    await ctx.ended;
    closeAll(conns);
    const envelopeMiB = accepted * lineBytes / 2 ** 20;
    return {
      checks: [],
      rssTarget: {
        miB: Math.max(TARGETS.maxRssMiB, startMiB + 2 * envelopeMiB),
        why: `RSS at the start ${startMiB.toFixed(0)} MiB + 2 x ${
          envelopeMiB.toFixed(0)
        } MiB of acknowledged envelope (held in memory until DATA, by design)`,
      },
      notes: [
        `${transactions} transactions held with ${accepted} recipients (${full} with all ` +
        `${RECIPIENTS}; RCPT lines of ${lineBytes} bytes, ${
          (accepted * lineBytes / 2 ** 20).toFixed(0)
        } MiB of envelope sent); replies: ${
          [...codes].sort().map(([k, v]) => `${k} x${v}`).join(", ")
        }${samples.length ? ` (${samples.join("; ")})` : ""}`,
      ],
    };
  },
};
