/**
 * Clients that do not speak SMTP, end to end: curl posting a web form to
 * the SMTP port (a cross-protocol attack a web page can make a browser
 * do), a header line as a command, smtpd_forbidden_commands in the
 * configuration, and the same bytes sent to a real Postfix's smtpd side by
 * side. The in-process cases (custom and empty lists, the same words in
 * DATA and in AUTH) are the non_smtp_*.dialog files.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  freePort,
  makeWorkDir,
  queueFiles,
  RawClient,
  ROOT,
  run,
  smtpdArgs,
  startDaemon,
  waitFor,
} from "./_harness.ts";
import { havePostfix, startPostfix } from "./_postfix.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const GOODBYE = "221 2.7.0 Error: I can break rules, too. Goodbye.\r\n";

/** A web form whose body is an SMTP session, as a hostile page would post it. */
const BODY = [
  "MAIL FROM:<a@sender.example>",
  "RCPT TO:<victim@mx.test.example>",
  "DATA",
  "Subject: sent from a browser",
  "",
  "hello",
  ".",
  "QUIT",
  "",
].join("\r\n");

/**
 * curl posting BODY to a server's port, as a browser would; HTTP/0.9 is
 * allowed so curl prints the SMTP replies it gets back.
 * @returns what the server sent
 */
async function curlPost(port: number, body = BODY): Promise<string> {
  const r = await run("curl", [
    "-s",
    "--max-time",
    "5",
    "--http0.9",
    "-X",
    "POST",
    "--data-binary",
    body,
    `http://127.0.0.1:${port}/`,
  ]);
  assert.equal(r.code, 0, `curl: ${r.code} ${r.stderr}`);
  return r.stdout;
}

/**
 * One raw session: the client's lines in one write, then everything the
 * server sends until it closes (or 5 s pass).
 */
async function rawSession(port: number, lines: (string | Uint8Array)[]): Promise<string> {
  const c = await RawClient.connect(port);
  try {
    let out = await c.reply();
    const crlf = new Uint8Array([13, 10]);
    const bytes = lines.flatMap((
      l,
    ) => [typeof l === "string" ? new TextEncoder().encode(l) : l, crlf]);
    const all = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0));
    bytes.reduce((at, b) => (all.set(b, at), at + b.length), 0);
    await c.send(all);
    for (let i = 0; i < 20; i++) {
      const r = await c.reply(5000);
      if (r === "") break;
      out += r;
    }
    return out;
  } finally {
    c.close();
  }
}

Deno.test({
  name: "curl POST to the SMTP port: 221 at the request line, the body never runs as commands",
  ...opts,
  fn: async () => {
    const d = await startDaemon();
    try {
      const got = await curlPost(d.port);
      assert.equal(got, `220 mx.test.example ESMTP deno-smtpd\r\n${GOODBYE}`);
      await d.waitForLog("disconnect from unknown[127.0.0.1]");
      assert.match(
        d.log(),
        /warning: non-SMTP command from unknown\[127\.0\.0\.1\]: POST \/ HTTP\/1\.1\n/,
      );
      assert.match(d.log(), /disconnect from unknown\[127\.0\.0\.1\] unknown=0\/1 commands=0\/1\n/);
      // Nothing of the body was read as a command.
      assert.doesNotMatch(d.log(), /RCPT|client=|mail=|rcpt=|data=/);
      assert.deepEqual(await queueFiles(d.queueDir), []);
      // The server goes on serving SMTP clients.
      assert.equal(
        await rawSession(d.port, ["HELO client.example", "QUIT"]),
        "220 mx.test.example ESMTP deno-smtpd\r\n250 mx.test.example\r\n221 2.0.0 Bye\r\n",
      );
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "smtpd_forbidden_commands = []: POST is an unknown command, and the Host: header line ends the session",
  ...opts,
  fn: async () => {
    const d = await startDaemon("smtpd_forbidden_commands = []");
    try {
      const got = await curlPost(d.port);
      assert.equal(
        got,
        "220 mx.test.example ESMTP deno-smtpd\r\n500 5.5.2 Error: command not recognized\r\n" +
          GOODBYE,
      );
      await d.waitForLog("disconnect from");
      assert.match(d.log(), /warning: non-SMTP command from unknown\[127\.0\.0\.1\]: Host: 127/);
      // (The improper pipelining line may quote the RCPT line: it came early.)
      assert.doesNotMatch(d.log(), /RCPT from|client=|rcpt=/);
      assert.deepEqual(await queueFiles(d.queueDir), []);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "a header line as a command, after EHLO: 221, the pipelined MAIL/RCPT/DATA never run",
  ...opts,
  fn: async () => {
    const d = await startDaemon('smtpd_forbidden_commands = ["CONNECT", "GET", "POST", "XYZZY"]');
    try {
      const got = await rawSession(d.port, [
        "EHLO client.example",
        "XYZZY",
      ]);
      assert.match(
        got,
        /250 CHUNKING\r\n221 2\.7\.0 Error: I can break rules, too\. Goodbye\.\r\n$/,
      );
      const header = await rawSession(d.port, [
        "EHLO client.example",
        "From: <a@sender.example>",
        "MAIL FROM:<a@sender.example>",
        "RCPT TO:<u@mx.test.example>",
        "DATA",
        "hello",
        ".",
      ]);
      assert.match(
        header,
        /250 CHUNKING\r\n221 2\.7\.0 Error: I can break rules, too\. Goodbye\.\r\n$/,
      );
      await d.waitForLog(/non-SMTP command from .*: From: <a@sender\.example>\n/);
      // The logged line is made safe (a bidi override's bytes in octal, as
      // Postfix's escape() writes them) and cut at 100 characters.
      await rawSession(d.port, [`GET /\u202egpj.exe?${"a".repeat(200)}`]);
      await d.waitForLog(/non-SMTP command from [^\n]*: GET \/\\342\\200\\256gpj\.exe\?a+\n/);
      const logged = /non-SMTP command from [^\n]*: (GET [^\n]*)\n/.exec(d.log())?.[1];
      assert.equal(logged, `GET /\\342\\200\\256gpj.exe?${"a".repeat(75)}`);
      await d.waitForLog(
        /disconnect from .* ehlo=1 unknown=0\/1 commands=1\/2\n[^]*disconnect from/,
      );
      await d.waitForLog(/disconnect from .* unknown=0\/1 commands=0\/1\n/);
      // (The improper pipelining line may quote the RCPT line: it came early.)
      assert.doesNotMatch(d.log(), /RCPT from|client=|rcpt=/);
      assert.deepEqual(await queueFiles(d.queueDir), []);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "smtpd_forbidden_commands: !negation, /file and an unknown table type stop the start with file:line",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("forbidden-config");
    const rel = dir.slice(ROOT.length);
    const config = join(rel, "smtpd.toml");
    const cases: [string, RegExp][] = [
      ['["CONNECT", "!GET"]', /"!GET": only words and type:table elements are supported/],
      ['["/etc/forbidden_commands"]', /"\/etc\/forbidden_commands": only words and type:table/],
      ['["CONNECT", "nosuch:table"]', /smtpd_forbidden_commands: .*nosuch/],
    ];
    for (const [value, why] of cases) {
      await Deno.writeTextFile(
        join(ROOT, config),
        `queue_directory = "${rel}/spool"\nsmtpd_listen = ["127.0.0.1:0"]\n` +
          `smtpd_forbidden_commands = ${value}\n`,
      );
      const check = await run(
        Deno.execPath(),
        await smtpdArgs(["config", "--check", "-c", config]),
      );
      assert.notEqual(check.code, 0, value);
      assert.match(check.stderr, new RegExp(`${config.replaceAll(".", "\\.")}:3: `), check.stderr);
      assert.match(check.stderr, why);
    }
    // A table form we support: an inline regexp, as in Postfix 3.7 and later.
    await Deno.writeTextFile(
      join(ROOT, config),
      `queue_directory = "${rel}/spool"\nsmtpd_listen = ["127.0.0.1:0"]\n` +
        `smtpd_forbidden_commands = "CONNECT GET POST regexp:{{/^X-/ Bogus}}"\n`,
    );
    const good = await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", config]));
    assert.equal(good.code, 0, good.stderr);
    const printed = await run(Deno.execPath(), await smtpdArgs(["config", "-n", "-c", config]));
    assert.match(printed.stdout, /smtpd_forbidden_commands = .*regexp:\{\{\/\^X-\/ Bogus\}\}/);
  },
});

const isRoot = Deno.uid() === 0;
const hasPostfix = await havePostfix();

Deno.test({
  name: "side by side with Postfix's smtpd: the same bytes get the same replies and log warning",
  ignore: !isRoot || !hasPostfix,
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("forbidden-parity");
    const pfPort = freePort();
    const pf = await startPostfix(dir, {
      name: "parity",
      smtpdPort: pfPort,
      mainCfExtra: "mynetworks = 127.0.0.0/8\n",
    });
    const d = await startDaemon("", { dir: await makeWorkDir("forbidden-ours") });
    try {
      const afterGreeting = (s: string) => s.replace(/^220 [^\n]*\n/, "");
      // curl's web form.
      const pfCurl = await curlPost(pfPort);
      assert.match(pfCurl, /^220 /);
      assert.equal(afterGreeting(await curlPost(d.port)), afterGreeting(pfCurl));
      // Raw sessions, before EHLO (the EHLO replies differ in their keywords).
      const sessions: (string | Uint8Array)[][] = [
        ["Subject: hi", "QUIT"],
        ["Subject : hi", "QUIT"],
        ["To:x", "QUIT"],
        ["MA-IL x", "QUIT"],
        ["XYZZY", "--boundary", "QUIT"],
        ["caf\u00e9", "QUIT"],
        ["CONNECT 192.0.2.1:25 HTTP/1.1", "QUIT"],
        ["get /", "QUIT"],
        // Odd first words: non-ASCII letters whose upper case is ASCII,
        // quoting, escapes, tabs, 8-bit (each session ends with QUIT).
        ["QU\u0131T", "NOOP", "QUIT"],
        ["\u017fTARTTLS", "QUIT"],
        ["PO\u017fT /", "QUIT"],
        ["stra\u00dfe", "QUIT"],
        ["\u00fcber", "QUIT"],
        ["GET\t/", "QUIT"],
        ["Subject\\ x: y", "QUIT"],
        ["<a b>: c", "QUIT"],
        ["X-Foo:bar", "QUIT"],
        ["from: x", "QUIT"],
        ["MAIL\u00a0FROM:<a@b.example>", "QUIT"],
        // Lines answered before any command is looked up (500 5.5.2: no
        // word, or not UTF-8): counted nowhere in the disconnect line.
        ["", " \t", "NOOP", "QUIT"],
        [new Uint8Array([0xff]), new Uint8Array([0x4e, 0x4f, 0x4f, 0x50, 0x20, 0xc3]), "QUIT"],
      ];
      for (const lines of sessions) {
        const theirs = afterGreeting(await rawSession(pfPort, lines));
        const ours = afterGreeting(await rawSession(d.port, lines));
        assert.equal(ours, theirs, JSON.stringify(lines));
      }
      // The warning's text after the client: 8-bit bytes and the tab escaped
      // as Postfix's escape() writes them ("PO\\305\\277T /", "GET\\t/").
      const warnings = (log: string) =>
        [...log.matchAll(/warning: non-SMTP command from [^:]*: (.*)/g)].map((m) => m[1]);
      await pf.waitForLog("Postfix's last warning", /non-SMTP command from [^\n]*: from: x/);
      await d.waitForLog(/non-SMTP command from [^\n]*: from: x/);
      assert.equal(warnings(d.log()).length, 12, d.log());
      assert.deepEqual(warnings(d.log()), warnings(await pf.logText()));
      // The disconnect lines' statistics: an unknown command never succeeds
      // ("unknown=0/1"), in Postfix's command table order.
      const stats = (log: string) =>
        [...log.matchAll(/disconnect from [^\]]*\]( .*)/g)].map((m) => m[1]);
      // Counted, not matched as (disconnect from[^]*){22}: that pattern
      // backtracks exponentially in the count (6 s for one test of our log
      // on a busy host, past waitForLog's 5 s; see groupVerdicts in _parity.ts).
      const disconnects = (log: string) => (log.match(/disconnect from [^\n]*\n/g) ?? []).length;
      await waitFor(
        "Postfix's disconnect lines",
        async () => disconnects(await pf.logText()) >= sessions.length + 1,
      );
      await waitFor(
        "our disconnect lines",
        () => Promise.resolve(disconnects(d.log()) >= sessions.length + 1),
      );
      assert.equal(stats(d.log()).length, sessions.length + 1);
      assert.deepEqual(stats(d.log()), stats(await pf.logText()));
    } finally {
      await d.stop();
      await pf.stop();
    }
  },
});
