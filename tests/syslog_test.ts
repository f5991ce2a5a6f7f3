/**
 * Syslog: our Postfix-shaped lines reach a real rsyslog daemon on loopback
 * (UDP and TCP), and pflogsumm (Debian's package) summarizes the resulting
 * log file correctly: messages received and rejects by reason.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  freePort,
  makeWorkDir,
  RawClient,
  run,
  smtpdArgs,
  startDaemon,
  swaks,
  waitFor,
  writeConfig,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const have = (cmd: string) => run("sh", ["-c", `command -v ${cmd}`]).then((r) => r.code === 0);
const ready = await have("rsyslogd") && await have("pflogsumm") && await have("ss");

/**
 * Waits until rsyslog has bound its inputs: `ss` lists a socket on each of
 * the ports (a line sent before that is lost, over UDP or TCP).
 * @param inputs "-u" or "-t" and the port of each input
 */
async function inputsUp(...inputs: ["-u" | "-t", number][]): Promise<void> {
  for (const [proto, port] of inputs) {
    await waitFor(`rsyslog's input on ${proto} ${port}`, async () => {
      const r = await run("ss", ["-Hln", proto, `sport = :${port}`]);
      return r.code === 0 && r.stdout.trim() !== "";
    }, 10000);
  }
}

Deno.test({
  name:
    "rsyslog on loopback receives our lines (UDP and TCP); pflogsumm counts received and rejects",
  ignore: !ready,
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("syslog");
    const udp = freePort();
    const tcp = freePort();
    const conf = join(dir, "rsyslog.conf");
    await Deno.writeTextFile(
      conf,
      [
        `global(workDirectory="${dir}")`,
        'module(load="imudp")',
        `input(type="imudp" address="127.0.0.1" port="${udp}")`,
        'module(load="imtcp")',
        `input(type="imtcp" address="127.0.0.1" port="${tcp}")`,
        `mail.* action(type="omfile" file="${dir}/maillog" template="RSYSLOG_TraditionalFileFormat")`,
        "",
      ].join("\n"),
    );
    const rsyslog = new Deno.Command("rsyslogd", {
      args: ["-n", "-f", conf, "-i", join(dir, "rsyslogd.pid")],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const extra =
      'smtpd_peername_lookup = false\nmynetworks = ["127.0.0.2/32"]\nmydestination = ["example.com"]';
    const viaUdp = await startDaemon(`${extra}\nsyslog_server = "udp://127.0.0.1:${udp}"`);
    const viaTcp = await startDaemon(`${extra}\nsyslog_server = "tcp://127.0.0.1:${tcp}"`);
    const maillog = join(dir, "maillog");
    try {
      await inputsUp(["-u", udp], ["-t", tcp]);
      for (const [d, n] of [[viaUdp, 2], [viaTcp, 1]] as const) {
        for (let i = 0; i < n; i++) {
          const r = await swaks(d.port, ["--to", `u${i}@example.com`]);
          assert.match(r.stdout, /250 2\.0\.0 Ok: queued/);
        }
      }
      for (const d of [viaUdp, viaTcp]) {
        const c = await RawClient.connect(d.port);
        await c.reply();
        await c.send(
          "HELO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<x@other.example>\r\nQUIT\r\n",
        );
        for (let i = 0; i < 4; i++) await c.reply();
        c.close();
      }
      const end = Date.now() + 10000;
      let text = "";
      while (Date.now() < end) {
        text = await Deno.readTextFile(maillog).catch(() => "");
        if ((text.match(/disconnect from/g) ?? []).length >= 5) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(
        text,
        /^\w{3} [ \d]\d \d\d:\d\d:\d\d mx\.test\.example postfix\/smtpd\[\d+\]: connect from unknown\[127\.0\.0\.1\]$/m,
      );
      assert.equal((text.match(/: client=unknown\[127\.0\.0\.1\]/g) ?? []).length, 3);
      const summary = await run("pflogsumm", ["--no_no_msg_size", maillog]);
      assert.equal(summary.code, 0, summary.stderr);
      // deno-lint-ignore no-console
      console.log(summary.stdout.split("\n").slice(0, 40).join("\n"));
      assert.match(summary.stdout, /^\s+3\s+received$/m);
      assert.match(summary.stdout, /^\s+2\s+rejected \(\d+%\)$/m);
      assert.match(summary.stdout, /Relay access denied \(total: 2\)/);
    } finally {
      await viaUdp.stop();
      await viaTcp.stop();
      try {
        rsyslog.kill("SIGTERM");
      } catch { /* gone */ }
      await rsyslog.status;
      await rsyslog.stderr.cancel().catch(() => {});
    }
  },
});

Deno.test({
  name:
    "A Message-ID of 8 KB cannot forge a record in rsyslog over TCP (records are cut at 2000 characters)",
  ignore: !ready,
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("syslog");
    const tcp = freePort();
    const conf = join(dir, "rsyslog.conf");
    // Every facility: the rest of a record rsyslog cut would come as user.notice.
    await Deno.writeTextFile(
      conf,
      [
        `global(workDirectory="${dir}")`,
        'module(load="imtcp")',
        `input(type="imtcp" address="127.0.0.1" port="${tcp}")`,
        `*.* action(type="omfile" file="${dir}/all" template="RSYSLOG_TraditionalFileFormat")`,
        "",
      ].join("\n"),
    );
    const rsyslog = new Deno.Command("rsyslogd", {
      args: ["-n", "-f", conf, "-i", join(dir, "rsyslogd.pid")],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const d = await startDaemon(
      `smtpd_peername_lookup = false\nsyslog_server = "tcp://127.0.0.1:${tcp}"`,
    );
    try {
      await inputsUp(["-t", tcp]);
      const c = await RawClient.connect(d.port);
      try {
        await c.reply();
        await c.send("HELO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
        for (let i = 0; i < 4; i++) await c.reply();
        // Past rsyslog's 8 KB, the forged record is repeated so that wherever
        // rsyslog cuts, the rest holds it.
        const forged = "<18>Dec  4 01:00:00 mx.test.example postfix/smtpd[1]: FORGED record ";
        await c.send(
          `Message-ID: <${"a".repeat(8100)}${
            forged.repeat(40)
          }@x>\r\nSubject: x\r\n\r\nbody\r\n.\r\n`,
        );
        assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as/);
        await c.send("QUIT\r\n");
        await c.reply();
      } finally {
        c.close();
      }
      const file = join(dir, "all");
      const end = Date.now() + 10000;
      let text = "";
      while (Date.now() < end) {
        text = await Deno.readTextFile(file).catch(() => "");
        if (text.includes("disconnect from")) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(text, /: message-id=<a{100}/);
      // Ours only (rsyslog may log its own start).
      const records = text.split("\n").filter((l) => l !== "" && !/ rsyslogd(\[\d+\])?: /.test(l));
      assert.ok(
        records.every((l) =>
          /^\w{3} [ \d]\d [\d:]{8} mx\.test\.example postfix\/smtpd\[\d+\]: /.test(l) &&
          !/FORGED/.test(l)
        ),
        records.map((l) => l.slice(0, 200)).join("\n"),
      );
    } finally {
      await d.stop();
      try {
        rsyslog.kill("SIGTERM");
      } catch { /* gone */ }
      await rsyslog.status;
      await rsyslog.stderr.cancel().catch(() => {});
    }
  },
});

Deno.test({
  name: "A syslog_server that cannot be reached is named once on stderr, and again when it answers",
  ...opts,
  fn: async () => {
    const port = freePort();
    const d = await startDaemon(`syslog_server = "tcp://127.0.0.1:${port}"`);
    let server: Deno.TcpListener | undefined;
    try {
      const down =
        `warning: syslog_server tcp://127.0.0.1:${port}: cannot send log lines (Connection refused`;
      await d.waitForLog(down);
      // Every later line is dropped there too, but said once.
      for (let i = 0; i < 3; i++) {
        const c = await RawClient.connect(d.port);
        await c.reply();
        c.close();
      }
      await d.waitForLog(/(disconnect from[^\n]*\n[^]*){3}/);
      assert.equal(d.log().split(down).length - 1, 1, d.log());
      // The server comes up: the next line reaches it, and stderr says so.
      server = Deno.listen({ hostname: "127.0.0.1", port });
      const accepted = server.accept();
      const c = await RawClient.connect(d.port);
      await c.reply();
      c.close();
      const conn = await accepted;
      const buf = new Uint8Array(4096);
      const n = await conn.read(buf);
      assert.match(new TextDecoder().decode(buf.subarray(0, n ?? 0)), /^<\d+>/);
      conn.close();
      await d.waitForLog(`syslog_server tcp://127.0.0.1:${port}: sending log lines again`);
    } finally {
      server?.close();
      await d.stop();
    }
  },
});

// Before, config --check said "configuration OK" for a TCP syslog_server
// that does not answer: under inetd, where it is the only log, every line
// was then dropped without a word.
Deno.test({
  name: "config --check warns, with file and line, about a TCP syslog_server it cannot reach",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("syslog-check");
    const port = freePort();
    const { configFile } = await writeConfig(dir, `syslog_server = "tcp://127.0.0.1:${port}"`);
    const check = async () =>
      await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", configFile]));
    const down = await check();
    assert.equal(down.code, 0, down.stderr);
    assert.match(
      down.stderr,
      new RegExp(
        `warning: ${
          configFile.replaceAll(".", "\\.")
        }:5: syslog_server: tcp://127\\.0\\.0\\.1:${port} ` +
          "cannot be reached \\(Connection refused.*\\); log lines sent there are dropped until it answers",
      ),
    );
    assert.match(down.stdout, /configuration OK \(1 warnings\)/);
    const server = Deno.listen({ hostname: "127.0.0.1", port });
    try {
      const up = await check();
      assert.equal(up.code, 0, up.stderr);
      assert.doesNotMatch(up.stderr, /syslog_server/);
      assert.match(up.stdout, /configuration OK$/m);
    } finally {
      server.close();
    }
  },
});
