/**
 * regexp:, pcre: and socketmap: tables end to end: the real server with
 * access tables of each type, a raw SMTP client, a refused PCRE feature
 * stopping `smtpd config --check` and `smtpd serve` with file and line, a
 * catastrophic pattern that must not hang the server (ReDoS), and a
 * socketmap server speaking netstrings.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort, makeWorkDir, RawClient, ROOT, run, smtpdArgs, startDaemon } from "./_harness.ts";
import { socketmapServer } from "./_socketmap_server.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Runs one session: HELO, MAIL, then each RCPT; returns the replies after the greeting. */
async function session(
  port: number,
  helo: string,
  from: string,
  rcpts: string[],
): Promise<string[]> {
  const c = await RawClient.connect(port);
  try {
    await c.reply();
    const out: string[] = [];
    for (
      const cmd of [
        `HELO ${helo}`,
        `MAIL FROM:<${from}>`,
        ...rcpts.map((r) => `RCPT TO:<${r}>`),
      ]
    ) {
      await c.send(`${cmd}\r\n`);
      out.push((await c.reply(15000)).trim());
    }
    await c.send("QUIT\r\n");
    return out;
  } finally {
    c.close();
  }
}

const BASE = `mynetworks = []\nmydestination = ["example.com"]\nsmtpd_peername_lookup = false\n` +
  `smtpd_soft_error_limit = 100\nsmtpd_hard_error_limit = 100\n`;

const PCRE_TABLE = [
  "# pcre: access table, one rule per syntax feature",
  "/^spammer@/                          REJECT go away",
  "/^(?!owner-)(.*)-outgoing@(.*)$/     550 5.7.1 Use ${1}@${2} instead",
  "if /@partner\\.example$/",
  "/^sales@/                            OK",
  "/^(.+)@/                             450 4.7.1 $1 is not accepted from partners",
  "endif",
  "!/\\.(com|example|test)$/            554 unknown top-level domain",
  "/^CaSe@/i                            REJECT exact case",
  "/^\\Qa.b\\E@/                          REJECT quoted dot",
  "/^x   y @/x                          REJECT extended",
  "",
].join("\n");

const PCRE_CASES: [from: string, reply: RegExp][] = [
  ["spammer@bad.example", /^554 5\.7\.1 <spammer@bad\.example>: Sender address rejected: go away$/],
  [
    "list-outgoing@example.com",
    /^550 5\.7\.1 <list-outgoing@example\.com>: Sender address rejected: Use list@example\.com instead$/,
  ],
  ["owner-list-outgoing@example.com", /^250 2\.1\.5 Ok$/],
  ["sales@partner.example", /^250 2\.1\.5 Ok$/],
  [
    "joe@partner.example",
    /^450 4\.7\.1 <joe@partner\.example>: Sender address rejected: joe is not accepted from partners$/,
  ],
  [
    "joe@elsewhere.org",
    /^554 5\.7\.1 <joe@elsewhere\.org>: Sender address rejected: unknown top-level domain$/,
  ],
  ["CaSe@x.example", /^554 .*exact case$/],
  ["case@x.example", /^250 2\.1\.5 Ok$/],
  ["a.b@x.example", /^554 .*quoted dot$/],
  ["axb@x.example", /^250 2\.1\.5 Ok$/],
  ["xy@x.example", /^554 .*extended$/],
];

Deno.test({
  name: "pcre: access table: each syntax feature decides a sender as written",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("pcre");
    await Deno.writeTextFile(join(dir, "sender.pcre"), PCRE_TABLE);
    const rel = dir.slice(ROOT.length);
    const d = await startDaemon(
      BASE +
        `smtpd_recipient_restrictions = ["reject_unauth_destination", "check_sender_access", "pcre:${rel}/sender.pcre"]`,
      { dir },
    );
    try {
      for (const [from, want] of PCRE_CASES) {
        const replies = await session(d.port, "client.example", from, ["b@example.com"]);
        assert.match(replies[2] ?? "", want, `${from}: ${replies.join(" | ")}`);
      }
    } finally {
      await d.stop();
    }
  },
});

const REGEXP_TABLE = [
  "# regexp: access table (POSIX extended), one rule per syntax feature",
  "/^postmaster@/                    OK",
  "/[%!@].*[%!@]/                    550 Sender-specified routing rejected",
  "if !/^owner-/",
  "/^(.*)-outgoing@(.*)$/            550 Use ${1}@${2} instead",
  "endif",
  "/^[[:digit:]]+@/                  REJECT numeric local part",
  "/^[\\.]x@/                         REJECT backslash or dot, then x",
  "/\\<spam\\>/                        REJECT word spam",
  "/^BIG@/i                          REJECT case-sensitive BIG",
  "",
].join("\n");

const REGEXP_CASES: [rcpt: string, reply: RegExp][] = [
  ["postmaster@example.com", /^250 2\.1\.5 Ok$/],
  [
    "list-outgoing@example.com",
    /^550 5\.7\.1 <list-outgoing@example\.com>: Recipient address rejected: Use list@example\.com instead$/,
  ],
  ["owner-list-outgoing@example.com", /^250 2\.1\.5 Ok$/],
  ["12345@example.com", /^554 .*numeric local part$/],
  [".x@example.com", /^554 .*backslash or dot, then x$/],
  ["zx@example.com", /^250 2\.1\.5 Ok$/],
  ["no.spam.here@example.com", /^554 .*word spam$/],
  ["nospam@example.com", /^250 2\.1\.5 Ok$/],
  ["BIG@example.com", /^554 .*case-sensitive BIG$/],
  ["big@example.com", /^250 2\.1\.5 Ok$/],
];

Deno.test({
  name: "regexp: access table: each syntax feature decides a recipient as written",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("regexp");
    await Deno.writeTextFile(join(dir, "rcpt.regexp"), REGEXP_TABLE);
    const rel = dir.slice(ROOT.length);
    const d = await startDaemon(
      BASE +
        `smtpd_recipient_restrictions = ["reject_unauth_destination", "check_recipient_access", "regexp:${rel}/rcpt.regexp"]`,
      { dir },
    );
    try {
      const replies = await session(
        d.port,
        "client.example",
        "a@sender.example",
        REGEXP_CASES.map((c) => c[0]),
      );
      for (const [i, [rcpt, want]] of REGEXP_CASES.entries()) {
        assert.match(replies[i + 2] ?? "", want, `${rcpt}: ${replies[i + 2]}`);
      }
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "pcre: a refused feature stops config --check and serve with file:line",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("pcre-refused");
    const rel = dir.slice(ROOT.length);
    await Deno.writeTextFile(
      join(dir, "bad.pcre"),
      "# line 1\n/^ok@/ OK\n/^(?>a+)b@/ REJECT atomic\n",
    );
    const config = join(rel, "smtpd.toml");
    await Deno.writeTextFile(
      join(ROOT, config),
      `queue_directory = "${rel}/spool"\n${BASE}` +
        `smtpd_sender_restrictions = ["check_sender_access", "pcre:${rel}/bad.pcre"]\n`,
    );
    const check = await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", config]));
    // deno-lint-ignore no-console
    console.log(check.stderr.trim());
    assert.notEqual(check.code, 0);
    assert.match(
      check.stderr,
      new RegExp(
        `${rel}/bad\\.pcre:3: pattern /\\^\\(\\?>a\\+\\)b@/: not supported: atomic groups`,
      ),
    );
    const serve = await run(Deno.execPath(), await smtpdArgs(["serve", "-c", config]), {
      timeoutMs: 20000,
    });
    assert.notEqual(serve.code, 0);
    assert.match(serve.stderr, /bad\.pcre:3: .*atomic groups/);
  },
});

Deno.test({
  name: "pcre: a catastrophic pattern against a long HELO name does not hang the server (ReDoS)",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("redos");
    await Deno.writeTextFile(
      join(dir, "helo.pcre"),
      "/^(a+)+$/ REJECT never\n/^(A|AA)+b$/ REJECT never\n",
    );
    const rel = dir.slice(ROOT.length);
    const d = await startDaemon(
      BASE +
        `smtpd_recipient_restrictions = ["reject_unauth_destination", "check_helo_access", "pcre:${rel}/helo.pcre"]`,
      { dir },
    );
    try {
      const t0 = Date.now();
      const replies = await session(d.port, `${"a".repeat(1900)}!`, "a@sender.example", [
        "b@example.com",
      ]);
      assert.equal(replies[2], "250 2.1.5 Ok");
      assert.ok(Date.now() - t0 < 10000, `took ${Date.now() - t0} ms`);
    } finally {
      // A thread stuck in a regular expression does not see SIGTERM.
      await d.stop("SIGKILL");
    }
  },
});

Deno.test({
  name: "socketmap: access table over inet: OK, REJECT, NOTFOUND, TEMP, one connection",
  ...opts,
  fn: async () => {
    const srv = socketmapServer({
      "ok@example.com": "OK",
      "bad@example.com": "REJECT no such user",
      "later@example.com": "TEMP database down",
      "coded@example.com": "550 5.1.1 gone",
    });
    const d = await startDaemon(
      BASE +
        `smtpd_recipient_restrictions = ["reject_unauth_destination", "check_recipient_access", "socketmap:inet:127.0.0.1:${srv.port}:access"]`,
    );
    try {
      const replies = await session(d.port, "client.example", "a@sender.example", [
        "OK@example.com",
        "bad@example.com",
        "later@example.com",
        "coded@example.com",
        "other@example.com",
      ]);
      assert.deepEqual(replies.slice(2), [
        "250 2.1.5 Ok",
        "554 5.7.1 <bad@example.com>: Recipient address rejected: no such user",
        "451 4.3.0 Temporary lookup failure",
        "550 5.1.1 <coded@example.com>: Recipient address rejected: gone",
        "250 2.1.5 Ok",
      ]);
      assert.ok(srv.queries.includes("access ok@example.com"), srv.queries.join(", "));
      assert.equal(srv.connections(), 1);
      await d.waitForLog(/socketmap server temporary error: database down/);
    } finally {
      await d.stop();
      srv.stop();
    }
  },
});

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`still not so after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test({
  name:
    "socketmap: a reload closes the old tables' idle connections at once (2 threads), and a session from before it still gets its lookup",
  ...opts,
  fn: async () => {
    const srv = socketmapServer({
      "ok@example.com": "OK",
      "bad@example.com": "REJECT no such user",
    });
    const d = await startDaemon(
      BASE + `smtpd_listen_threads = 2\n` +
        `smtpd_recipient_restrictions = ["reject_unauth_destination", "check_recipient_access", "socketmap:inet:127.0.0.1:${srv.port}:access"]`,
    );
    let early: RawClient | undefined;
    try {
      await d.waitForLog(/listening on .*\(2 threads\)/);
      // Concurrent sessions, so that both threads are likely to hold a connection.
      const all = await Promise.all(
        Array.from(
          { length: 8 },
          (_, i) => session(d.port, `c${i}.example`, "a@sender.example", ["ok@example.com"]),
        ),
      );
      for (const replies of all) assert.equal(replies[2], "250 2.1.5 Ok");
      assert.ok(srv.open() >= 1, `${srv.open()} connections held`);
      // A session that began before the reload, its lookup still to come.
      early = await RawClient.connect(d.port);
      await early.reply();
      for (const cmd of ["HELO early.example", "MAIL FROM:<a@sender.example>"]) {
        await early.send(`${cmd}\r\n`);
        assert.match(await early.reply(), /^250 /);
      }
      Deno.kill(d.pid, "SIGHUP");
      await d.waitForLog("reload: configuration and tables re-read from", 10_000);
      // Without retiring, each stays until its 10 s max_idle.
      await until("no connection to the socketmap server", () => srv.open() === 0, 3000);
      await early.send("RCPT TO:<bad@example.com>\r\n");
      assert.equal(
        (await early.reply(15000)).trim(),
        "554 5.7.1 <bad@example.com>: Recipient address rejected: no such user",
      );
      // The old table's connection is closed once its answer is in.
      await until("the early session's connection closed", () => srv.open() === 0, 3000);
      // The new configuration's table keeps its connection.
      const after = await session(d.port, "late.example", "a@sender.example", ["ok@example.com"]);
      assert.equal(after[2], "250 2.1.5 Ok");
      assert.equal(srv.open(), 1);
    } finally {
      early?.close();
      await d.stop();
      srv.stop();
    }
  },
});

// Before, config --check said "configuration OK" for a socketmap: table
// whose server is not there: every lookup was then 451 4.3.0.
Deno.test({
  name:
    "config --check warns, with file and line, about a socketmap server it cannot reach; not about one that answers",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("socketmap-check");
    const srv = socketmapServer({});
    // A port nothing listens on: not one of the kernel's port 0 (the range
    // every listen on port 0 of the parallel run draws from, where another
    // test's server may take it before the check connects).
    const port = freePort();
    try {
      const file = join(dir, "smtpd.toml");
      await Deno.writeTextFile(
        file,
        `queue_directory = "${join(dir, "spool")}"\n` +
          "smtpd_recipient_restrictions = [\n" +
          '  "reject_unauth_destination",\n' +
          `  "check_client_access socketmap:inet:127.0.0.1:${srv.port}:up",\n` +
          `  "check_sender_access socketmap:unix:${join(dir, "nosuch")}:m",\n` +
          `  "check_helo_access socketmap:inet:127.0.0.1:${port}:down",\n` +
          "]\n",
      );
      const rel = file.slice(ROOT.length);
      const r = await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", rel]));
      assert.equal(r.code, 0, r.stderr);
      const at = `warning: ${rel.replaceAll(".", "\\.")}`;
      assert.match(
        r.stderr,
        new RegExp(
          `${at}:5: socketmap: table server unix:${join(dir, "nosuch")} cannot be reached ` +
            "\\(No such file or directory.*\\); until it can, its lookups are temporary failures",
        ),
      );
      assert.match(
        r.stderr,
        new RegExp(`${at}:6: socketmap: table server 127\\.0\\.0\\.1:${port} cannot be reached`),
      );
      assert.doesNotMatch(r.stderr, new RegExp(`:${srv.port} cannot`));
      assert.match(r.stdout, /configuration OK \(2 warnings\)/);
      assert.equal(srv.queries.length, 0, "a connection, no query");
    } finally {
      srv.stop();
    }
  },
});
