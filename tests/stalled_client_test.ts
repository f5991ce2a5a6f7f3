/**
 * Clients that stop half-way hold no slot for long: a STARTTLS handshake
 * that never comes (smtpd_starttls_timeout), garbage instead of a
 * ClientHello, and a client that never reads its replies (smtpd_timeout on
 * the write side), on the Deno TCP listener, the node:net listener and
 * stand-alone mode.
 */

import assert from "node:assert/strict";
import {
  type Daemon,
  makeWorkDir,
  queueFiles,
  RawClient,
  ROOT,
  run,
  smtpdArgs,
  startDaemon,
  tlsCertConfig,
  writeConfig,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A work dir with a fresh self-signed certificate and the TLS settings for it. */
async function tlsSetup(engine = false): Promise<{ dir: string; tls: string }> {
  const dir = await makeWorkDir("stall");
  return { dir, tls: await tlsCertConfig(dir, "may", { engine }) };
}

/** The TLS tests run through node:tls and through the TLS engine (tls_engine.ts). */
const ENGINES = [
  { engine: false, named: "" },
  { engine: true, named: " (TLS engine)" },
];

/**
 * EHLO, STARTTLS, the 220, and then nothing: the handshake never starts.
 * The connect is retried while a slot that was just freed is still taken
 * (a client over default_process_limit gets 421 at once).
 */
async function silentAfterStarttls(port: number): Promise<RawClient> {
  const c = await greeted(port, Date.now() + 5000);
  assert.ok(c, "no free slot within 5 s");
  await c.send("EHLO stall.example\r\n");
  assert.match(await c.reply(), /^250-STARTTLS\r$/m);
  await c.send("STARTTLS\r\n");
  assert.equal(await c.reply(), "220 2.0.0 Ready to start TLS\r\n");
  return c;
}

/**
 * Connects until the greeting is a 220 (a 421 means every slot is taken).
 * @returns the client, greeted, or undefined when the deadline passed
 */
async function greeted(port: number, deadline: number): Promise<RawClient | undefined> {
  while (Date.now() < deadline) {
    const c = await RawClient.connect(port);
    const r = await c.reply(Math.max(1, deadline - Date.now())).catch(() => "");
    if (r.startsWith("220 ")) return c;
    c.close();
    await new Promise((res) => setTimeout(res, 100));
  }
  return undefined;
}

/** Sends one message over a greeted client; returns the reply to the end of DATA. */
async function sendMessage(c: RawClient): Promise<string> {
  await c.send("HELO fresh.example\r\n");
  assert.match(await c.reply(), /^250 /);
  await c.send("MAIL FROM:<a@example.org>\r\n");
  assert.match(await c.reply(), /^250 /);
  await c.send("RCPT TO:<b@example.com>\r\n");
  assert.match(await c.reply(), /^250 /);
  await c.send("DATA\r\n");
  assert.match(await c.reply(), /^354 /);
  await c.send("Subject: after the stall\r\n\r\nbody\r\n.\r\n");
  const r = await c.reply();
  await c.send("QUIT\r\n");
  await c.reply().catch(() => "");
  return r;
}

function count(text: string, re: RegExp): number {
  return [...text.matchAll(new RegExp(re.source, "g"))].length;
}

/** Waits (bounded) until the daemon's log holds `n` lines matching `re`. */
async function logCount(d: Daemon, re: RegExp, n: number, timeoutMs = 5000): Promise<number> {
  const end = Date.now() + timeoutMs;
  while (count(d.log(), re) < n && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
  }
  return count(d.log(), re);
}

for (const { engine, named } of ENGINES) {
  Deno.test({
    name:
      "smtpd_starttls_timeout: 5 clients silent after STARTTLS do not lock out a 6th (default_process_limit = 5)" +
      named,
    ...opts,
    fn: async () => {
      const { dir, tls } = await tlsSetup(engine);
      const d = await startDaemon(
        `${tls}\nsmtpd_peername_lookup = false\ndefault_process_limit = 5\nsmtpd_starttls_timeout = 2`,
        { dir },
      );
      const silent: RawClient[] = [];
      let fresh: RawClient | undefined;
      try {
        for (let i = 0; i < 5; i++) silent.push(await silentAfterStarttls(d.port));
        // Nobody else connects (so no idle session is closed to make room):
        // the handshakes themselves must time out and free every slot.
        const timedOut = /SSL_accept error from unknown\[127\.0\.0\.1\]: Connection timed out/;
        assert.equal(await logCount(d, timedOut, 5, 6000), 5, d.log());
        // Each silent client was cut off: its connection is closed.
        for (const c of silent) assert.equal(await c.reply(3000), "");
        fresh = await greeted(d.port, Date.now() + 3000);
        assert.ok(fresh, `no 220 greeting after the timeouts:\n${d.log()}`);
        assert.match(await sendMessage(fresh), /^250 2\.0\.0 Ok: queued as \w+\r\n$/);
        assert.equal((await queueFiles(d.queueDir)).length, 1);
        assert.equal(await logCount(d, /lost connection after STARTTLS from unknown/, 5), 5);
        // As Postfix counts it: STARTTLS whose handshake never ended did not succeed.
        assert.equal(
          await logCount(d, /disconnect from unknown\S+ ehlo=1 starttls=0\/1 commands=1\/2\b/, 5),
          5,
        );
      } finally {
        fresh?.close();
        for (const c of silent) c.close();
        await d.stop();
      }
    },
  });
}

for (const { engine, named } of ENGINES) {
  Deno.test({
    name: "garbage instead of a ClientHello after STARTTLS ends the session and frees its slot" +
      named,
    ...opts,
    fn: async () => {
      const { dir, tls } = await tlsSetup(engine);
      const d = await startDaemon(
        `${tls}\nsmtpd_peername_lookup = false\ndefault_process_limit = 1\nsmtpd_starttls_timeout = 30`,
        { dir },
      );
      const fresh: RawClient[] = [];
      try {
        const shapes = [
          "GET / HTTP/1.0\r\n\r\n", // plaintext
          "\x16\x03\x01\x00\x05hello", // a handshake record with a bogus body
          "\x16\x03\x01\xff\xff" + "x".repeat(2000), // a record longer than TLS allows
        ];
        for (const garbage of shapes) {
          const c = await silentAfterStarttls(d.port);
          const t0 = Date.now();
          await c.send(new Uint8Array([...garbage].map((ch) => ch.charCodeAt(0))));
          // The server answers with at most a TLS alert, then closes.
          let rest = "x";
          for (let i = 0; i < 5 && rest !== ""; i++) rest = await c.reply(5000).catch(() => "");
          assert.equal(rest, "", `connection not closed after ${JSON.stringify(garbage)}`);
          assert.ok(Date.now() - t0 < 5000);
          c.close();
          // The only slot is free again at once.
          const next = await greeted(d.port, Date.now() + 5000);
          assert.ok(next, "the slot was not freed");
          fresh.push(next);
          next.close();
        }
        assert.equal(await logCount(d, /SSL_accept error from unknown\[127\.0\.0\.1\]: -1/, 3), 3);
        assert.equal(await logCount(d, /warning: TLS library problem: /, 3), 3);
        assert.equal(await logCount(d, /lost connection after STARTTLS from unknown/, 3), 3);
        // The daemon still serves.
        const last = await greeted(d.port, Date.now() + 5000);
        assert.ok(last);
        fresh.push(last);
        assert.match(await sendMessage(last), /^250 2\.0\.0 Ok: queued as/);
      } finally {
        for (const c of fresh) c.close();
        await d.stop();
      }
    },
  });
}

/**
 * A client that pipelines HELO commands but never reads a reply, until its
 * own sends stall; then it waits, and finally reads what is left. It prints
 * "stalled" when its sends stopped being taken and "closed N" with the seconds
 * from the stall to the end of the connection.
 */
const NON_READER = `
import socket, ssl, sys, time
port, wait, tls = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "tls"
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
s.recv(1000)
if tls:
    s.sendall(b"EHLO x\\r\\n"); time.sleep(0.2); s.recv(1000)
    s.sendall(b"STARTTLS\\r\\n"); s.recv(1000)
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(s)
    print("tls", s.version(), flush=True)
s.setblocking(False)
chunk = b"HELO never.reads.example\\r\\n" * 2000
sent, last = 0, time.time()
while time.time() - last < 1.0 and sent < 200_000_000:
    try:
        sent += s.send(chunk)
        last = time.time()
    except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
        time.sleep(0.01)
    except OSError:
        break
stall = time.time()
print("stalled after", sent, "bytes", flush=True)
time.sleep(wait)
s.setblocking(True)
s.settimeout(wait + 10)
try:
    while s.recv(1 << 20):
        pass
    print("closed %.1f" % (time.time() - stall), flush=True)
except ConnectionResetError:  # closed with our commands unread: a reset
    print("closed %.1f" % (time.time() - stall), flush=True)
except Exception as e:
    print("still open:", e, flush=True)
`;

async function nonReaderAgainst(extra: string, dir?: string, tls = false): Promise<void> {
  const d = await startDaemon(
    `${extra}\nsmtpd_peername_lookup = false\nsmtpd_timeout = 2\ndefault_process_limit = 1`,
    dir ? { dir } : {},
  );
  let fresh: RawClient | undefined;
  try {
    const client = run("python3", ["-c", NON_READER, String(d.port), "4", tls ? "tls" : "plain"], {
      timeoutMs: 40000,
    });
    // While the non-reader holds the only slot, its session must end within
    // smtpd_timeout of the stalled write: then a new client is greeted.
    await d.waitForLog(/timeout after HELO from unknown\[127\.0\.0\.1\]/, 20000);
    fresh = await greeted(d.port, Date.now() + 5000);
    assert.ok(fresh, "the slot was not freed");
    assert.match(await sendMessage(fresh), /^250 2\.0\.0 Ok: queued as/);
    const r = await client;
    assert.equal(r.code, 0, r.stderr);
    // Its sends stalled: the server stopped reading once its replies backed
    // up, rather than taking (and keeping in memory) all 200 MB.
    const sent = Number(/^stalled after (\d+) bytes$/m.exec(r.stdout)?.[1]);
    assert.ok(sent > 0 && sent < 64 * 2 ** 20, r.stdout);
    if (tls) assert.match(r.stdout, /^tls TLSv1\.3$/m);
    // Its connection was closed by the server (an EOF, or a reset).
    assert.match(r.stdout, /^closed [\d.]+$/m);
  } finally {
    fresh?.close();
    await d.stop();
  }
}

Deno.test({
  name: "a client that never reads its replies is cut off after smtpd_timeout (Deno TCP listener)",
  ...opts,
  fn: () => nonReaderAgainst(""),
});

Deno.test({
  name: "a client that never reads its replies is cut off after smtpd_timeout (node:net listener)",
  ...opts,
  fn: async () => {
    const { dir, tls } = await tlsSetup();
    await nonReaderAgainst(tls, dir);
  },
});

for (const { engine, named } of ENGINES) {
  Deno.test({
    name: "a client that never reads its replies after STARTTLS is cut off after smtpd_timeout" +
      named,
    ...opts,
    fn: async () => {
      const { dir, tls } = await tlsSetup(engine);
      await nonReaderAgainst(tls, dir, true);
    },
  });
}

Deno.test({
  name: "stand-alone mode: a client that never reads stdout is cut off after smtpd_timeout",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("stall");
    const { configFile } = await writeConfig(dir, "smtpd_timeout = 2");
    const child = new Deno.Command(Deno.execPath(), {
      args: await smtpdArgs(["stdin", "-c", configFile]),
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped", // never read: the pipe fills
      stderr: "piped",
    }).spawn();
    const killer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 30000);
    const t0 = Date.now();
    try {
      // 1 MiB of replies (far more than a pipe holds) for 300 KiB of commands.
      const w = child.stdin.getWriter();
      const feeding = w.write(
        new TextEncoder().encode("HELO never.reads.example\r\n".repeat(12000)),
      )
        .then(() => w.close()).catch(() => {});
      const stderrText = new Response(child.stderr).text();
      const status = await child.status;
      const ms = Date.now() - t0;
      await feeding;
      const log = await stderrText;
      // 2-3 s here: its start, then smtpd_timeout (2 s). A start on a loaded
      // host takes seconds more; a process never cut off runs until killed.
      assert.ok(ms < 15000, `ran ${ms} ms`);
      assert.notEqual(status.signal, "SIGKILL", "killed by the test's deadline");
      assert.match(log, /timeout after HELO from localhost\[127\.0\.0\.1\]/);
    } finally {
      clearTimeout(killer);
      await child.stdout.cancel().catch(() => {});
    }
  },
});

for (const { engine, named } of ENGINES) {
  Deno.test({
    name: "a client that leaves during the TLS handshake frees its slot at once" + named,
    ...opts,
    fn: async () => {
      const { dir, tls } = await tlsSetup(engine);
      const d = await startDaemon(
        `${tls}\nsmtpd_peername_lookup = false\ndefault_process_limit = 2\nsmtpd_starttls_timeout = 60`,
        { dir },
      );
      try {
        const gone = [await silentAfterStarttls(d.port), await silentAfterStarttls(d.port)];
        for (const c of gone) c.close();
        // Both slots come back well before smtpd_starttls_timeout (60 s):
        // 3-21 ms here; a loaded host may take longer than the 1.5 s once asked.
        const t0 = Date.now();
        const next = await greeted(d.port, Date.now() + 10000);
        assert.ok(next, "no slot came back within 10 s");
        assert.ok(Date.now() - t0 < 5000, `a slot came back after ${Date.now() - t0} ms`);
        next.close();
        assert.equal(await logCount(d, /lost connection after STARTTLS from unknown/, 2), 2);
      } finally {
        await d.stop();
      }
    },
  });
}
