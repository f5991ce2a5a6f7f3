/**
 * Server CPU per SMTP command: one client pipelines a bounded number of
 * one kind of command (NOOP, RSET, `HELO x`, `MAIL FROM:<a@b>` + RSET, an
 * unknown word) in groups of 1,000, reading every reply, and the server's
 * utime + stime from /proc/PID/stat before and after give microseconds
 * per command. The daemons run with the test harness's configuration and
 * the junk command and error limits out of the way; each source tree
 * given runs its own, and with --postfix a private Postfix smtpd (its
 * session's process, found with ss) is measured the same way. Sessions of
 * the servers are interleaved, after one untimed warm-up session each, and
 * each figure is the min and median of --reps sessions, with the median of
 * each tree's ratio to the first one's (paired by repetition). The
 * clock's tick is 10 ms: 100,000 commands measure to 0.1 µs.
 *
 * Usage (as root for --postfix): deno run -A scripts/bench/command_cost.ts
 *   [--tree DIR]... [--postfix] [--commands 100000] [--reps 5] [--kinds noop,helo]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { procCpuSeconds } from "../hostile/server.ts";

const KINDS: Record<string, string[]> = {
  noop: ["NOOP"],
  rset: ["RSET"],
  helo: ["HELO x"],
  mailrset: ["MAIL FROM:<a@b>", "RSET"],
  unknown: ["XYZZY"],
};
const GROUP = 1000;
const LIMITS = 10_000_000;
const encoder = new TextEncoder();

/** A server under measurement. */
interface Server {
  readonly name: string;
  readonly port: number;
  pid(): Promise<number>;
  stop(): Promise<void>;
}

/** One session: CPU µs per command of the server's process. */
async function session(server: Server, commands: string[], count: number): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const buf = new Uint8Array(1 << 16);
  const decoder = new TextDecoder();
  const errorsExpected = !commands.every((c) => /^(NOOP|RSET|HELO|MAIL)/.test(c));
  let pending = "";
  let replies = 0;
  const read = async (want: number) => {
    while (replies < want) {
      const n = await conn.read(buf);
      if (n === null) throw new Error(`${server.name}: closed after ${replies} replies`);
      pending += decoder.decode(buf.subarray(0, n));
      for (let i = pending.indexOf("\r\n"); i >= 0; i = pending.indexOf("\r\n")) {
        const line = pending.slice(0, i);
        pending = pending.slice(i + 2);
        if (line[3] !== " ") continue;
        replies++;
        if (!errorsExpected && !/^[23]/.test(line)) throw new Error(`${server.name}: ${line}`);
      }
    }
  };
  try {
    await read(1);
    const pid = await server.pid();
    const group = encoder.encode(
      commands.map((c) => `${c}\r\n`).join("").repeat(GROUP / commands.length),
    );
    const before = procCpuSeconds(pid);
    for (let sent = GROUP; sent <= count; sent += GROUP) {
      await conn.write(group);
      await read(1 + sent);
    }
    const used = procCpuSeconds(pid) - before;
    await conn.write(encoder.encode("QUIT\r\n"));
    await read(2 + count);
    return used / count * 1e6;
  } finally {
    conn.close();
  }
}

async function startOurs(tree: string): Promise<Server> {
  const harness = await import(`${tree}/tests/_harness.ts`);
  const daemon = await harness.startDaemon([
    `smtpd_junk_command_limit = ${LIMITS}`,
    `smtpd_hard_error_limit = ${LIMITS}`,
    `smtpd_soft_error_limit = ${LIMITS}`,
  ].join("\n"));
  return {
    name: tree.split("/").filter(Boolean).pop() ?? tree,
    port: daemon.port,
    pid: () => Promise.resolve(daemon.pid),
    stop: () => daemon.stop(),
  };
}

async function startPostfixSmtpd(tree: string): Promise<Server> {
  const harness = await import(`${tree}/tests/_harness.ts`);
  const postfix = await import(`${tree}/tests/_postfix.ts`);
  const port = harness.freePort();
  const instance = await postfix.startPostfix(await harness.makeWorkDir("command-cost"), {
    name: "cmdcost",
    smtpdPort: port,
    mainCfExtra: [
      `smtpd_junk_command_limit = ${LIMITS}`,
      `smtpd_hard_error_limit = ${LIMITS}`,
      `smtpd_soft_error_limit = ${LIMITS}`,
      "smtpd_error_sleep_time = 0",
      "",
    ].join("\n"),
  });
  return {
    name: "postfix",
    port,
    async pid() {
      for (let i = 0; i < 100; i++) {
        const out = await harness.sh(`ss -tnpH state established '( sport = :${port} )' || true`);
        const m = /"smtpd",pid=(\d+)/.exec(out);
        if (m) return Number(m[1]);
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error("no Postfix smtpd process for the session");
    },
    stop: () => instance.stop(),
  };
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      tree: { type: "string", multiple: true },
      postfix: { type: "boolean", default: false },
      commands: { type: "string", default: "100000" },
      reps: { type: "string", default: "5" },
      kinds: { type: "string", default: Object.keys(KINDS).join(",") },
    },
  });
  const root = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
  const trees = values.tree?.length ? values.tree : [root];
  const count = Math.ceil(Number(values.commands) / GROUP) * GROUP;
  const reps = Number(values.reps);
  const kinds = values.kinds.split(",");
  for (const k of kinds) if (!KINDS[k]) throw new Error(`unknown kind ${k}`);
  const servers: Server[] = [];
  try {
    for (const tree of trees) servers.push(await startOurs(tree));
    if (values.postfix) servers.push(await startPostfixSmtpd(root));
    for (const k of kinds) for (const s of servers) await session(s, KINDS[k]!, 20 * GROUP);
    const lines = [`| command | ${servers.map((s) => `${s.name} min / median µs`).join(" | ")} |`];
    lines.push(`| --- |${" --- |".repeat(servers.length)}`);
    for (const k of kinds) {
      const runs = servers.map(() => [] as number[]);
      for (let r = 0; r < reps; r++) {
        const order = servers.map((_, i) => i);
        if (r % 2) order.reverse();
        for (const i of order) runs[i]!.push(await session(servers[i]!, KINDS[k]!, count));
      }
      const cells = runs.map((a, i) => {
        const ratio = i === 0 ? "" : ` (x${median(a.map((v, j) => v / runs[0]![j]!)).toFixed(2)})`;
        return `${Math.min(...a).toFixed(2)} / ${median(a).toFixed(2)}${ratio}`;
      });
      lines.push(`| ${KINDS[k]!.join(" + ")} | ${cells.join(" | ")} |`);
    }
    Deno.stdout.writeSync(encoder.encode(`${lines.join("\n")}\n`));
  } finally {
    for (const s of servers) await s.stop();
  }
}
