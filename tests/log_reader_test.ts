/**
 * A log reader that stops reading (a terminal held with Ctrl-S, a log
 * shipper stuck at the other end of the pipe) must stop no session: the
 * daemon's stderr is a pipe this test stops reading, a debug peer's
 * dialog fills it, and a new client must still have its message queued;
 * lines past the sink's backlog are dropped and counted once the reader
 * reads again; and SIGTERM still ends the daemon while stderr takes
 * nothing.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  makeWorkDir,
  queueFiles,
  RawClient,
  readOrEmpty,
  ROOT,
  run,
  sh,
  smtpdArgs,
  spawnLogged,
  startDaemon,
  swaks,
  waitFor,
  writeConfig,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Each client command and reply is a log line (debug_peer_level 2 by default). */
const DEBUG_PEER = ['debug_peer_list = ["127.0.0.1"]', "smtpd_peername_lookup = false"].join(
  "\n",
);

/** How many HELO commands the flood sends, in pipelined groups of GROUP. */
const GROUP = 1000;

/**
 * Sends `count` HELO commands in pipelined groups and reads every reply,
 * each group within `groupMs`.
 * @param port the daemon's port
 * @param count how many HELO commands
 * @param groupMs the longest wait for one group's replies
 */
async function heloFlood(port: number, count: number, groupMs: number): Promise<void> {
  const c = await RawClient.connect(port);
  try {
    assert.match(await c.reply(groupMs), /^220 /);
    for (let sent = 0; sent < count; sent += GROUP) {
      await c.send("HELO flood.example\r\n".repeat(GROUP));
      for (let i = 0; i < GROUP; i++) assert.match(await c.reply(groupMs), /^250 /);
    }
    await c.send("QUIT\r\n");
    await c.reply(groupMs);
  } finally {
    c.close();
  }
}

/** A whole log line: syslog's stamp, host, program[pid], then the text. */
const WHOLE_LINE = /^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ postfix\/smtpd\[\d+\]: \S/;

Deno.test({
  name:
    "stderr nobody reads: a 40,000-command debug dialog and a new client's message go on; dropped lines are counted when it reads again",
  ...opts,
  fn: async () => {
    const d = await startDaemon(DEBUG_PEER);
    try {
      d.pauseLog();
      // About 80,000 log lines, some 6 MB: past the pipe (64 KiB) at once,
      // and past the backlog the daemon holds (4 MiB).
      const flood = 40 * GROUP;
      await heloFlood(d.port, flood, 15_000);
      // A client that comes now is served while stderr still takes nothing.
      const r = await swaks(d.port, ["--to", "user@example.com", "--timeout", "20"]);
      assert.match(r.stdout, /250 2\.0\.0 Ok: queued as/, r.stdout);
      assert.equal((await queueFiles(d.queueDir)).length, 1);

      d.resumeLog();
      await d.waitForLog(
        /warning: stderr: \d+ log lines were dropped: the log reader took them slower than they came/,
        20_000,
      );
      const log = d.log();
      const dropped = Number(/stderr: (\d+) log lines were dropped/.exec(log)![1]);
      const lines = log.split("\n").slice(0, -1);
      // Every line is whole: no line was cut where a write stopped.
      const broken = lines.filter((l) => !WHOLE_LINE.test(l));
      assert.deepEqual(broken, [], "every log line whole");
      const kept = lines.filter((l) => /: HELO flood\.example$/.test(l)).length;
      assert.ok(kept < flood, `some of the flood's command lines were dropped (${kept} kept)`);
      assert.ok(kept > 0, "the lines before the backlog filled were kept");
      // Each HELO is two lines (command and reply): the ones not kept were counted.
      assert.ok(
        dropped >= 2 * (flood - kept) - 2,
        `dropped ${dropped} counts the ${flood - kept} HELO commands not kept`,
      );
    } finally {
      // Read again first: a daemon stuck on a full stderr could not end.
      d.resumeLog();
      await d.stop();
    }
  },
});

Deno.test({
  name: "stderr nobody reads: SIGTERM ends the daemon all the same, within a few seconds",
  ...opts,
  fn: async () => {
    const d = await startDaemon(DEBUG_PEER);
    let ended = false;
    try {
      d.pauseLog();
      // About 10,000 log lines: the pipe is full, a write to it waits.
      // (Whether the flood itself went through is the test above's; here
      // the signal comes either way.)
      await heloFlood(d.port, 5 * GROUP, 5_000).catch(() => {});
      const start = Date.now();
      Deno.kill(d.pid, "SIGTERM");
      // The process ends by itself; its stderr is read only after that.
      await waitFor("the daemon's end within 10 s of SIGTERM", () => hasEnded(d.pid), 10_000, 50)
        .catch(() => assert.fail(`still running ${Date.now() - start} ms after SIGTERM`));
      ended = true;
      d.resumeLog();
      const exit = await d.exited();
      assert.equal(exit.code, 0, d.log().slice(-2000));
    } finally {
      d.resumeLog();
      if (!ended) await d.stop("SIGKILL");
    }
  },
});

Deno.test({
  name:
    "stderr a file on a full file system: the daemon goes on, and once there is room the log goes on too, after a line saying how many lines were lost",
  ignore: Deno.uid() !== 0, // it mounts a small tmpfs
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("logfull");
    const mnt = join(dir, "logfs");
    await Deno.mkdir(mnt);
    await sh(`mount -t tmpfs -o size=64k tmpfs ${mnt}`);
    const logFile = join(mnt, "smtpd.log");
    let child: Deno.ChildProcess | undefined;
    try {
      const { configFile } = await writeConfig(dir, "");
      // stderr is the file itself, as with `smtpd serve 2>/var/log/smtpd.log`.
      child = new Deno.Command("sh", {
        args: [
          "-c",
          'exec "$0" "$@" 2>"$LOG"',
          Deno.execPath(),
          ...await smtpdArgs(["serve", "-c", configFile]),
        ],
        env: { LOG: logFile },
        cwd: ROOT,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const log = () => readOrEmpty(logFile);
      const listening = /listening on 127\.0\.0\.1:(\d+)/;
      await waitFor("the daemon's start", async () => listening.test(await log()), 15_000);
      const port = Number(listening.exec(await log())![1]);
      const queued = async () => {
        const r = await swaks(port, ["--to", "user@example.com", "--timeout", "20"]);
        const id = /250 2\.0\.0 Ok: queued as (\S+)/.exec(r.stdout);
        assert.ok(id, r.stdout);
        return id[1]!;
      };
      // The file system fills up (dd ends with "No space left on device").
      await run("dd", ["if=/dev/zero", `of=${join(mnt, "filler")}`, "bs=4k"]);
      // The log file takes lines until its last page is full: then a write
      // stops in the middle of a line, and the rest of it fails. Clients
      // are served all along.
      let sessions = 0;
      let cutAt = 0;
      await waitFor(
        "a log write cut short by the full file system",
        async () => {
          await queued();
          sessions++;
          const text = await log();
          cutAt = text.length; // (ASCII: one byte a character)
          return cutAt % 4096 === 0 && !text.endsWith("\n");
        },
        30_000,
        0,
      );
      assert.ok(sessions <= 10, `${sessions} sessions before the log's page was full`);
      // More messages while it stays full, past a few of the daemon's
      // retries (one a second): none of their lines can be written.
      const whileFull: string[] = [];
      for (const until = Date.now() + 3500; Date.now() < until;) whileFull.push(await queued());

      await Deno.remove(join(mnt, "filler"));
      const after = await queued();
      await waitFor(
        "the log lines of a message queued once there is room",
        async () => (await log()).includes(`: ${after}: from=<`),
        10_000,
      );
      const text = await log();
      // The line cut short is ended, and the next says what was lost (at
      // least the rest of that line).
      const next = text.slice(cutAt).split("\n", 2);
      assert.equal(
        next[0],
        "",
        `the line cut short is ended: ${text.slice(cutAt - 80, cutAt + 200)}`,
      );
      const said =
        /postfix\/smtpd\[\d+\]: warning: stderr: ([1-9]\d*) log lines? w(?:as|ere) dropped: writing them failed: No space left on device/
          .exec(next[1] ?? "");
      assert.ok(said, next[1]);
      // The count covers every failed write, not only the last: a message
      // queued while full whose from= line is missing lost its session's
      // lines (connect, client=, message-id=, from=, disconnect).
      const missing = whileFull.filter((id) => !text.includes(`: ${id}: from=<`)).length;
      assert.ok(missing > 0, "messages queued while full have lines missing");
      assert.ok(
        Number(said[1]) >= 4 * missing,
        `${said[1]} lines said dropped; ${missing} messages' lines are missing`,
      );
      // Every line but that one is whole.
      const lines = text.slice(0, cutAt).split("\n").slice(0, -1)
        .concat(text.slice(cutAt + 1).split("\n").slice(0, -1));
      assert.deepEqual(lines.filter((l) => !WHOLE_LINE.test(l)), [], "every other line whole");
    } finally {
      if (child) {
        try {
          child.kill("SIGTERM");
        } catch { /* ended */ }
        await child.status;
      }
      await sh(`umount ${mnt}`);
    }
  },
});

Deno.test({
  name:
    "stand-alone mode, stderr nobody reads, SIGTERM, then a client that sends on: no queue file is left half-written",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("logsig");
    const { configFile, queueDir } = await writeConfig(dir, DEBUG_PEER);
    const child = new Deno.Command(Deno.execPath(), {
      args: await smtpdArgs(["stdin", "-c", configFile]),
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped", // never read
    }).spawn();
    const writer = child.stdin.getWriter();
    const reader = child.stdout.getReader();
    const decoder = new TextDecoder();
    let text = "";
    /** The next `n` reply lines. */
    const replies = async (n: number): Promise<string[]> => {
      const end = Date.now() + 15_000;
      while ((text.match(/\r\n/g) ?? []).length < n) {
        const { value, done } = await reader.read();
        if (done || Date.now() > end) throw new Error(`no reply: ${text.slice(-200)}`);
        text += decoder.decode(value, { stream: true });
      }
      const lines = text.split("\r\n");
      text = lines.slice(n).join("\r\n");
      return lines.slice(0, n);
    };
    const send = (t: string) => writer.write(new TextEncoder().encode(t));
    // A process stuck in a write to its stderr (the fault this guards
    // against) reads no more input: its reads, writes and status would
    // wait for ever. Killed at this bound, it fails the test instead.
    const watchdog = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* ended */ }
    }, 60_000);
    try {
      assert.match((await replies(1))[0]!, /^220 /);
      // Some 6,000 log lines: stderr's pipe is full.
      await send("HELO x\r\n".repeat(3000));
      assert.equal((await replies(3000)).filter((r) => r.startsWith("250 ")).length, 3000);
      child.kill("SIGTERM");
      // The process waits up to a second for stderr; a client that sends on
      // meanwhile begins a message.
      await send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
      const [mail, rcpt, data] = await replies(3);
      assert.match(`${mail} ${rcpt} ${data}`, /^250 .* 250 .* 354 /);
      const body = `${"y".repeat(70)}\r\n`.repeat(2000);
      const end = Date.now() + 10_000;
      // Until the process ends (its stdin closes).
      while (Date.now() < end) {
        const sent = await send(body).then(() => true, () => false);
        if (!sent) break;
      }
      const status = await child.status;
      assert.equal(status.code, 128 + 15);
      const left: string[] = [];
      for (const sub of ["incoming", "maildrop"]) {
        for await (const e of Deno.readDir(join(queueDir, sub))) {
          const mode = (await Deno.stat(join(queueDir, sub, e.name))).mode ?? 0;
          // A finished queue file has the owner's execute bit (Postfix's mark).
          if (!(mode & 0o100)) {
            left.push(
              `${sub}/${e.name} (${(mode & 0o777).toString(8)}, ${
                (await Deno.stat(join(queueDir, sub, e.name))).size
              } bytes)`,
            );
          }
        }
      }
      assert.deepEqual(left, [], "no half-written queue file");
    } finally {
      clearTimeout(watchdog);
      try {
        child.kill("SIGKILL");
      } catch { /* ended */ }
      await child.status;
      await reader.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
    }
  },
});

/**
 * Runs a command with its stderr in non-blocking mode (O_NONBLOCK, a flag
 * of the open pipe, as a launcher that set it on a pipe it shares leaves it).
 */
const NONBLOCKING_STDERR = [
  "-c",
  "import fcntl, os, sys; fcntl.fcntl(2, fcntl.F_SETFL, fcntl.fcntl(2, fcntl.F_GETFL) | os.O_NONBLOCK); os.execv(sys.argv[1], sys.argv[1:])",
];

Deno.test({
  name:
    "two listener threads, a non-blocking stderr nobody reads, then read again: no line of one thread is spliced into a line of the other",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("lognb");
    const { configFile } = await writeConfig(dir, `${DEBUG_PEER}\nsmtpd_listen_threads = 2`);
    const proc = spawnLogged("python3", [
      ...NONBLOCKING_STDERR,
      Deno.execPath(),
      ...await smtpdArgs(["serve", "-c", configFile]),
    ]);
    try {
      const port = Number((await proc.waitForLog(/listening on 127\.0\.0\.1:(\d+)/, 15_000))![1]);
      // Several clients, so that both threads have some (the kernel spreads
      // connections over the two listening sockets); each dialog's lines
      // (2,000 commands, 4,000 lines) stay within a thread's backlog. Then
      // the log is read again: each thread's held lines go out in pieces as
      // the pipe takes them, the two threads' writes in turn. A few rounds.
      const clients = 6;
      const rounds = 4;
      for (let round = 1; round <= rounds; round++) {
        proc.pauseLog();
        await Promise.all(
          Array.from({ length: clients }, () => heloFlood(port, 2 * GROUP, 15_000)),
        );
        proc.resumeLog();
        await waitFor(
          `every client's disconnect line, round ${round}`,
          () => proc.log().split(": disconnect from ").length > round * clients,
          20_000,
        );
      }
      const lines = proc.log().split("\n").slice(0, -1);
      const stamp = /[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ postfix\/smtpd\[\d+\]: /g;
      const spliced = lines.filter((l) => !WHOLE_LINE.test(l) || l.match(stamp)!.length !== 1);
      assert.deepEqual(spliced.slice(0, 5), [], `${spliced.length} lines spliced or cut`);
      assert.equal(
        lines.filter((l) => /: HELO flood\.example$/.test(l)).length,
        rounds * clients * 2 * GROUP,
        "no command line was lost",
      );
    } finally {
      proc.resumeLog();
      await proc.stop();
    }
  },
});

/**
 * Whether no process has the PID any more (the daemon ended; its exit
 * status is read later, with its stderr).
 * @param pid the process
 * @returns true once it has ended (a zombie not yet reaped by this test counts)
 */
async function hasEnded(pid: number): Promise<boolean> {
  try {
    return /^\d+ \(.*\) Z /.test(await Deno.readTextFile(`/proc/${pid}/stat`));
  } catch {
    return true;
  }
}
