/**
 * check_policy_service end to end: the real server asks real policy
 * servers from Debian (postgrey for greylisting, postfix-policyd-spf-python
 * for SPF with dnsmasq serving the SPF records), and a policy server of our
 * own that misbehaves (down, silent, endless reply, garbage) or records
 * what it was sent. The client is swaks or a raw socket.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  makeWorkDir,
  postcat,
  queueFiles,
  RawClient,
  run,
  runStdin,
  smtpdArgs,
  startDaemon,
  swaks,
  swaksRcptReply,
  waitFor,
  writeConfig,
} from "./_harness.ts";
import { fakePolicyServer, startPostgrey, startSpfPolicy } from "./_policy_servers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const isRoot = Deno.uid() === 0;
const has = (cmd: string) =>
  new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" }).outputSync()
    .success;

const BASE = [
  `mynetworks = []`,
  `mydestination = ["example.com"]`,
  `smtpd_peername_lookup = false`,
].join("\n");

function restrictions(service: string, more = ""): string {
  return `${BASE}\nsmtpd_recipient_restrictions = ["reject_unauth_destination", "check_policy_service", "${service}"]\n${more}`;
}

/** One swaks session; returns its transcript and the RCPT reply line. */
async function session(port: number, from: string, to = "b@example.com") {
  const r = await swaks(port, [
    "--helo",
    "client.example.org",
    "--from",
    from,
    "--to",
    to,
    "--body",
    "policy test",
  ], { timeoutMs: 30000 });
  return { out: r.stdout, rcpt: swaksRcptReply(r.stdout) };
}

Deno.test({
  name:
    "check_policy_service: postgrey over inet: greylisted first (450), accepted after the delay, one connection",
  ignore: !has("postgrey") || !has("swaks") || !isRoot,
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("postgrey");
    const pg = await startPostgrey(dir, { delay: 2 });
    const d = await startDaemon(restrictions(`inet:127.0.0.1:${pg.port}`), { dir });
    try {
      const first = await session(d.port, "a@sender.example");
      // deno-lint-ignore no-console
      console.log(`first attempt:  ${first.rcpt}`);
      assert.match(
        first.rcpt,
        /450 4\.2\.0 <b@example\.com>: Recipient address rejected: Greylisted/,
      );
      assert.equal((await queueFiles(d.queueDir)).length, 0);
      await new Promise((r) => setTimeout(r, 3000));
      const second = await session(d.port, "a@sender.example");
      // deno-lint-ignore no-console
      console.log(`after ${2}s delay: ${second.rcpt}`);
      assert.match(second.out, /<[~-] +250 2\.1\.5 Ok/);
      assert.match(second.out, /<[~-] +250 2\.0\.0 Ok: queued as /);
      assert.equal((await queueFiles(d.queueDir)).length, 1);
      // Both sessions used the same connection to postgrey.
      assert.equal(pg.connections(), 1, pg.log());
    } finally {
      await d.stop();
      await pg.stop();
    }
  },
});

/** Established TCP connections to a local port, as `ss` (iproute2) sees them. */
async function connectionsTo(port: number): Promise<number> {
  const r = await run("ss", ["-Htn", "state", "established", `( dport = :${port} )`]);
  return r.stdout.split("\n").filter((l) => l.trim() !== "").length;
}

async function until(what: string, ok: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`still not so after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test({
  name:
    "check_policy_service: after a reload the old connection to postgrey is closed at once, not after max_idle",
  ignore: !has("postgrey") || !has("swaks") || !has("ss") || !isRoot,
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("postgrey-reload");
    const pg = await startPostgrey(dir, { delay: 60 });
    // One listener thread, so that one connection is all there is; max_idle
    // is Postfix's default (300 s) written out.
    const d = await startDaemon(
      restrictions(
        `inet:127.0.0.1:${pg.port}`,
        "smtpd_listen_threads = 1\nsmtpd_policy_service_max_idle = 300",
      ),
      { dir },
    );
    try {
      const first = await session(d.port, "a@sender.example");
      assert.match(
        first.rcpt,
        /450 4\.2\.0 <b@example\.com>: Recipient address rejected: Greylisted/,
      );
      await until(
        "one connection to postgrey",
        async () => await connectionsTo(pg.port) === 1,
        5000,
      );
      Deno.kill(d.pid, "SIGHUP");
      await until(
        "the reload logged",
        () => Promise.resolve(d.log().includes("reload: configuration and tables re-read from")),
        60_000,
      );
      // The replaced configuration's client keeps nothing idle (closed at
      // once, not after max_idle, 300 s; the wait has room for a loaded host).
      await until(
        "no connection to postgrey",
        async () => await connectionsTo(pg.port) === 0,
        10_000,
      );
      const second = await session(d.port, "c@sender.example");
      assert.match(
        second.rcpt,
        /450 4\.2\.0 <b@example\.com>: Recipient address rejected: Greylisted/,
      );
      assert.equal(await connectionsTo(pg.port), 1);
      // deno-lint-ignore no-console
      console.log(
        `postgrey connections opened: ${pg.connections()} (one before the reload, one after)`,
      );
      assert.equal(pg.connections(), 2, pg.log());
    } finally {
      await d.stop();
      await pg.stop();
    }
  },
});

Deno.test({
  name:
    "check_policy_service: postgrey over a UNIX socket relative to the queue directory, request_limit=1",
  ignore: !has("postgrey") || !has("swaks") || !isRoot,
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("postgrey-unix");
    const socket = join(dir, "spool", "private", "postgrey");
    await Deno.mkdir(join(dir, "spool", "private"), { recursive: true });
    const pg = await startPostgrey(dir, { delay: 1, unix: socket });
    const d = await startDaemon(
      restrictions("unix:private/postgrey", "smtpd_policy_service_request_limit = 1"),
      { dir },
    );
    try {
      const first = await session(d.port, "c@sender.example");
      assert.match(first.rcpt, /450 4\.2\.0 .*Greylisted/);
      await new Promise((r) => setTimeout(r, 2000));
      const second = await session(d.port, "c@sender.example");
      assert.match(second.out, /<[~-] +250 2\.0\.0 Ok: queued as /);
      // request_limit = 1: a new connection for each request.
      assert.equal(pg.connections(), 2, pg.log());
    } finally {
      await d.stop();
      await pg.stop();
    }
  },
});

Deno.test({
  name:
    "check_policy_service: policyd-spf refuses a forged sender (550 5.7.23) and accepts a permitted one",
  ignore: !has("policyd-spf") || !has("swaks") || !has("dnsmasq") || !has("unshare") || !isRoot,
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("spf");
    const spf = await startSpfPolicy(dir, [
      ["forged.example", "v=spf1 ip4:192.0.2.10 -all"],
      ["permitted.example", "v=spf1 ip4:127.0.0.0/8 -all"],
    ]);
    const d = await startDaemon(restrictions(`unix:${spf.socket}`), {
      dir,
    });
    try {
      const forged = await session(d.port, "someone@forged.example");
      // deno-lint-ignore no-console
      console.log(`forged sender:    ${forged.rcpt}`);
      assert.match(
        forged.rcpt,
        /550 5\.7\.23 <b@example\.com>: Recipient address rejected: Message rejected due to: SPF fail/,
      );
      const good = await session(d.port, "someone@permitted.example");
      // deno-lint-ignore no-console
      console.log(`permitted sender: ${good.rcpt}`);
      assert.match(good.out, /<[~-] +250 2\.1\.5 Ok/);
      assert.match(good.out, /<[~-] +250 2\.0\.0 Ok: queued as /);
      assert.equal((await queueFiles(d.queueDir)).length, 1);
    } finally {
      await d.stop();
      await spf.stop();
    }
  },
});

/** Sends one transaction on a raw connection and returns the RCPT reply. */
async function rcptReply(port: number, rcpts = ["<b@example.com>"], size = ""): Promise<string[]> {
  const c = await RawClient.connect(port);
  try {
    await c.reply();
    await c.send(`EHLO client.example.org\r\n`);
    await c.reply();
    await c.send(`MAIL FROM:<a@sender.example>${size}\r\n`);
    await c.reply();
    const out: string[] = [];
    for (const r of rcpts) {
      await c.send(`RCPT TO:${r}\r\n`);
      out.push((await c.reply(20000)).trim());
    }
    await c.send("QUIT\r\n");
    return out;
  } finally {
    c.close();
  }
}

Deno.test({
  name:
    "check_policy_service: a server that is down gives the default action (451 4.3.5), or DUNNO when so configured",
  ...opts,
  fn: async () => {
    const down = await fakePolicyServer("close");
    down.stop(); // nothing listens there now
    const d = await startDaemon(
      restrictions(`inet:127.0.0.1:${down.port}`, "smtpd_policy_service_retry_delay = 0"),
    );
    const d2 = await startDaemon(
      restrictions(`{ inet:127.0.0.1:${down.port}, default_action=DUNNO, try_limit=1 }`),
    );
    try {
      assert.deepEqual(await rcptReply(d.port), [
        "451 4.3.5 <b@example.com>: Recipient address rejected: Server configuration problem",
      ]);
      await d.waitForLog(/warning: problem talking to server inet:127\.0\.0\.1:\d+: connect to/);
      assert.deepEqual(await rcptReply(d2.port), ["250 2.1.5 Ok"]);
    } finally {
      await d.stop();
      await d2.stop();
    }
  },
});

Deno.test({
  name: "check_policy_service: a silent server costs at most the timeout per try",
  ...opts,
  fn: async () => {
    const silent = await fakePolicyServer("silent");
    const d = await startDaemon(
      restrictions(`{ inet:127.0.0.1:${silent.port}, timeout=1s, try_limit=2, retry_delay=0 }`),
    );
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("EHLO client.example.org\r\n");
      await c.reply();
      await c.send("MAIL FROM:<a@sender.example>\r\n");
      assert.match(await c.reply(), /^250 /);
      // The RCPT alone: two tries of 1 s (the session's start, the host's
      // load, are not what is measured).
      const t0 = Date.now();
      await c.send("RCPT TO:<b@example.com>\r\n");
      assert.equal(
        (await c.reply(20000)).trim(),
        "451 4.3.5 <b@example.com>: Recipient address rejected: Server configuration problem",
      );
      const took = Date.now() - t0;
      assert.ok(took >= 1900 && took < 5000, `took ${took} ms`);
      await d.waitForLog(/problem talking to server .*timeout while waiting for the reply/);
    } finally {
      c.close();
      await d.stop();
      silent.stop();
    }
  },
});

Deno.test({
  name:
    "check_policy_service: an endless reply line is cut off at the reply limit, memory stays bounded",
  ...opts,
  fn: async () => {
    const flood = await fakePolicyServer("flood");
    const d = await startDaemon(
      restrictions(`{ inet:127.0.0.1:${flood.port}, timeout=20s, try_limit=1 }`),
    );
    try {
      const t0 = Date.now();
      assert.deepEqual(await rcptReply(d.port), [
        "451 4.3.5 <b@example.com>: Recipient address rejected: Server configuration problem",
      ]);
      assert.ok(Date.now() - t0 < 10000, "the reply limit, not the timeout, ended it");
      await d.waitForLog(/problem talking to server .*reply longer than 8192 bytes/);
      // The server could write only what the socket buffers hold before we hung up.
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(flood.written() < 32 * 1024 * 1024, `server wrote ${flood.written()} bytes`);
    } finally {
      await d.stop();
      flood.stop();
    }
  },
});

Deno.test({
  name:
    "check_policy_service: a reply without action= gets the default action; an unknown action gets 451 4.3.5 Server configuration error",
  ...opts,
  fn: async () => {
    const garbage = await fakePolicyServer("garbage");
    const unknown = await fakePolicyServer({ action: "FROBNICATE now" });
    const d = await startDaemon(
      restrictions(`{ inet:127.0.0.1:${garbage.port}, try_limit=1 }`),
    );
    const d2 = await startDaemon(restrictions(`inet:127.0.0.1:${unknown.port}`));
    try {
      assert.deepEqual(await rcptReply(d.port), [
        "451 4.3.5 <b@example.com>: Recipient address rejected: Server configuration problem",
      ]);
      await d.waitForLog("missing attribute action");
      assert.deepEqual(await rcptReply(d2.port), ["451 4.3.5 Server configuration error"]);
      await d2.waitForLog(/policy server inet:.*: unsupported action "FROBNICATE now"/);
    } finally {
      await d.stop();
      await d2.stop();
      garbage.stop();
      unknown.stop();
    }
  },
});

Deno.test({
  name:
    "check_policy_service: Postfix's attributes are sent; actions are applied as access(5) actions",
  ...opts,
  fn: async () => {
    const rec = await fakePolicyServer({
      action: (attrs) =>
        attrs.get("recipient") === "bad@example.com"
          ? "REJECT no such user here"
          : attrs.get("recipient") === "later@example.com"
          ? "DEFER_IF_PERMIT try later"
          : attrs.get("recipient") === "ok@example.com"
          ? "OK"
          : "PREPEND X-Test: yes",
    });
    const d = await startDaemon(
      restrictions(
        `{ inet:127.0.0.1:${rec.port}, policy_context=unit-test }`,
      ),
    );
    try {
      const replies = await rcptReply(
        d.port,
        ["<ok@example.com>", "<bad@example.com>", "<later@example.com>", "<x@example.com>"],
        " SIZE=1234",
      );
      assert.deepEqual(replies, [
        "250 2.1.5 Ok",
        "554 5.7.1 <bad@example.com>: Recipient address rejected: no such user here",
        "450 4.7.1 <later@example.com>: Recipient address rejected: try later",
        "250 2.1.5 Ok",
      ]);
      const req = rec.requests()[0] as Map<string, string>;
      for (
        const [k, v] of Object.entries({
          request: "smtpd_access_policy",
          protocol_state: "RCPT",
          protocol_name: "ESMTP",
          helo_name: "client.example.org",
          sender: "a@sender.example",
          recipient: "ok@example.com",
          recipient_count: "0",
          client_address: "127.0.0.1",
          server_address: "127.0.0.1",
          server_port: String(d.port),
          client_name: "unknown",
          reverse_client_name: "unknown",
          size: "1234",
          policy_context: "unit-test",
          stress: "",
          encryption_keysize: "0",
        })
      ) assert.equal(req.get(k), v, k);
      assert.match(req.get("client_port") ?? "", /^\d+$/);
      // One transaction: one instance, and one connection for every request.
      const instances = new Set(rec.requests().map((r) => r.get("instance")));
      assert.equal(instances.size, 1);
      assert.match([...instances][0] ?? "", /^[0-9a-f]+\.[0-9a-f]+\.1$/);
      assert.equal(rec.connections(), 1);
    } finally {
      await d.stop();
      rec.stop();
    }
  },
});

Deno.test({
  name: "smtpd explain shows the policy request and the server's action",
  ...opts,
  fn: async () => {
    const rec = await fakePolicyServer({ action: "DEFER_IF_PERMIT Greylisted for test" });
    const dir = await makeWorkDir("policy-explain");
    const config = join(dir, "smtpd.toml");
    await Deno.writeTextFile(
      config,
      `queue_directory = "${join(dir, "spool")}"\n${restrictions(`inet:127.0.0.1:${rec.port}`)}`,
    );
    try {
      const rel = config.slice(config.indexOf("var/"));
      const { smtpdArgs } = await import("./_harness.ts");
      const r = await run(
        Deno.execPath(),
        await smtpdArgs([
          "explain",
          "-c",
          rel,
          "--client",
          "192.0.2.7",
          "--helo",
          "h.example",
          "--from",
          "a@sender.example",
          "--to",
          "b@example.com",
        ]),
      );
      // deno-lint-ignore no-console
      console.log(r.stdout);
      assert.match(r.stdout, /try check_policy_service inet:127\.0\.0\.1:\d+/);
      assert.match(r.stdout, /note: policy request to inet:127\.0\.0\.1:\d+: protocol_state=RCPT/);
      assert.match(r.stdout, /note: policy reply: action=DEFER_IF_PERMIT Greylisted for test/);
      assert.match(
        r.stdout,
        /reply: 450 4\.7\.1 <b@example\.com>: Recipient address rejected: Greylisted for test/,
      );
    } finally {
      rec.stop();
    }
  },
});

Deno.test({
  name:
    "check_policy_service: stand-alone mode asks the server and exits after the session (idle connection left open)",
  ...opts,
  fn: async () => {
    const rec = await fakePolicyServer({ action: "DUNNO" });
    const dir = await makeWorkDir("policy-stdin");
    const { configFile } = await writeConfig(
      dir,
      `mydestination = ["example.com"]\nsmtpd_recipient_restrictions = ["check_policy_service", "inet:127.0.0.1:${rec.port}", "permit"]`,
    );
    try {
      const t0 = Date.now();
      const r = await runStdin(
        configFile,
        "HELO me\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nQUIT\r\n",
      );
      assert.match(r.stdout, /250 2\.1\.5 Ok/);
      assert.equal(r.code, 0);
      // Not held open by the idle policy connection (max_idle, 300 s); the
      // bound has room for a process start on a loaded host.
      assert.ok(Date.now() - t0 < 45_000, `took ${Date.now() - t0} ms`);
      assert.equal(rec.requests()[0]?.get("protocol_state"), "RCPT");
      assert.equal(rec.requests()[0]?.get("client_address"), "127.0.0.1");
    } finally {
      rec.stop();
    }
  },
});

/**
 * Runs one stand-alone session with a policy server (DUNNO to all) in the
 * given restriction lists; the session must queue two messages.
 * @param name the work directory's name
 * @param lists the list parameters, given the list elements that name the server
 * @param session the client's side
 * @returns the requests the server got
 */
async function askedInStdin(
  name: string,
  lists: (service: string) => string[],
  session: string,
): Promise<Map<string, string>[]> {
  const rec = await fakePolicyServer({ action: "DUNNO" });
  try {
    const service = `"check_policy_service", "inet:127.0.0.1:${rec.port}"`;
    const { configFile } = await writeConfig(
      await makeWorkDir(name),
      [`mydestination = ["example.com"]`, ...lists(service)].join("\n"),
    );
    const r = await runStdin(configFile, session);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.match(/queued as/g)?.length, 2, r.stdout);
    return rec.requests();
  } finally {
    rec.stop();
  }
}

Deno.test({
  name:
    "check_policy_service: protocol_state is DATA for the data list and END-OF-MESSAGE for the end-of-data list, with DATA and with BDAT, and recipient_count 0 before them, as Postfix sends them",
  ...opts,
  fn: async () => {
    const requests = await askedInStdin(
      "policy-states",
      (service) => [
        `smtpd_recipient_restrictions = [${service}, "permit"]`,
        `smtpd_data_restrictions = [${service}]`,
        `smtpd_end_of_data_restrictions = [${service}]`,
      ],
      "EHLO me\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n" +
        "RCPT TO:<c@example.com>\r\nDATA\r\nSubject: one\r\n\r\nx\r\n.\r\n" +
        "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n" +
        "BDAT 3\r\nx\r\nBDAT 3 LAST\r\ny\r\nQUIT\r\n",
    );
    // Postfix's smtpd: state->where is DATA, then END-OF-MESSAGE (SMTPD_AFTER_EOM);
    // for BDAT, smtpd_check_data's "BDAT" is sent as DATA. recipient_count is
    // the count there and 0 at RCPT, even after a recipient was accepted.
    assert.deepEqual(
      requests.map((q) => `${q.get("protocol_state")} ${q.get("recipient_count")}`),
      [
        "RCPT 0",
        "RCPT 0",
        "DATA 2",
        "END-OF-MESSAGE 2",
        "RCPT 0",
        "DATA 1",
        "END-OF-MESSAGE 1",
      ],
    );
  },
});

Deno.test({
  name:
    "check_policy_service: size is the message's size at END-OF-MESSAGE (DATA and BDAT), the MAIL SIZE= before, as Postfix sends it",
  ...opts,
  fn: async () => {
    const requests = await askedInStdin(
      "policy-size",
      (service) => [
        `smtpd_data_restrictions = [${service}]`,
        `smtpd_end_of_data_restrictions = [${service}]`,
      ],
      "EHLO me\r\nMAIL FROM:<a@example.org> SIZE=1000\r\nRCPT TO:<b@example.com>\r\n" +
        "DATA\r\nSubject: one\r\n\r\nx\r\n.\r\n" +
        "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n" +
        "BDAT 3\r\nx\r\nBDAT 5 LAST\r\nyy\r\nzQUIT\r\n",
    );
    // Postfix's smtpd sends act_size once the message is in (each line
    // plus 2: 14 + 2 + 3; 3 + 4 + 3), the SIZE= of MAIL before.
    assert.deepEqual(
      requests.map((q) => `${q.get("protocol_state")} ${q.get("size")}`),
      ["DATA 1000", "END-OF-MESSAGE 19", "DATA 0", "END-OF-MESSAGE 10"],
    );
  },
});

Deno.test({
  name:
    "check_policy_service: a bad endpoint or a socket outside the permissions stops the start with file:line",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("policy-config");
    const { smtpdArgs } = await import("./_harness.ts");
    // The flags of this file without the policy service...
    const plain = await writeConfig(dir, "");
    const flags = await smtpdArgs(["config", "--check", "-c", plain.configFile]);
    // ...and the same file naming one: the derived flags grant its socket,
    const { configFile } = await writeConfig(
      dir,
      `smtpd_recipient_restrictions = [\n  "reject_unauth_destination",\n  "check_policy_service", "unix:/run/not-allowed/policy",\n]`,
    );
    assert.equal(configFile, plain.configFile);
    const granted = await smtpdArgs(["config", "--check", "-c", configFile]);
    assert.ok(
      granted.some((a) =>
        a.startsWith("--allow-net=") && a.includes("unix:/run/not-allowed/policy")
      ),
    );
    // and a program given the old flags names the one it lacks.
    const r = await run(Deno.execPath(), flags);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--allow-net=unix:\/run\/not-allowed\/policy +\(check_policy_service\)/);
    const bad = await writeConfig(
      dir,
      `smtpd_recipient_restrictions = ["check_policy_service", "{ inet:127.0.0.1:9, timeout=soon }"]`,
    );
    const r2 = await run(
      Deno.execPath(),
      await smtpdArgs(["config", "--check", "-c", bad.configFile]),
    );
    assert.notEqual(r2.code, 0);
    assert.match(r2.stderr, /smtpd\.toml:\d+: .*Cannot parse timeout "soon": not a time/);
    // Past 24 days a timer fires at once: every query would time out (451 to each RCPT).
    const long = await writeConfig(
      dir,
      `smtpd_recipient_restrictions = ["check_policy_service", "{ inet:127.0.0.1:9, timeout=30d }"]`,
    );
    const r4 = await run(
      Deno.execPath(),
      await smtpdArgs(["config", "--check", "-c", long.configFile]),
    );
    assert.notEqual(r4.code, 0, r4.stderr);
    assert.match(
      r4.stderr,
      /smtpd\.toml:\d+: .*Cannot use timeout "30d": must be at most 2147483 seconds/,
    );
    const missing = await writeConfig(
      dir,
      `smtpd_recipient_restrictions = ["check_policy_service"]`,
    );
    const r3 = await run(
      Deno.execPath(),
      await smtpdArgs(["config", "--check", "-c", missing.configFile]),
    );
    assert.match(r3.stderr, /restriction "check_policy_service" needs a policy service argument/);
  },
});

// Before, config --check said "configuration OK" for a policy socket that
// does not exist (a typo in the path, the daemon not started): the start
// went on and every RCPT got 451 4.3.5 from the default action.
Deno.test({
  name:
    "config --check warns, with file and line, about a policy server it cannot reach; not about postgrey listening",
  ignore: !has("postgrey"),
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("policy-reach");
    const socket = join(dir, "postgrey.sock");
    const pg = await startPostgrey(dir, { delay: 60, unix: socket });
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (closed.addr as Deno.NetAddr).port;
    closed.close();
    try {
      const { configFile } = await writeConfig(
        dir,
        "smtpd_recipient_restrictions = [\n" +
          '  "reject_unauth_destination",\n' +
          `  "check_policy_service unix:${socket}",\n` +
          '  "check_policy_service", "unix:private/policy",\n' +
          `  "check_policy_service { inet:127.0.0.1:${port}, default_action=DUNNO }",\n` +
          "]",
      );
      const r = await run(
        Deno.execPath(),
        await smtpdArgs(["config", "--check", "-c", configFile]),
      );
      assert.equal(r.code, 0, r.stderr);
      const file = configFile.replaceAll(".", "\\.");
      assert.match(
        r.stderr,
        new RegExp(
          `warning: ${file}:8: smtpd_recipient_restrictions: check_policy_service unix:private/policy ` +
            `cannot be reached \\(No such file or directory.*, at ${
              configFile.replace(/smtpd\.toml$/, "spool/private/policy").replaceAll(".", "\\.")
            }\\); ` +
            'until it can, its requests get the default action "451 4\\.3\\.5 Server configuration problem"',
        ),
      );
      assert.match(
        r.stderr,
        new RegExp(
          `warning: ${file}:9: smtpd_recipient_restrictions: check_policy_service inet:127\\.0\\.0\\.1:${port} ` +
            'cannot be reached \\(Connection refused.*\\); .*default action "DUNNO"',
        ),
      );
      assert.doesNotMatch(r.stderr, /postgrey\.sock/);
      assert.match(r.stdout, /configuration OK \(2 warnings\)/);
      await waitFor(
        "postgrey to log the check's connection",
        () => Promise.resolve(pg.connections() === 1),
      );
    } finally {
      await pg.stop();
    }
  },
});

Deno.test({
  name:
    "check_policy_service: REDIRECT and BCC answers go into the queue file; a malformed FILTER is skipped with Postfix's warning",
  ...opts,
  fn: async () => {
    const server = await fakePolicyServer({
      action: (attrs) =>
        attrs.get("sender") === "bad@example.org"
          ? "FILTER amavis"
          : attrs.get("sender") === "copy@example.org"
          ? "BCC archive@example.com"
          : "REDIRECT quarantine@example.com",
    });
    const d = await startDaemon(restrictions(`inet:127.0.0.1:${server.port}`));
    try {
      const copy = await session(d.port, "copy@example.org");
      const id = /queued as (\w+)/.exec(copy.out)?.[1];
      assert.ok(id, copy.out);
      const pc = await postcat(join(d.queueDir, "incoming", id));
      assert.match(pc, /HEADER EXTRACTED[^]*^recipient: archive@example\.com$/m);
      const moved = await session(d.port, "moved@example.org");
      const id2 = /queued as (\w+)/.exec(moved.out)?.[1];
      assert.ok(id2, moved.out);
      assert.match(
        await postcat(join(d.queueDir, "incoming", id2)),
        /^redirect_to: quarantine@example\.com$/m,
      );
      await d.waitForLog(
        "NOQUEUE: redirect: RCPT from unknown[127.0.0.1]: <b@example.com>: Recipient address triggers REDIRECT quarantine@example.com;",
      );
      const bad = await session(d.port, "bad@example.org");
      assert.equal(bad.rcpt, "<-  250 2.1.5 Ok", bad.out);
      assert.match(bad.out, /queued as \w+/);
      await d.waitForLog(
        /warning: access table check_policy_service inet:127\.0\.0\.1:\d+: entry "FILTER amavis" requires transport:destination/,
      );
    } finally {
      await d.stop();
      server.stop();
    }
  },
});

Deno.test({
  name:
    "check_policy_service: instance is empty outside a mail transaction, as Postfix sends it, so policyd-spf does not take MAIL's sender (smtpd_delay_reject = no) for the one it checked at EHLO",
  ignore: !has("policyd-spf") || !has("dnsmasq") || !has("unshare") || !isRoot,
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("spf-instance");
    const spf = await startSpfPolicy(dir, [
      ["forged.example", "v=spf1 ip4:192.0.2.10 -all"],
      ["permitted.example", "v=spf1 ip4:127.0.0.0/8 -all"],
    ]);
    const rec = await fakePolicyServer({ action: "DUNNO" });
    const service = `"check_policy_service", "unix:${spf.socket}"`;
    const recorder = `"check_policy_service", "inet:127.0.0.1:${rec.port}"`;
    const d = await startDaemon(
      [
        BASE,
        `smtpd_delay_reject = false`,
        `smtpd_helo_restrictions = [${recorder}, ${service}]`,
        `smtpd_sender_restrictions = [${recorder}, ${service}]`,
        `smtpd_recipient_restrictions = [${recorder}, "permit"]`,
      ].join("\n"),
      { dir },
    );
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      // The HELO name passes SPF: policyd-spf caches that result under the
      // request's instance, and answers a later request with the same
      // instance from its cache without checking the new sender.
      await c.send("EHLO permitted.example\r\n");
      assert.match(await c.reply(), /^250 /m);
      await c.send("MAIL FROM:<someone@forged.example>\r\n");
      assert.match(
        await c.reply(10000),
        /^550 5\.7\.23 <someone@forged\.example>: Sender address rejected: Message rejected due to: SPF fail/,
      );
      await c.send("MAIL FROM:<someone@permitted.example>\r\n");
      assert.match(await c.reply(10000), /^250 /);
      await c.send("RCPT TO:<b@example.com>\r\n");
      assert.match(await c.reply(10000), /^250 /);
      await c.send("RSET\r\n");
      await c.reply();
      await c.send("MAIL FROM:<other@permitted.example>\r\n");
      assert.match(await c.reply(10000), /^250 /);
      await c.send("RCPT TO:<b@example.com>\r\n");
      assert.match(await c.reply(10000), /^250 /);
      // Postfix's smtpd: no instance before the transaction exists (CONNECT,
      // EHLO, MAIL itself with smtpd_delay_reject = no), one per transaction.
      const seen = rec.requests().map((q) => [q.get("protocol_state"), q.get("instance")]);
      assert.deepEqual(seen.map(([s, i]) => `${s} ${i === "" ? "-" : "set"}`), [
        "EHLO -",
        "MAIL -",
        "MAIL -",
        "RCPT set",
        "MAIL -",
        "RCPT set",
      ]);
      assert.notEqual(seen[3]?.[1], seen[5]?.[1]);
    } finally {
      c.close();
      await d.stop();
      rec.stop();
      await spf.stop();
    }
  },
});

Deno.test({
  name:
    "check_policy_service: recipient is the only recipient at DATA and END-OF-MESSAGE, empty when there are more, as Postfix sends it",
  ...opts,
  fn: async () => {
    const requests = await askedInStdin(
      "policy-only-recipient",
      (service) => [
        `smtpd_data_restrictions = [${service}]`,
        `smtpd_end_of_data_restrictions = [${service}]`,
      ],
      "EHLO me\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n" +
        "DATA\r\nSubject: one\r\n\r\nx\r\n.\r\n" +
        "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\n" +
        "BDAT 3 LAST\r\ny\r\nQUIT\r\n",
    );
    // Postfix's smtpd (checked against Postfix 3): state->recipient stays
    // for the data and end-of-data checks when rcpt_count is 1.
    assert.deepEqual(
      requests.map((q) => `${q.get("protocol_state")} ${q.get("recipient") || "-"}`),
      [
        "DATA b@example.com",
        "END-OF-MESSAGE b@example.com",
        "DATA -",
        "END-OF-MESSAGE -",
      ],
    );
  },
});

Deno.test({
  name:
    "check_policy_service with smtputf8_enable off: a byte that is not UTF-8 reaches the server as that byte, as in Postfix",
  ...opts,
  fn: async () => {
    // Postfix's smtpd sends the sender and recipient as it read them; this
    // one sent U+FFFD (EF BF BD) for each such byte.
    const policy = await fakePolicyServer({ action: "DUNNO" });
    const d = await startDaemon(
      restrictions(`inet:127.0.0.1:${policy.port}`, "smtputf8_enable = false"),
    );
    try {
      const c = await RawClient.connect(d.port);
      try {
        await c.reply();
        const replies: string[] = [];
        for (const line of ["EHLO client.example.org", "MAIL FROM:<a\xffb@sender.example>"]) {
          await c.send(Uint8Array.from(`${line}\r\n`, (ch) => ch.charCodeAt(0)));
          replies.push((await c.reply()).trim());
        }
        await c.send(
          Uint8Array.from("RCPT TO:<c\xfe\xc3\xb6d@example.com>\r\n", (ch) => ch.charCodeAt(0)),
        );
        replies.push((await c.reply(20000)).trim());
        assert.deepEqual(replies.slice(1), ["250 2.1.0 Ok", "250 2.1.5 Ok"]);
      } finally {
        c.close();
      }
      const got = Array.from(policy.received(), (b) => String.fromCharCode(b)).join("");
      assert.match(got, /^sender=a\xffb@sender\.example$/m);
      assert.match(got, /^recipient=c\xfe\xc3\xb6d@example\.com$/m);
      assert.doesNotMatch(got, /\xef\xbf\xbd/);
    } finally {
      await d.stop();
      policy.stop();
    }
  },
});
