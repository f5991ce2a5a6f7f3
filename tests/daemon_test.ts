/**
 * Daemon mode end to end: the real program with the production flags,
 * real clients (swaks, Python smtplib, smtp-source), queue files read back
 * with Postfix's postcat.
 */

import assert from "node:assert/strict";
import { basename, join } from "node:path";
import {
  allEntries,
  type Daemon,
  freePort,
  makeWorkDir,
  postcat,
  queueFiles,
  RawClient,
  run,
  smtpdArgs,
  startDaemon,
  swaks,
  writeConfig,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/**
 * Runs `fn` with a daemon started with `config` and a raw client connected
 * to it (the greeting not yet read), then closes the client and stops the
 * daemon.
 */
async function withClient(
  config: string,
  fn: (c: RawClient, d: Daemon) => Promise<void>,
): Promise<void> {
  const d = await startDaemon(config);
  const c = await RawClient.connect(d.port);
  try {
    await fn(c, d);
  } finally {
    c.close();
    await d.stop();
  }
}

Deno.test({
  name: "serve accepts a swaks message and postcat reads sender, recipient and body",
  ...opts,
  fn: async () => {
    const d = await startDaemon();
    try {
      const r = await swaks(d.port, [
        "--from",
        "alice@sender.example",
        "--to",
        "user@example.com",
        "--body",
        "Hello from swaks\nsecond line",
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const m = /250 2\.0\.0 Ok: queued as (\w+)/.exec(r.stdout);
      assert.ok(m, r.stdout);
      const files = await queueFiles(d.queueDir);
      assert.deepEqual(files.map((f) => basename(f)), [m[1]]);
      const pc = await postcat(files[0] as string);
      assert.match(pc, /^sender: alice@sender\.example$/m);
      assert.match(pc, /^recipient: user@example\.com$/m);
      assert.match(pc, /^Hello from swaks$/m);
      assert.match(pc, /^second line$/m);
      assert.match(pc, new RegExp(`with ESMTP id ${m[1]}`));
      await d.waitForLog(`${m[1]}: from=<alice@sender.example>, size=`);
      assert.match(d.log(), /connect from unknown\[127\.0\.0\.1\]/);
      assert.match(d.log(), new RegExp(`${m[1]}: client=unknown\\[127\\.0\\.0\\.1\\]`));
    } finally {
      await d.stop();
    }
  },
});

const SMTPLIB = `
import smtplib, sys
port = int(sys.argv[1])
body = ("Subject: py\\r\\n\\r\\n.leading dot\\r\\n..two dots\\r\\n.\\r\\nx\\r\\n"
        "Gr\\u00fc\\u00dfe aus K\\u00f6ln\\r\\n").encode("utf-8")
with smtplib.SMTP("127.0.0.1", port) as s:
    s.ehlo("py.example")
    assert s.has_extn("pipelining") and s.has_extn("8bitmime") and s.has_extn("size")
    refused = s.sendmail("py@sender.example", ["a@example.com", "b@example.net"], body,
                         mail_options=["BODY=8BITMIME"])
    assert refused == {}, refused
    code, msg = s.noop()
    assert code == 250
print("sent")
`;

Deno.test({
  name: "smtplib: 8-bit body and dot-stuffing round trip, two recipients",
  ...opts,
  fn: async () => {
    const d = await startDaemon();
    try {
      const r = await run("python3", ["-c", SMTPLIB, String(d.port)]);
      assert.equal(r.code, 0, r.stderr);
      const files = await queueFiles(d.queueDir);
      assert.equal(files.length, 1);
      const pc = await postcat(files[0] as string);
      assert.match(pc, /^recipient: a@example\.com$/m);
      assert.match(pc, /^recipient: b@example\.net$/m);
      const body = pc.slice(pc.indexOf("Subject: py"));
      assert.match(body, /^\.leading dot\n\.\.two dots\n\.\nx\nGrüße aus Köln\n/m);
      assert.match(pc, /named_attribute: encoding=8bit/);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "pipelined MAIL/RCPT/DATA replies come back in one write",
  ...opts,
  fn: async () => {
    await withClient("", async (c) => {
      assert.match(await c.reply(), /^220 mx\.test\.example ESMTP deno-smtpd\r\n$/);
      await c.send("EHLO client.example\r\n");
      assert.match(await c.reply(), /^250-mx\.test\.example\r\n250-PIPELINING\r\n/);
      await c.send(
        "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n",
      );
      // All four replies must arrive together: one read returns them all.
      const first = await c.reply();
      assert.equal(first, "250 2.1.0 Ok\r\n");
      await c.send("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n");
      assert.equal(await c.reply(), "250 2.1.5 Ok\r\n");
      assert.equal(await c.reply(), "250 2.1.5 Ok\r\n");
      assert.equal(await c.reply(), "354 End data with <CR><LF>.<CR><LF>\r\n");
      assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as \w+\r\n$/);
      assert.equal(await c.reply(), "221 2.0.0 Bye\r\n");
    });
  },
});

Deno.test({
  name: "pipelined group is answered with a single segment",
  ...opts,
  fn: async () => {
    const d = await startDaemon();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: d.port });
    try {
      const buf = new Uint8Array(65536);
      await conn.read(buf); // banner
      const group =
        "EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nRSET\r\nNOOP\r\n";
      await conn.write(new TextEncoder().encode(group));
      const n = await conn.read(buf);
      const text = new TextDecoder().decode(buf.subarray(0, n ?? 0));
      // EHLO reply, 250 MAIL, 250 RCPT, 250 RSET, 250 NOOP in one read.
      assert.equal(text.match(/^250 /gm)?.length, 5, text);
    } finally {
      conn.close();
      await d.stop();
    }
  },
});

Deno.test({
  name: "1 MiB message is accepted; over-limit message gets 552 and the session goes on",
  ...opts,
  fn: async () => {
    await withClient("message_size_limit = 1200000", async (c, d) => {
      await c.reply();
      await c.send("EHLO x\r\n");
      await c.reply();
      const line = "x".repeat(1022) + "\r\n";
      const mib = line.repeat(1024); // 1 MiB
      await c.send("MAIL FROM:<a@example.org> SIZE=1048576\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
      await c.reply();
      await c.reply();
      assert.match(await c.reply(), /^354/);
      await c.send(`Subject: big\r\n\r\n${mib}.\r\n`);
      assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as/);
      await c.send("MAIL FROM:<a@example.org> SIZE=2000000\r\n");
      assert.equal(await c.reply(), "552 5.3.4 Message size exceeds fixed limit\r\n");
      await c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
      await c.reply();
      await c.reply();
      await c.reply();
      await c.send(`Subject: too big\r\n\r\n${mib}${mib}.\r\n`);
      assert.equal(await c.reply(), "552 5.3.4 Error: message file too big\r\n");
      await c.send("NOOP\r\n");
      assert.equal(await c.reply(), "250 2.0.0 Ok\r\n");
      const files = await queueFiles(d.queueDir);
      assert.equal(files.length, 1);
      assert.equal((await allEntries(d.queueDir)).length, 1, "no leftover of the refused message");
      const pc = await postcat(files[0] as string);
      assert.equal(pc.split("\n").filter((l) => l === "x".repeat(1022)).length, 1024);
    });
  },
});

const hasPrlimit = (await run("sh", ["-c", "command -v prlimit"])).code === 0;

Deno.test({
  name:
    "a message past the daemon's file size limit (LimitFSIZE=) gets 451; the daemon lives on, no file half-written",
  ignore: !hasPrlimit,
  ...opts,
  fn: async () => {
    await withClient("", async (c, d) => {
      // The limit comes once the daemon runs: Deno's own caches stay out of it.
      const limited = await run("prlimit", [`--pid=${d.pid}`, "--fsize=600000"]);
      assert.equal(limited.code, 0, limited.stderr);
      await c.reply();
      await c.send("HELO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
      for (let i = 0; i < 3; i++) await c.reply();
      assert.match(await c.reply(), /^354/);
      await c.send(
        "Subject: too big for the limit\r\n\r\n" + `${"x".repeat(76)}\r\n`.repeat(13000) + ".\r\n",
      );
      assert.equal(await c.reply(), "451 4.3.0 Error: queue file write error\r\n");
      // Another client is still served.
      const other = await RawClient.connect(d.port);
      try {
        assert.match(await other.reply(), /^220 /);
      } finally {
        other.close();
      }
      // Nothing half-written: every file there is complete (a notice to the postmaster).
      for (const name of await allEntries(d.queueDir)) {
        const st = await Deno.stat(join(d.queueDir, "incoming", name));
        assert.equal((st.mode ?? 0) & 0o777, 0o700, `${name} left unfinished`);
        assert.ok(st.size < 100_000, `${name}: ${st.size} bytes`);
      }
    });
  },
});

Deno.test({
  name: "client that disconnects in the middle of DATA leaves no file",
  ...opts,
  fn: async () => {
    await withClient("", async (c, d) => {
      await c.reply();
      await c.send("HELO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
      for (let i = 0; i < 4; i++) await c.reply();
      await c.send("Subject: half\r\n\r\n" + "line\r\n".repeat(50000));
      c.close();
      await d.waitForLog("lost connection after DATA");
      await d.waitForLog("disconnect from");
      assert.deepEqual(await allEntries(d.queueDir), []);
    });
  },
});

/**
 * Python: a session that sends the start of a message (after DATA, or in a
 * BDAT chunk: argv[2]), waits until the server has read all of it (its
 * socket's receive queue empty, as `ss` shows it), and resets the
 * connection (SO_LINGER 0: an RST, not a FIN).
 */
const RESET_IN_BODY = `
import socket, struct, subprocess, sys, time
port, how = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port)); s.settimeout(10)
f = s.makefile("rb")
def reply():
    while True:
        l = f.readline()
        if len(l) < 4 or l[3:4] != b"-":
            return l.decode().strip()
reply()
for c in [b"EHLO x", b"MAIL FROM:<a@example.org>", b"RCPT TO:<u@example.com>"]:
    s.sendall(c + b"\\r\\n"); reply()
if how == "DATA":
    s.sendall(b"DATA\\r\\n"); print("data:", reply())
    s.sendall(b"Subject: x\\r\\n\\r\\nhi\\r\\n")
else:
    s.sendall(b"BDAT 100\\r\\nabc")
me = s.getsockname()[1]
for _ in range(1000):
    q = subprocess.run(["ss", "-tnH", "state", "established",
        "( sport = :%d and dport = :%d )" % (port, me)], capture_output=True, text=True).stdout.split()
    if q and q[0] == "0":
        break
    time.sleep(0.01)
else:
    sys.exit("the server never read what was sent")
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
`;

Deno.test({
  name:
    "a client that resets its connection mid-DATA or mid-BDAT: Postfix's 'lost connection after DATA (N bytes)', no file left",
  ...opts,
  fn: async () => {
    const d = await startDaemon();
    try {
      // Postfix 3.7 counts the bytes it had, as for a client that ends with a
      // FIN: "Subject: x", "" and "hi" with their CRLFs; the chunk's 3 octets.
      for (
        const [how, line] of [
          ["DATA", "lost connection after DATA (18 bytes) from unknown[127.0.0.1]"],
          ["BDAT", "lost connection after BDAT (3 bytes) from unknown[127.0.0.1]"],
        ]
      ) {
        const r = await run("python3", ["-c", RESET_IN_BODY, String(d.port), how as string]);
        assert.equal(r.code, 0, r.stderr);
        await d.waitForLog(line as string);
      }
      await d.waitForLog(/disconnect from [^\n]*bdat=0\/1/);
      assert.deepEqual(await allEntries(d.queueDir), [], "no file left of either message");
    } finally {
      await d.stop();
    }
  },
});

for (const threads of [1, 2]) {
  Deno.test({
    name:
      `smtp-source: 10 sessions x 300 messages leave 300 complete queue files (${threads} listener thread(s))`,
    ...opts,
    fn: async () => {
      const d = await startDaemon(`smtpd_listen_threads = ${threads}`);
      try {
        await d.waitForLog(threads > 1 ? `(${threads} threads)` : "daemon started");
        assert.equal(threads > 1, / \(\d+ threads\)/.test(d.log()), d.log());
        const r = await run("smtp-source", [
          "-s",
          "10",
          "-m",
          "300",
          "-l",
          "4096",
          `127.0.0.1:${d.port}`,
        ], {
          timeoutMs: 120000,
        });
        assert.equal(r.code, 0, r.stderr);
        const files = await queueFiles(d.queueDir);
        assert.equal(files.length, 300);
        assert.equal((await allEntries(d.queueDir)).length, 300);
        for (const f of files) await postcat(f);
      } finally {
        await d.stop();
      }
    },
  });
}

Deno.test({
  name: "SMTP smuggling: bare-LF dot lines never end DATA, one DATA gives one message",
  ...opts,
  fn: async () => {
    await withClient("", async (c, d) => {
      await c.reply();
      await c.send("HELO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
      for (let i = 0; i < 4; i++) await c.reply();
      await c.send(
        "Subject: s\r\n\r\nbefore\n.\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.com>\r\n" +
          "DATA\r\nsmuggled\r\n\r\n.\n\r\nafter\r\n.\r\n",
      );
      assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as/);
      await c.send("QUIT\r\n");
      assert.equal(await c.reply(), "221 2.0.0 Bye\r\n");
      const files = await queueFiles(d.queueDir);
      assert.equal(files.length, 1);
      const pc = await postcat(files[0] as string);
      assert.match(pc, /^MAIL FROM:<evil@example\.org>$/m);
      assert.match(pc, /^after$/m);
      assert.doesNotMatch(pc, /recipient: victim/);
    });
  },
});

Deno.test({
  name: "client garbage gets SMTP errors and the server lives on",
  ...opts,
  fn: async () => {
    await withClient("", async (c, d) => {
      await c.reply();
      await c.send("HELO\x00x\r\n");
      assert.equal(await c.reply(), "500 5.5.2 Error: bad syntax\r\n");
      await c.send(new Uint8Array([0x48, 0x45, 0xff, 0xfe, 0x0d, 0x0a]));
      assert.equal(await c.reply(), "500 5.5.2 Error: bad UTF-8 syntax\r\n");
      await c.send("A".repeat(5000) + "\r\n");
      assert.equal(await c.reply(), "500 5.5.0 Error: line too long\r\n");
      const junk = crypto.getRandomValues(new Uint8Array(3000)).map((b) => b === 10 ? 65 : b);
      await c.send(junk);
      await c.send("\r\nNOOP\r\n");
      let last = "";
      for (let i = 0; i < 40 && !last.startsWith("250"); i++) last = await c.reply();
      assert.equal(last, "250 2.0.0 Ok\r\n");
      await c.send("FOO bar\r\n");
      assert.equal(await c.reply(), "500 5.5.2 Error: command not recognized\r\n");
      c.close();
      const r = await swaks(d.port, ["--to", "u@example.com"]);
      assert.match(r.stdout, /250 2\.0\.0 Ok: queued as/);
    });
  },
});

Deno.test({
  name: "smtpd_hard_error_limit: 421 and disconnect",
  ...opts,
  fn: async () => {
    await withClient("smtpd_hard_error_limit = 3\nsmtpd_soft_error_limit = 10", async (c, d) => {
      await c.reply();
      await c.send("BAD1\r\nBAD2\r\nBAD3\r\nNOOP\r\n");
      assert.match(await c.reply(), /^500/);
      assert.match(await c.reply(), /^500/);
      assert.match(await c.reply(), /^500/);
      assert.equal(await c.reply(), "421 4.7.0 mx.test.example Error: too many errors\r\n");
      assert.equal(await c.reply(), "", "connection closed");
      await d.waitForLog("too many errors after UNKNOWN");
    });
  },
});

Deno.test({
  name: "smtpd_timeout: idle client gets 421 and is disconnected",
  ...opts,
  fn: async () => {
    const d = await startDaemon("smtpd_timeout = 1");
    // Timed from before the connect: the server's clock starts at its accept,
    // and the greeting may reach a busy test process well after that.
    const t0 = Date.now();
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      // After smtpd_timeout (1 s); waited for with room for a loaded host.
      assert.equal(await c.reply(20000), "421 4.4.2 mx.test.example Error: timeout exceeded\r\n");
      assert.ok(Date.now() - t0 >= 900);
      assert.equal(await c.reply(), "");
      await d.waitForLog("timeout after CONNECT");
    } finally {
      c.close();
      await d.stop();
    }
  },
});

Deno.test({
  name: "smtpd_error_sleep_time delays error replies, not good ones",
  ...opts,
  fn: async () => {
    await withClient("smtpd_error_sleep_time = 1", async (c) => {
      await c.reply();
      // A good reply is not delayed: the quickest of three NOOPs (one round
      // trip stalled by a loaded host is no delay of the server's; a server
      // that slept before good replies would make all three 1 s).
      const noops: number[] = [];
      for (let i = 0; i < 3; i++) {
        const start = Date.now();
        await c.send("NOOP\r\n");
        assert.equal(await c.reply(), "250 2.0.0 Ok\r\n");
        noops.push(Date.now() - start);
      }
      assert.ok(Math.min(...noops) < 900, `NOOP took ${noops.join(", ")} ms`);
      const t0 = Date.now();
      await c.send("RCPT TO:<a@b.example>\r\n");
      assert.equal(await c.reply(), "503 5.5.1 Error: need MAIL command\r\n");
      assert.ok(Date.now() - t0 >= 900);
    });
  },
});

Deno.test({
  name: "queue_minfree: 452 4.3.1 when the queue file system is short of space",
  ...opts,
  fn: async () => {
    await withClient("queue_minfree = 9000000000000000", async (c, d) => {
      await c.reply();
      await c.send("HELO x\r\nMAIL FROM:<a@example.org>\r\n");
      await c.reply();
      assert.equal(await c.reply(), "452 4.3.1 Insufficient system storage\r\n");
      await d.waitForLog("not enough free space");
    });
  },
});

Deno.test({
  name: "hopcount_limit: too many Received headers gives 554 5.4.6 and no file",
  ...opts,
  fn: async () => {
    await withClient("hopcount_limit = 5", async (c, d) => {
      await c.reply();
      await c.send("HELO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
      for (let i = 0; i < 4; i++) await c.reply();
      await c.send("Received: from a\r\n".repeat(4) + "Subject: loop\r\n\r\nbody\r\n.\r\n");
      assert.equal(await c.reply(), "554 5.4.6 Too many hops\r\n");
      await c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
      for (let i = 0; i < 3; i++) await c.reply();
      await c.send("Received: from a\r\n".repeat(3) + "Subject: ok\r\n\r\nbody\r\n.\r\n");
      assert.match(await c.reply(), /^250 2\.0\.0/);
      assert.equal((await allEntries(d.queueDir)).length, 1);
    });
  },
});

Deno.test({
  name: "relay control: a client outside mynetworks may only send to our domains",
  ...opts,
  fn: async () => {
    await withClient(
      'mynetworks = ["127.0.0.2/32"]\nmydestination = ["example.com"]',
      async (c, d) => {
        await c.reply();
        await c.send("HELO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@example.net>\r\n");
        await c.reply();
        await c.reply();
        assert.equal(await c.reply(), "454 4.7.1 <u@example.net>: Relay access denied\r\n");
        await c.send("RCPT TO:<u@example.com>\r\n");
        assert.equal(await c.reply(), "250 2.1.5 Ok\r\n");
        await d.waitForLog(
          "NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 454 4.7.1 <u@example.net>: Relay access denied; from=<a@example.org> to=<u@example.net> proto=SMTP helo=<x>",
        );
      },
    );
  },
});

Deno.test({
  name: "always_bcc adds a recipient to every message",
  ...opts,
  fn: async () => {
    const d = await startDaemon('always_bcc = "archive@example.com"');
    try {
      const r = await swaks(d.port, ["--to", "u@example.com"]);
      assert.match(r.stdout, /250 2\.0\.0 Ok/);
      const [f] = await queueFiles(d.queueDir);
      const pc = await postcat(f as string);
      assert.match(pc, /^recipient: u@example\.com$/m);
      assert.match(pc, /^recipient: archive@example\.com$/m);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "a second server on a port another one serves with listener threads does not start: it would take half of its connections",
  ...opts,
  fn: async () => {
    const port = freePort();
    const listen = `smtpd_listen = ["127.0.0.1:${port}"]\nsmtpd_listen_threads = 2`;
    const first = await startDaemon(`${listen}\nsmtpd_banner = "first"`);
    try {
      await first.waitForLog("(2 threads)");
      const { configFile } = await writeConfig(await makeWorkDir("second"), listen);
      const second = await run(Deno.execPath(), await smtpdArgs(["serve", "-c", configFile]), {
        timeoutMs: 15_000,
      });
      assert.equal(second.code, 1, second.stderr);
      assert.match(
        second.stderr,
        new RegExp(
          `error: .*smtpd\\.toml:\\d+: smtpd_listen: cannot listen on 127\\.0\\.0\\.1:${port}: ` +
            "Address already in use",
        ),
      );
      // Every connection is the first server's.
      for (let i = 0; i < 6; i++) {
        const c = await RawClient.connect(port);
        assert.equal((await c.reply()).trim(), "220 first");
        c.close();
      }
    } finally {
      await first.stop();
    }
  },
});

Deno.test({
  name:
    "serve with a table that cannot be opened, restriction and table in one string of a list over several lines: the fatal names that string's line",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("itemline");
    const missing = join(dir, "missing.map");
    // Lines 1-4 are writeConfig's own.
    const { configFile } = await writeConfig(
      dir,
      `smtpd_client_restrictions = [\n  "permit_mynetworks",\n  "check_client_access texthash:${missing}",\n]`,
    );
    const r = await run(Deno.execPath(), await smtpdArgs(["serve", "-c", configFile]), {
      timeoutMs: 15_000,
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /^smtpd: fatal: .*smtpd\.toml:7: smtpd_client_restrictions: cannot open table "texthash:/m,
    );
  },
});

Deno.test({
  name:
    "config --check with a recipient table that cannot be opened: the fatal names that table's parameter and line",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("rcptmaps");
    const missing = join(dir, "missing.map");
    // Lines 1-4 are writeConfig's own.
    for (const key of ["relay_recipient_maps", "virtual_mailbox_maps", "virtual_alias_maps"]) {
      const { configFile } = await writeConfig(
        dir,
        `relay_domains = ["example.com"]\nvirtual_mailbox_domains = ["v.example"]\n${key} = ["texthash:${missing}"]`,
      );
      const r = await run(
        Deno.execPath(),
        await smtpdArgs(["config", "--check", "-c", configFile]),
        {
          timeoutMs: 15_000,
        },
      );
      assert.equal(r.code, 1, r.stderr);
      // We named local_recipient_maps (virtual_alias_domains for virtual_alias_maps), with no line.
      assert.match(
        r.stderr,
        new RegExp(`^smtpd: fatal: .*smtpd\\.toml:7: ${key}: cannot open table "texthash:`, "m"),
      );
    }
  },
});

Deno.test({
  name: "serve with no address to listen on stops with file and line instead of running for nobody",
  ...opts,
  fn: async () => {
    const { configFile } = await writeConfig(await makeWorkDir("nolisten"), "smtpd_listen = []");
    const r = await run(Deno.execPath(), await smtpdArgs(["serve", "-c", configFile]), {
      timeoutMs: 15_000,
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /^smtpd: fatal: .*smtpd\.toml:4: smtpd_listen: no address to listen on \(smtpd_tls_wrappermode_listen is empty too\)/m,
    );
    // The same file serves stand-alone mode, which listens nowhere.
    const s = await run(Deno.execPath(), await smtpdArgs(["stdin", "-c", configFile]), {
      stdin: "QUIT\r\n",
      timeoutMs: 15_000,
    });
    assert.match(s.stdout, /^221 /m, s.stderr);
  },
});

// Before, "localhost:PORT" was listened on at the first address the name
// resolved to only (127.0.0.1 here), where Postfix listens on each of them.
Deno.test({
  name:
    "a host name in smtpd_listen or smtpd_tls_wrappermode_listen stops serve and config --check with file and line",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("listenname");
    const cases: [string, string, number][] = [["smtpd_listen", "localhost", 4], [
      "smtpd_tls_wrappermode_listen",
      "Mail.Example",
      5,
    ]];
    for (const [key, value, line] of cases) {
      const port = freePort();
      const { configFile } = await writeConfig(work, `${key} = ["${value}:${port}"]`);
      for (const args of [["config", "--check"], ["serve"]]) {
        const r = await run(Deno.execPath(), await smtpdArgs([...args, "-c", configFile]), {
          timeoutMs: 15_000,
        });
        assert.equal(r.code, 1, r.stderr);
        assert.match(
          r.stderr,
          new RegExp(
            `^smtpd: fatal: .*smtpd\\.toml:${line}: ${key}: "${value}:${port}": takes IP addresses, not a host name`,
            "m",
          ),
        );
        assert.doesNotMatch(r.stderr, /daemon started/);
      }
    }
    const { configFile } = await writeConfig(work, `smtpd_listen = ["localhost:${freePort()}"]`);
    const r = await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", configFile]));
    assert.match(r.stderr, /write e\.g\. "127\.0\.0\.1:\d+", "\[::1\]:\d+"/);
  },
});
