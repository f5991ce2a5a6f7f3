/**
 * Reload on SIGHUP, end to end: the real daemon with the flags derived
 * from its configuration, swaks and a raw client over loopback, the
 * configuration and an access table rewritten, then `kill -HUP` by PID.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Daemon,
  makeWorkDir,
  RawClient,
  ROOT,
  run,
  smtpdArgs,
  startDaemon,
  writeConfig,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** The sender access table's lines for a sender. */
function table(answer: string): string {
  return `spammer@bad.example ${answer}\n`;
}

/** The configuration lines of a test: the sender access table, and more. */
function extra(access: string, more = ""): string {
  return `smtpd_sender_restrictions = ["check_sender_access", "texthash:${access}"]\n${more}`;
}

/** Sends one message from the listed sender with swaks; returns the transcript. */
async function swaks(port: number): Promise<string> {
  const r = await run("swaks", [
    "--server",
    `127.0.0.1:${port}`,
    "--from",
    "spammer@bad.example",
    "--to",
    "user@example.com",
    "--body",
    "reload test",
  ]);
  return r.stdout + r.stderr;
}

/** The transcript's RCPT answer or queue id line, for the report. */
function answer(transcript: string): string {
  return transcript.split("\n").filter((l) => /^(<~?\*\* |<[-~] +250 2\.0\.0 Ok: queued)/.test(l))
    .join("\n");
}

/** Sends SIGHUP to the daemon and waits for the n-th reload outcome in its log. */
async function hup(d: Daemon, n: number): Promise<void> {
  Deno.kill(d.pid, "SIGHUP");
  const outcome = /reload: configuration re-read from|reload failed: /g;
  const end = Date.now() + 10000;
  while ((d.log().match(outcome)?.length ?? 0) < n) {
    if (Date.now() > end) throw new Error(`no reload in the log:\n${d.log()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A daemon with the sender access table REJECTing the sender, in a work dir. */
async function start(more = ""): Promise<{ d: Daemon; dir: string; access: string }> {
  const dir = await makeWorkDir("reload");
  const access = join(dir, "sender_access");
  await Deno.writeTextFile(access, table("REJECT Listed before the reload"));
  const d = await startDaemon(extra(access, more), { dir });
  return { d, dir, access };
}

Deno.test({
  name:
    "SIGHUP re-reads a changed access table for new sessions; a session in progress keeps the old answer",
  ...opts,
  fn: async () => {
    const { d, access } = await start("smtpd_listen_threads = 1");
    try {
      const before = await swaks(d.port);
      assert.match(
        before,
        /<\*\* 554 5\.7\.1 <spammer@bad\.example>: Sender address rejected: Listed before the reload/,
      );
      // deno-lint-ignore no-console
      console.log(`before the reload:\n${answer(before)}`);
      // A session opened before the reload, continued after it.
      const old = await RawClient.connect(d.port);
      assert.match(await old.reply(), /^220 /);
      await old.send("EHLO old.example\r\n");
      assert.match(await old.reply(), /^250-/);

      await Deno.writeTextFile(access, table("OK"));
      await hup(d, 1);
      // deno-lint-ignore no-console
      console.log(
        `kill -HUP ${d.pid}:\n${
          d.log().split("\n").filter((l) => /: reload(:| failed)/.test(l)).join("\n")
        }`,
      );
      assert.match(d.log(), /reload: configuration re-read from \S+smtpd\.toml/);

      const after = await swaks(d.port);
      assert.match(after, /250 2\.0\.0 Ok: queued as \w+/);
      // deno-lint-ignore no-console
      console.log(`after the reload:\n${answer(after)}`);

      await old.send("MAIL FROM:<spammer@bad.example>\r\n");
      assert.match(await old.reply(), /^250 /);
      await old.send("RCPT TO:<user@example.com>\r\n");
      const oldAnswer = await old.reply();
      assert.match(oldAnswer, /^554 5\.7\.1 .*Listed before the reload/);
      // deno-lint-ignore no-console
      console.log(`the session opened before the reload: ${oldAnswer.trim()}`);
      await old.send("QUIT\r\n");
      old.close();
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "a bad configuration on reload keeps the running one and logs file and line",
  ...opts,
  fn: async () => {
    const { d, dir, access } = await start("smtpd_listen_threads = 1");
    try {
      const file = join(dir, "smtpd.toml");
      const good = await Deno.readTextFile(file);
      // A good table, but a configuration with an error on its last line.
      await Deno.writeTextFile(access, table("OK"));
      await Deno.writeTextFile(file, `${good}smtpd_helo_required = "sometimes"\n`);
      const line = good.split("\n").length;
      await hup(d, 1);
      const failed = d.log().split("\n").find((l) => /reload failed/.test(l)) ?? "";
      // deno-lint-ignore no-console
      console.log(`bad configuration: ${failed}`);
      assert.match(
        failed,
        new RegExp(
          `warning: reload failed: \\S*smtpd\\.toml:${line}: .*smtpd_helo_required.*; keeping the running configuration`,
        ),
      );
      assert.doesNotMatch(d.log(), /configuration re-read/);
      // The table was re-read only as part of the failed reload: the old answer stays.
      assert.match(await swaks(d.port), /<\*\* 554 5\.7\.1 .*Listed before the reload/);

      // Fixed: the next SIGHUP takes it.
      await Deno.writeTextFile(file, good);
      await hup(d, 2);
      assert.match(await swaks(d.port), /250 2\.0\.0 Ok: queued as/);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "a restart-only parameter that changes is named in a warning and keeps its running value",
  ...opts,
  fn: async () => {
    const { d, dir } = await start("smtpd_listen_threads = 1\ndefault_process_limit = 100");
    try {
      const file = join(dir, "smtpd.toml");
      const text = (await Deno.readTextFile(file))
        .replace(/^smtpd_listen = .*$/m, `smtpd_listen = ["127.0.0.1:1"]`)
        .replace(/^default_process_limit = 100$/m, "default_process_limit = 5")
        .replace(/^myhostname = .*$/m, `myhostname = "reloaded.test.example"`);
      await Deno.writeTextFile(file, text);
      await hup(d, 1);
      const warning = d.log().split("\n").find((l) => /need a restart/.test(l)) ?? "";
      // deno-lint-ignore no-console
      console.log(`restart-only change: ${warning}`);
      assert.match(
        warning,
        /warning: reload: smtpd_listen, default_process_limit changed but need a restart \(the listening sockets, the shared connection limiter\); the running value stays in effect/,
      );
      assert.match(d.log(), /reload: configuration re-read from/);
      // Still on the old port; the other parameters did change (the banner's host name).
      const c = await RawClient.connect(d.port);
      assert.match(await c.reply(), /^220 reloaded\.test\.example ESMTP/);
      c.close();
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "a reload that needs a permission the process lacks fails cleanly and keeps the running configuration",
  ...opts,
  fn: async () => {
    const { d, dir, access } = await start("smtpd_listen_threads = 1");
    try {
      // A table the process was not granted (the flags name each table file).
      const other = join(dir, "other_access");
      await Deno.writeTextFile(other, table("OK"));
      const file = join(dir, "smtpd.toml");
      await Deno.writeTextFile(
        file,
        (await Deno.readTextFile(file)).replace(access, other),
      );
      await hup(d, 1);
      const failed = d.log().split("\n").find((l) => /reload failed/.test(l)) ?? "";
      // deno-lint-ignore no-console
      console.log(`missing permission: ${failed}`);
      assert.match(
        failed,
        /reload failed: the new configuration needs permissions this process was not started with \(a reload cannot add them\): --allow-read=\S*other_access \(table texthash:\)/,
      );
      assert.match(failed, /keeping the running configuration/);
      assert.match(await swaks(d.port), /<\*\* 554 5\.7\.1 .*Listed before the reload/);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "with several listener threads every thread reloads",
  ...opts,
  fn: async () => {
    const { d, access } = await start("smtpd_listen_threads = 3");
    try {
      await d.waitForLog("(3 threads)");
      await Deno.writeTextFile(access, table("OK"));
      await hup(d, 1);
      assert.match(d.log(), /reload: configuration re-read from \S+ \(3 of 3 threads\)/);
      // The kernel spreads connections over the threads (SO_REUSEPORT): with
      // one thread on the old table, some of 15 sessions would be refused
      // (all 15 on the two others: 2 * (2/3)^15, 0.5%).
      const answers: string[] = [];
      for (let i = 0; i < 15; i++) answers.push(await swaks(d.port));
      const refused = answers.filter((a) => !/250 2\.0\.0 Ok: queued as/.test(a));
      assert.equal(refused.length, 0, refused.join("\n---\n"));
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "stand-alone mode: a SIGHUP during the session does not end it",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("reload-stdin");
    const { configFile } = await writeConfig(dir);
    const child = new Deno.Command(Deno.execPath(), {
      args: await smtpdArgs(["stdin", "-c", configFile]),
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const w = child.stdin.getWriter();
    const enc = new TextEncoder();
    const reader = child.stdout.getReader();
    let stdout = "";
    const readUntil = async (want: RegExp) => {
      const end = Date.now() + 15000;
      while (!want.test(stdout) && Date.now() < end) {
        const { value, done } = await reader.read();
        if (done) break;
        stdout += new TextDecoder().decode(value);
      }
    };
    try {
      await w.write(enc.encode("HELO local\r\n"));
      // The session is running: hang up on it.
      await readUntil(/250 mx\.test\.example\r\n/);
      Deno.kill(child.pid, "SIGHUP");
      await new Promise((r) => setTimeout(r, 300));
      await w.write(enc.encode("NOOP\r\nQUIT\r\n"));
      await w.close();
      await readUntil(/221 /);
    } finally {
      reader.releaseLock();
      const status = await child.status;
      assert.equal(status.signal, null, `ended by ${status.signal}; stdout: ${stdout}`);
      assert.equal(status.code, 0);
    }
    assert.match(stdout, /250 2\.0\.0 Ok\r\n221 2\.0\.0 Bye\r\n$/);
  },
});

Deno.test({
  name: "deno task smtpd: kill -HUP of the launcher reloads the daemon it runs",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("reload-launcher");
    const access = join(dir, "sender_access");
    await Deno.writeTextFile(access, table("REJECT Listed before the reload"));
    const { configFile } = await writeConfig(dir, extra(access, "smtpd_listen_threads = 1"));
    // As `deno task smtpd serve -c FILE` runs it.
    const launcher = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "scripts/smtpd.ts", "serve", "-c", configFile],
      cwd: ROOT,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let log = "";
    const pump = (async () => {
      for await (const chunk of launcher.stderr) log += new TextDecoder().decode(chunk);
    })();
    const until = async (want: RegExp) => {
      const end = Date.now() + 15000;
      while (!want.test(log)) {
        if (Date.now() > end) throw new Error(`log never showed ${want}:\n${log}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      await until(/listening on 127\.0\.0\.1:(\d+)/);
      const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(log)?.[1]);
      assert.match(await swaks(port), /<\*\* 554 5\.7\.1 .*Listed before the reload/);
      await Deno.writeTextFile(access, table("OK"));
      Deno.kill(launcher.pid, "SIGHUP");
      await until(/: reload: configuration re-read from/);
      assert.match(await swaks(port), /250 2\.0\.0 Ok: queued as/);
    } finally {
      try {
        launcher.kill("SIGTERM");
      } catch { /* gone */ }
      const status = await launcher.status;
      await pump;
      assert.equal(status.signal, null, "the launcher survived the SIGHUP and ended on its own");
    }
  },
});
