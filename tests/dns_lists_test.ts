/**
 * The restrictions of issue 17 item 4 end to end, against the real daemon
 * with dnsmasq on loopback serving the lists: an RHSBL zone refusing a
 * listed sender domain (swaks) with Postfix's reply and accepting a clean
 * one, permit_dnswl_client, reject_multi_recipient_bounce,
 * defer_unauth_destination, sleep without holding up other clients, and
 * smtpd explain showing each step.
 */

import assert from "node:assert/strict";
import { startDns } from "./_dns.ts";
import { join } from "node:path";
import {
  makeWorkDir,
  RawClient,
  run,
  smtpdArgs,
  startDaemon,
  swaks,
  writeConfig,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const LISTS = {
  a: [
    ["bad.example.rhsbl.example", "127.0.0.2"],
    ["20.0.0.127.dnswl.example", "127.0.10.2"],
  ] as [string, string][],
  txt: [["bad.example.rhsbl.example", "Listed by the test list"]] as [string, string][],
};

const BASE = [
  "smtpd_peername_lookup = false",
  'mynetworks = ["127.0.0.2/32"]',
  'mydestination = ["example.com"]',
];

/**
 * Sends one envelope with Python's smtplib from a source address; prints
 * each reply (or the refusal sent instead of the greeting).
 */
const ENVELOPE = `
import smtplib, sys
port, src, sender = int(sys.argv[1]), sys.argv[2], sys.argv[3]
try:
    s = smtplib.SMTP("127.0.0.1", port, source_address=(src, 0))
except smtplib.SMTPConnectError as e:
    print(e.smtp_code, e.smtp_error.decode())
    sys.exit(0)
s.ehlo("client.test.example")
code, msg = s.mail(sender)
print(code, msg.decode())
for rcpt in sys.argv[4:]:
    code, msg = s.rcpt(rcpt)
    print(code, msg.decode())
s.quit()
`;

async function envelope(port: number, src: string, from: string, ...to: string[]) {
  const r = await run("python3", ["-c", ENVELOPE, String(port), src, from, ...to]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split("\n");
}

Deno.test({
  name:
    "reject_rhsbl_sender against dnsmasq: swaks from a listed domain is refused, a clean one queued",
  ...opts,
  fn: async () => {
    const dns = await startDns(LISTS);
    const d = await startDaemon([
      ...BASE,
      `dns_server = "127.0.0.1:${dns.port}"`,
      'smtpd_recipient_restrictions = ["reject_rhsbl_sender rhsbl.example", "permit_auth_destination", "reject"]',
    ].join("\n"));
    try {
      const sendFrom = (from: string) => swaks(d.port, ["--from", from, "--to", "u@example.com"]);
      const bad = await sendFrom("joe@bad.example");
      const refused =
        "554 5.7.1 Service unavailable; Sender address [joe@bad.example] blocked using rhsbl.example; Listed by the test list";
      assert.ok(bad.stdout.includes(`<** ${refused}`), bad.stdout);
      assert.notEqual(bad.code, 0);
      await d.waitForLog(`NOQUEUE: reject: RCPT from unknown[127.0.0.1]: ${refused}`);
      const good = await sendFrom("joe@good.example");
      assert.equal(good.code, 0, good.stdout);
      assert.match(good.stdout, /<- {2}250 2\.0\.0 Ok: queued as \w+/);
    } finally {
      await d.stop();
      await dns.stop();
    }
  },
});

Deno.test({
  name:
    "reject_rhsbl_sender looks a UTF-8 sender domain up by its A-labels: bad<U+200B>.example and fullwidth ｂａｄ.example are bad.example",
  ...opts,
  fn: async () => {
    const dns = await startDns(LISTS);
    const d = await startDaemon([
      ...BASE,
      `dns_server = "127.0.0.1:${dns.port}"`,
      'smtpd_recipient_restrictions = ["reject_rhsbl_sender rhsbl.example", "permit_auth_destination", "reject"]',
    ].join("\n"));
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("EHLO client.test.example\r\n");
      await c.reply();
      // IDNA maps the zero-width space to nothing and fullwidth letters to
      // ASCII, so the address syntax takes both as bad.example (as Postfix
      // does); skipping the lookup let them past the list.
      // The reply shows [user@domain] in printable ASCII, as rbl_reply_maps' values.
      for (
        const [domain, shown] of [
          ["bad\u200b.example", "bad_.example"],
          ["\uff42\uff41\uff44.example", "___.example"],
        ]
      ) {
        await c.send(`MAIL FROM:<joe@${domain}> SMTPUTF8\r\n`);
        assert.equal(await c.reply(), "250 2.1.0 Ok\r\n");
        await c.send("RCPT TO:<u@example.com>\r\n");
        assert.equal(
          await c.reply(),
          `554 5.7.1 Service unavailable; Sender address [joe@${shown}] blocked using rhsbl.example; Listed by the test list\r\n`,
        );
        await c.send("RSET\r\n");
        await c.reply();
      }
      await c.send("MAIL FROM:<joe@g\u00f6od.example> SMTPUTF8\r\nRCPT TO:<u@example.com>\r\n");
      assert.equal(await c.reply(), "250 2.1.0 Ok\r\n");
      assert.equal(await c.reply(), "250 2.1.5 Ok\r\n");
      await c.send("QUIT\r\n");
      await c.reply();
    } finally {
      c.close();
      await d.stop();
      await dns.stop();
    }
  },
});

Deno.test({
  name:
    "permit_dnswl_client, reject_multi_recipient_bounce and defer_unauth_destination in the daemon",
  ...opts,
  fn: async () => {
    const dns = await startDns(LISTS);
    const d = await startDaemon([
      ...BASE,
      `dns_server = "127.0.0.1:${dns.port}"`,
      "smtpd_delay_reject = false",
      'smtpd_client_restrictions = ["permit_dnswl_client dnswl.example", "reject"]',
      'smtpd_recipient_restrictions = ["reject_multi_recipient_bounce", "permit_auth_destination", "defer_unauth_destination"]',
    ].join("\n"));
    try {
      // 127.0.0.20 is on the allow list: its bounce gets one recipient, not two.
      assert.deepEqual(
        await envelope(d.port, "127.0.0.20", "", "a@example.com", "b@example.com"),
        [
          "250 2.1.0 Ok",
          "250 2.1.5 Ok",
          "550 5.5.3 <b@example.com>: Recipient address rejected: Multi-recipient bounce",
        ],
      );
      assert.deepEqual(
        await envelope(
          d.port,
          "127.0.0.20",
          "joe@good.example",
          "a@example.com",
          "c@other.example",
        ),
        ["250 2.1.0 Ok", "250 2.1.5 Ok", "454 4.7.1 <c@other.example>: Relay access denied"],
      );
      // 127.0.0.21 is not: the reject after the allow list refuses it at connect,
      // instead of the greeting.
      assert.deepEqual(await envelope(d.port, "127.0.0.21", "joe@good.example"), [
        "554 5.7.1 <unknown[127.0.0.21]>: Client host rejected: Access denied",
      ]);
    } finally {
      await d.stop();
      await dns.stop();
    }
  },
});

/**
 * Connects from a source address and prints the seconds until the greeting,
 * the time it came (seconds since the epoch), and the greeting. With a third
 * argument it first waits for a line on its stdin (started ahead, it
 * connects when told, without the interpreter's start-up in between).
 */
const GREETING = `
import socket, sys, time
if len(sys.argv) > 3:
    sys.stdin.readline()
t = time.time()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), source_address=(sys.argv[2], 0))
line = s.makefile("rb").readline().decode().strip()
now = time.time()
print("%.2f %.3f %s" % (now - t, now, line))
s.close()
`;

/** GREETING as a process; with `waits`, it connects on go(). */
function greeter(port: number, src: string, waits = false) {
  const child = new Deno.Command("python3", {
    args: ["-c", GREETING, String(port), src, ...(waits ? ["waits"] : [])],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdin = child.stdin.getWriter();
  const done = Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.status,
  ]);
  return {
    go: () => stdin.write(new TextEncoder().encode("go\n")).catch(() => {}),
    async greeting() {
      await stdin.close().catch(() => {});
      const [out, err, status] = await done;
      assert.equal(status.code, 0, err);
      const [secs, at, ...line] = out.trim().split(" ");
      return { secs: Number(secs), at: Number(at), line: line.join(" ") };
    },
    async stop() {
      await stdin.close().catch(() => {});
      try {
        child.kill("SIGKILL");
      } catch { /* ended */ }
      await done.catch(() => {});
    },
  };
}

Deno.test({
  name: "sleep 2 delays one client's greeting while another client is answered at once",
  ...opts,
  fn: async () => {
    const d = await startDaemon([
      ...BASE,
      "smtpd_delay_reject = false",
      'smtpd_client_restrictions = ["check_client_access inline:{ 127.0.0.30=OK }", "sleep 2"]',
    ].join("\n"));
    const slowClient = greeter(d.port, "127.0.0.31");
    const fastClient = greeter(d.port, "127.0.0.30", true);
    try {
      // The slow one is asleep first: its session has begun (its connect is
      // logged before the client restrictions run). Then the other connects.
      await d.waitForLog("connect from unknown[127.0.0.31]", 20000);
      await fastClient.go();
      const fast = await fastClient.greeting();
      const s = await slowClient.greeting();
      assert.match(fast.line, /^220 mx\.test\.example ESMTP/);
      assert.match(s.line, /^220 mx\.test\.example ESMTP/);
      assert.ok(s.secs >= 1.9, `the sleeping client got its greeting after ${s.secs}s`);
      // Answered while the other sleeps: its greeting came first (a daemon
      // held up by the sleep would greet it only once the sleep is over).
      assert.ok(
        fast.at < s.at,
        `the other client was greeted ${(fast.at - s.at).toFixed(2)} s after the sleeping one ` +
          `(it waited ${fast.secs} s)`,
      );
    } finally {
      await slowClient.stop();
      await fastClient.stop();
      await d.stop();
    }
  },
});

Deno.test({
  name: "smtpd explain shows the steps of reject_rhsbl_sender, permit_dnswl_client and sleep",
  ...opts,
  fn: async () => {
    const dns = await startDns(LISTS);
    try {
      const work = await makeWorkDir("explain-dnsxl");
      const { configFile } = await writeConfig(
        work,
        [
          ...BASE,
          `dns_server = "127.0.0.1:${dns.port}"`,
          'smtpd_client_restrictions = ["permit_dnswl_client dnswl.example", "sleep 5"]',
          'smtpd_recipient_restrictions = ["reject_rhsbl_sender rhsbl.example", "reject_multi_recipient_bounce", "permit_auth_destination", "defer_unauth_destination"]',
        ].join("\n"),
      );
      const args = ["explain", "-c", configFile, "--client", "127.0.0.20"];
      const r = await run(
        Deno.execPath(),
        await smtpdArgs([
          ...args,
          "--from",
          "joe@bad.example",
          "--to",
          "u@example.com",
        ]),
      );
      assert.equal(r.code, 0, r.stderr);
      const out = r.stdout;
      assert.match(out, /try permit_dnswl_client dnswl\.example/);
      assert.match(out, /dns A 20\.0\.0\.127\.dnswl\.example: 127\.0\.10\.2/);
      assert.match(out, /try reject_rhsbl_sender rhsbl\.example/);
      assert.match(out, /dns A bad\.example\.rhsbl\.example: 127\.0\.0\.2/);
      assert.match(out, /dns TXT bad\.example\.rhsbl\.example: Listed by the test list/);
      assert.match(
        out,
        /reply: 554 5\.7\.1 Service unavailable; Sender address \[joe@bad\.example\] blocked using rhsbl\.example; Listed by the test list/,
      );
      // 127.0.0.21 is not allow-listed: the client list goes on to sleep, which explain shows but does not wait.
      const other = await run(
        Deno.execPath(),
        await smtpdArgs([
          "explain",
          "-c",
          configFile,
          "--client",
          "127.0.0.21",
          "--from",
          "joe@good.example",
          "--to",
          "u@other.example",
        ]),
      );
      assert.match(other.stdout, /try sleep 5\n\s+note: pause 5 seconds, then go on/);
      assert.match(other.stdout, /try defer_unauth_destination/);
      assert.match(other.stdout, /reply: 454 4\.7\.1 <u@other\.example>: Relay access denied/);
    } finally {
      await dns.stop();
    }
  },
});

Deno.test({
  name: "rbl_reply_maps from a texthash file gives a listed HELO name the list's own reply",
  ...opts,
  fn: async () => {
    const dns = await startDns(LISTS);
    const dir = await makeWorkDir("rbl-reply");
    const table = join(dir, "rbl_replies");
    await Deno.writeTextFile(
      table,
      "rhsbl.example $rbl_code 5.7.1 HELO $helo_name is listed at $rbl_domain; see https://rhsbl.example/\n",
    );
    const d = await startDaemon(
      [
        ...BASE,
        `dns_server = "127.0.0.1:${dns.port}"`,
        `rbl_reply_maps = ["texthash:${table}"]`,
        'smtpd_recipient_restrictions = ["reject_rhsbl_helo rhsbl.example", "permit_auth_destination", "reject"]',
      ].join("\n"),
      { dir },
    );
    try {
      const r = await swaks(d.port, [
        "--helo",
        "bad.example",
        "--from",
        "joe@good.example",
        "--to",
        "u@example.com",
      ]);
      assert.ok(
        r.stdout.includes(
          "<** 554 5.7.1 HELO bad.example is listed at rhsbl.example; see https://rhsbl.example/",
        ),
        `${r.stdout}\n--- server log ---\n${d.log()}`,
      );
    } finally {
      await d.stop();
      await dns.stop();
    }
  },
});
