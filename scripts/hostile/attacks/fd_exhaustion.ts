/**
 * Descriptor exhaustion: lowers the server's soft RLIMIT_NOFILE (prlimit)
 * to what it has open plus 32, then holds 150 idle connections from 15
 * addresses, reopened when closed. The limit is restored before the
 * attack returns, whatever happens.
 *
 * @module
 */

import { type Attack, type AttackContext, type AttackOutcome, pause, workers } from "../attack.ts";
import { SmtpConn } from "../smtp_conn.ts";

const HOLDERS = 150;
const HOSTS = 15;
const HEADROOM = 32;
const MAX_REOPEN = 300;

/**
 * The soft and hard RLIMIT_NOFILE of a process, from /proc/PID/limits.
 * @param pid the process
 * @returns the two limits ("unlimited" as Infinity)
 */
export function nofileLimits(pid: number): { soft: number; hard: number } {
  const text = Deno.readTextFileSync(`/proc/${pid}/limits`);
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!m) throw new Error(`no "Max open files" in /proc/${pid}/limits`);
  const n = (s: string) => s === "unlimited" ? Infinity : Number(s);
  return { soft: n(m[1]!), hard: n(m[2]!) };
}

async function prlimit(pid: number, soft: number, hard: number): Promise<string | undefined> {
  const v = (x: number) => x === Infinity ? "unlimited" : String(x);
  const out = await new Deno.Command("prlimit", {
    args: ["--pid", String(pid), `--nofile=${v(soft)}:${v(hard)}`],
    stdout: "null",
    stderr: "piped",
  }).output();
  return out.success ? undefined : new TextDecoder().decode(out.stderr).trim();
}

/** The attack. */
export const fdExhaustion: Attack = {
  name: "fd-exhaustion",
  summary:
    `prlimit: open descriptors + ${HEADROOM}; ${HOLDERS} idle connections from ${HOSTS} addresses`,
  target: "main",
  // A refused client is held 2 s before its 421, then retries: give the lock-out time to show.
  quickMinMs: 5000,
  async run(ctx: AttackContext): Promise<AttackOutcome> {
    const pid = ctx.server.pid;
    const before = nofileLimits(pid);
    const openAtStart = ctx.server.openFds();
    const lowered = openAtStart + HEADROOM;
    const err = await prlimit(pid, lowered, before.hard);
    if (err) {
      ctx.ready();
      return {
        checks: [{ name: "prlimit applied", ok: false, detail: err }],
        notes: [],
      };
    }
    const live = new Set<SmtpConn>();
    let peakFds = openAtStart;
    let opened = 0;
    let greeted = 0;
    let firstRound = 0;
    const allOpen = Promise.withResolvers<void>();
    const sampler = setInterval(() => {
      peakFds = Math.max(peakFds, ctx.server.openFds());
    }, 200);
    let restored: { soft: number; hard: number } | undefined;
    let restoreError: string | undefined;
    try {
      const run = workers(HOLDERS, async (i) => {
        for (let n = 0; n < MAX_REOPEN && !ctx.signal.aborted; n++) {
          const c = await SmtpConn.open({ port: ctx.port, localAddress: ctx.address(i % HOSTS) })
            .catch(() => undefined);
          if (n === 0 && ++firstRound === HOLDERS) allOpen.resolve();
          if (!c) {
            await pause(100, ctx.signal);
            continue;
          }
          opened++;
          live.add(c);
          if ((await c.reply(3000)).startsWith("220")) greeted++;
          while (!c.closed && !ctx.signal.aborted) await c.waitClosed(500);
          live.delete(c);
          c.destroy();
          await pause(20, ctx.signal);
        }
      });
      await Promise.race([allOpen.promise, ctx.ended]);
      ctx.ready();
      await ctx.ended;
      for (const c of live) c.destroy();
      await run;
    } finally {
      clearInterval(sampler);
      restoreError = await prlimit(pid, before.soft, before.hard);
      try {
        restored = nofileLimits(pid);
      } catch { /* process gone */ }
    }
    const ok = restored !== undefined && restored.soft === before.soft;
    return {
      checks: ctx.server.exited ? [] : [{
        name: "limit restored",
        ok,
        detail: restoreError ?? `soft limit back to ${restored?.soft}`,
      }],
      notes: [
        `soft limit ${before.soft} lowered to ${lowered} (${openAtStart} open at start, ` +
        `peak ${peakFds}); ${opened} connections held, ${greeted} greeted`,
      ],
    };
  },
};
