/**
 * A listening socket that breaks under the daemon is opened again. The
 * socket is destroyed from outside with `ss -K` (SOCK_DESTROY, as an
 * administrator or a network daemon could): accept(2) then fails with
 * EINVAL for good. The daemon must not spin on it, and must listen again
 * on the same port by itself, in every listener thread; when it cannot
 * (the port was taken meanwhile), it exits non-zero for its service manager
 * to restart it.
 */

import assert from "node:assert/strict";
import {
  type Daemon,
  makeWorkDir,
  RawClient,
  run,
  smtpdArgs,
  spawnLogged,
  startDaemon,
  swaks,
  waitFor,
  writeConfig,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** User + system CPU time of a process, in clock ticks (1/100 s). */
async function cpuTicks(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

async function listeningSockets(port: number): Promise<number> {
  const r = await run("ss", ["-H", "-t", "-l", "-n", `sport = :${port}`]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split("\n").filter((l) => l.includes("LISTEN")).length;
}

async function destroyAndRecover(d: Daemon, threads: number): Promise<void> {
  assert.equal(await listeningSockets(d.port), threads);
  // One call may leave one of several SO_REUSEPORT sockets: repeat (bounded).
  for (let i = 0; i < 5 && (await listeningSockets(d.port)) > 0; i++) {
    const r = await run("ss", ["-K", "-t", "-l", `sport = :${d.port}`]);
    assert.equal(r.code, 0, r.stderr);
  }
  assert.equal(await listeningSockets(d.port), 0, "ss -K did not destroy the listener");
  await new Promise((res) => setTimeout(res, 300));
  const t0 = await cpuTicks(d.pid);
  const started = performance.now();
  await new Promise((res) => setTimeout(res, 1000));
  const ticks = (await cpuTicks(d.pid)) - t0;
  const elapsed = (performance.now() - started) / 1000;
  assert.ok(
    ticks / elapsed < 25,
    `the server used ${ticks} ticks of CPU in ${elapsed.toFixed(2)} s on a broken listener`,
  );
  // Opened again (after 5 s of failures), on the same port, by every thread.
  const end = Date.now() + 15000;
  while ((await listeningSockets(d.port)) < threads && Date.now() < end) {
    await new Promise((res) => setTimeout(res, 200));
  }
  assert.equal(await listeningSockets(d.port), threads, d.log());
  for (let i = 0; i < 4; i++) {
    const c = await RawClient.connect(d.port);
    try {
      assert.match(await c.reply(), /^220 /);
      await c.send("QUIT\r\n");
      assert.match(await c.reply(), /^221 /);
    } finally {
      c.close();
    }
  }
  const s = await swaks(d.port, ["--to", "u@example.com"]);
  assert.equal(s.code, 0, s.stdout + s.stderr);
  // Each thread logs it after its listen, through its own log buffer
  // (written every 20 ms, later on a loaded host): wait for them all.
  const again = () => (d.log().match(/listener 127\.0\.0\.1:\d+: listening again/g) ?? []).length;
  await waitFor("every thread's 'listening again'", () => Promise.resolve(again() >= threads))
    .catch(() => {});
  const log = d.log();
  assert.match(log, /warning: accept: Invalid argument; backing off/);
  assert.equal(again(), threads, log);
}

Deno.test({
  name: "a listening socket destroyed under the daemon (ss -K) is opened again, without spinning",
  ...opts,
  fn: async () => {
    const d = await startDaemon("smtpd_listen_threads = 1\nsmtpd_peername_lookup = false");
    try {
      await destroyAndRecover(d, 1);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "with two listener threads, both open their destroyed listeners again",
  ...opts,
  fn: async () => {
    const d = await startDaemon("smtpd_listen_threads = 2\nsmtpd_peername_lookup = false");
    try {
      await destroyAndRecover(d, 2);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "a listener that cannot be opened again (port taken) ends the daemon with status 1",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("relisten");
    const { configFile } = await writeConfig(
      dir,
      "smtpd_listen_threads = 1\nsmtpd_peername_lookup = false",
    );
    const proc = spawnLogged(Deno.execPath(), await smtpdArgs(["serve", "-c", configFile]));
    let squatter: Deno.Listener | undefined;
    try {
      const listening = await proc.waitForLog(/listening on 127\.0\.0\.1:(\d+)/, 15000);
      const port = Number(listening![1]);
      const r = await run("ss", ["-K", "-t", "-l", `sport = :${port}`]);
      assert.equal(r.code, 0, r.stderr);
      // Someone else takes the port before the daemon can listen again.
      squatter = Deno.listen({ hostname: "127.0.0.1", port });
      const timer = setTimeout(() => proc.child.kill("SIGKILL"), 60000);
      const status = await proc.exited();
      clearTimeout(timer);
      const log = proc.log();
      assert.equal(status.code, 1, log);
      assert.match(log, /opening it again/);
      assert.match(
        log,
        /error: listener 127\.0\.0\.1:\d+: cannot listen again for \d+ s: Address already in use; exiting/,
      );
    } finally {
      squatter?.close();
      await proc.stop("SIGKILL");
    }
  },
});
