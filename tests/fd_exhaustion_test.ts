/**
 * Running out of file descriptors must not stop service. The daemon's
 * descriptor limit is lowered with prlimit(1) to a few more than it has
 * open, clients connect until accept(2) fails with EMFILE, and then: the
 * server does not spin (CPU measured from /proc/PID/stat over a second),
 * logs one warning for the burst, a session already under way gets
 * 451 4.3.0 for the message it cannot write (and the daemon lives on), and
 * once the clients are gone it serves a new client (swaks) by itself, on
 * the plain listener and on the STARTTLS one. With the TLS engine, whose
 * sessions need two descriptors more than a plain one, a TLS client is
 * served by closing an idle handshake, as a plain one is.
 */

import assert from "node:assert/strict";
import {
  type Daemon,
  freePort,
  makeWorkDir,
  queueFiles,
  RawClient,
  run,
  startDaemon,
  swaks,
  tlsCertConfig,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function openDescriptors(pid: number): Promise<number> {
  return (await Array.fromAsync(Deno.readDir(`/proc/${pid}/fd`))).length;
}

/**
 * A process's descriptor count once it holds steady (two looks 100 ms apart
 * agree; at most 2 s): a daemon that has just said it listens still opens
 * and closes one for a moment now and then (seen here: the system's CA file,
 * a socket), which a single look may count.
 */
async function steadyDescriptors(pid: number): Promise<number> {
  let n = await openDescriptors(pid);
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const now = await openDescriptors(pid);
    if (now === n) break;
    n = now;
  }
  return n;
}

/** The lowest descriptor number a process has free (what its next open gets). */
async function lowestFree(pid: number): Promise<number> {
  const used = new Set(
    (await Array.fromAsync(Deno.readDir(`/proc/${pid}/fd`))).map((e) => Number(e.name)),
  );
  let n = 0;
  while (used.has(n)) n++;
  return n;
}

/** User + system CPU time of a process, in clock ticks (1/100 s). */
async function cpuTicks(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // Fields after the command name (which is in parentheses): state is field 3.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime (14) + stime (15)
}

async function setSoftLimit(pid: number, n: number): Promise<void> {
  const r = await run("prlimit", [`--pid=${pid}`, `--nofile=${n}:`]);
  assert.equal(r.code, 0, r.stderr);
}

function tlsExtra(dir: string): Promise<string> {
  return tlsCertConfig(dir);
}

const count = (text: string, re: RegExp) => (text.match(new RegExp(re, "g")) ?? []).length;

/**
 * Exhausts the daemon's descriptors, checks it idles and logs once, frees
 * them and checks a new client is served.
 */
async function exhaustAndRecover(d: Daemon, swaksArgs: string[]): Promise<void> {
  // A session under way before the descriptors run out.
  const session = await RawClient.connect(d.port);
  assert.match(await session.reply(), /^220 /);
  await session.send(
    "EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n",
  );
  assert.match(await session.reply(), /^250-/);
  assert.match(await session.reply(), /^250 2\.1\.0/);
  assert.match(await session.reply(), /^250 2\.1\.5/);
  const before = await openDescriptors(d.pid);
  const limit = before + 6;
  await setSoftLimit(d.pid, limit);
  const clients: Deno.TcpConn[] = [];
  try {
    // More clients than descriptors left: the rest wait in the listen queue.
    for (let i = 0; i < 30; i++) {
      clients.push(await Deno.connect({ hostname: "127.0.0.1", port: d.port }));
    }
    // Every descriptor in use: accept now fails with EMFILE.
    const end = Date.now() + 5000;
    while ((await openDescriptors(d.pid)) < limit - 1 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(
      (await openDescriptors(d.pid)) >= limit - 1,
      "the server never used its descriptors up",
    );
    await new Promise((r) => setTimeout(r, 300));
    const t0 = await cpuTicks(d.pid);
    const started = performance.now();
    await new Promise((r) => setTimeout(r, 1000));
    const ticks = (await cpuTicks(d.pid)) - t0;
    const elapsed = (performance.now() - started) / 1000;
    // A loop that retries accept at once uses a whole core (about 100
    // ticks a second); backing off uses almost nothing.
    assert.ok(
      ticks / elapsed < 25,
      `the server used ${ticks} ticks of CPU in ${elapsed.toFixed(2)} s while out of descriptors`,
    );
    // The queue file needs a descriptor: an idle connection gives its own
    // (250, and the log says so), or, when none has been silent long
    // enough, 451: never a crash or a hang.
    await session.send("DATA\r\n");
    let reply = await session.reply();
    if (reply.startsWith("354")) {
      await session.send("Subject: test\r\n\r\nbody\r\n.\r\n");
      reply = await session.reply();
    }
    assert.match(reply, /^(250 2\.0\.0|451 4\.3\.0) /);
    if (reply.startsWith("250")) {
      await d.waitForLog(/closed the idle session of \[127\.0\.0\.1\] \(silent \d+ ms\)/);
    }
    await session.send("QUIT\r\n");
    assert.match(await session.reply(), /^221 /);
  } finally {
    session.close();
    for (const c of clients) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  }
  // Served again without any help, once the clients' descriptors are freed.
  let r = { code: -1, stdout: "", stderr: "" };
  for (let i = 0; i < 10 && r.code !== 0; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 500));
    r = await swaks(d.port, ["--to", "u@example.com", "--timeout", "5", ...swaksArgs], {
      timeoutMs: 20000,
    });
  }
  assert.equal(r.code, 0, r.stdout + r.stderr + d.log());
  assert.match(r.stdout, /250 2\.0\.0 Ok: queued as/);
  assert.ok((await queueFiles(d.queueDir)).length >= 1, "no queue file");
  // At the limit accept(2) fails even with nothing to accept, so the burst
  // may outlast the last client: it ends with an accept that works (and
  // none failing for a second after it).
  await new Promise((r) => setTimeout(r, 1200));
  const late = await RawClient.connect(d.port);
  try {
    assert.match(await late.reply(), /^220 /);
  } finally {
    late.close();
  }
  await d.waitForLog("accept: too many open files; backing off");
  await d.waitForLog(/accept: recovered after \d+ ms, \d+ attempts/);
  const log = d.log();
  assert.equal(count(log, /accept: too many open files; backing off/), 1, log);
  assert.equal(count(log, /accept: recovered after/), 1, log);
}

Deno.test({
  name: "EMFILE on the plain listener: no spinning, one warning, served again afterwards",
  ...opts,
  fn: async () => {
    const d = await startDaemon("smtpd_listen_threads = 1\nsmtpd_peername_lookup = false");
    try {
      await exhaustAndRecover(d, []);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "out of descriptors with no idle session to close, a message still gets its queue file",
  ...opts,
  fn: async () => {
    // Every descriptor in use and every session busy (in a mail
    // transaction): no idle connection can give its own for the queue
    // file. (A flood that reconnects does the same: the accept loop takes
    // every descriptor an idle connection gives back.) Before, the
    // message got 451 4.3.0; now the descriptor the store holds back
    // serves it, and is taken again for the next message.
    const d = await startDaemon(
      `smtpd_listen_threads = 1\nsmtpd_peername_lookup = false\n` +
        `mydestination = ["mx.test.example"]`,
    );
    const sessions: RawClient[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const c = await RawClient.connect(d.port);
        sessions.push(c);
        assert.match(await c.reply(), /^220 /);
        await c.send("HELO client.example\r\n");
        assert.match(await c.reply(), /^250 /);
        await c.send("MAIL FROM:<a@example.org>\r\n");
        assert.match(await c.reply(), /^250 2\.1\.0/);
      }
      const [first] = sessions;
      // The pool's refill, started by the daemon, has ended (its files are
      // names, not descriptors): the descriptors are steady. The limit is
      // the lowest free descriptor number: no new one can be had.
      let before = await lowestFree(d.pid);
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const now = await lowestFree(d.pid);
        if (now === before) break;
        before = now;
      }
      await setSoftLimit(d.pid, before);
      // One message, then another: the reserve was taken again.
      for (let round = 1; round <= 2; round++) {
        await first!.send("RCPT TO:<postmaster@mx.test.example>\r\nDATA\r\n");
        assert.match(await first!.reply(), /^250 2\.1\.5/);
        assert.match(await first!.reply(), /^354 /);
        await first!.send(`Subject: round ${round}\r\n\r\nbody\r\n.\r\n`);
        const queued = await first!.reply();
        assert.match(queued, /^250 2\.0\.0 Ok: queued as/, `round ${round}: ${queued}`);
        await first!.send("MAIL FROM:<a@example.org>\r\n");
        assert.match(await first!.reply(), /^250 2\.1\.0/);
      }
      // Three at once: each commit waits for the one before it to give it back.
      for (const c of sessions) {
        await c.send("RCPT TO:<postmaster@mx.test.example>\r\nDATA\r\n");
        assert.match(await c.reply(), /^250 2\.1\.5/);
        assert.match(await c.reply(), /^354 /);
      }
      await Promise.all(sessions.map((c) => c.send("Subject: at once\r\n\r\nbody\r\n.\r\n")));
      for (const c of sessions) {
        const queued = await c.reply();
        assert.match(queued, /^250 2\.0\.0 Ok: queued as/, `at once: ${queued}`);
      }
      assert.equal((await queueFiles(d.queueDir)).length, 5);
    } finally {
      for (const c of sessions) c.close();
      await d.stop();
    }
  },
});

Deno.test({
  name: "EMFILE on the STARTTLS listener: no spinning, one warning, served (with TLS) afterwards",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("fds");
    const d = await startDaemon(`smtpd_peername_lookup = false\n${await tlsExtra(dir)}`, { dir });
    try {
      await exhaustAndRecover(d, ["--tls"]);
      await d.waitForLog(/Anonymous TLS connection established from unknown\[127\.0\.0\.1\]/);
    } finally {
      await d.stop();
    }
  },
});

/**
 * Python: one STARTTLS session (smtplib) and one wrapper-mode session
 * (SMTP_SSL), each with NOOP; prints "starttls ok" / "wrapper ok" or the failure.
 * Arguments: the plain port, the wrapper-mode port.
 */
const TLS_CLIENTS = `
import smtplib, ssl, sys
port, wport = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
try:
    with smtplib.SMTP("127.0.0.1", port, timeout=8) as c:
        c.ehlo(); c.starttls(context=ctx); c.ehlo(); print("starttls ok", c.noop()[0])
except Exception as e:
    print("starttls fail %r" % e)
try:
    with smtplib.SMTP_SSL("127.0.0.1", wport, timeout=8, context=ctx) as c:
        print("wrapper ok", c.noop()[0])
except Exception as e:
    print("wrapper fail %r" % e)
`;

Deno.test({
  name:
    "TLS engine out of descriptors: a new STARTTLS or wrapper-mode client is served by closing an idle handshake; nothing leaks",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("fds-engine");
    const wport = freePort();
    const tls = await tlsCertConfig(dir, "may", { engine: true });
    const d = await startDaemon(
      `smtpd_listen_threads = 1\nsmtpd_tls_wrappermode_listen = ["127.0.0.1:${wport}"]\n${tls}`,
      { dir },
    );
    const stalled: Deno.TcpConn[] = [];
    try {
      const before = await steadyDescriptors(d.pid);
      // Wrapper-mode clients that send the first bytes of a ClientHello and
      // nothing more: three descriptors each (the client's, the relay, the
      // engine's accept), held until the handshake's timeout.
      for (let i = 0; i < 6; i++) {
        const c = await Deno.connect({ hostname: "127.0.0.1", port: wport });
        await c.write(new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
        stalled.push(c);
      }
      const end = Date.now() + 5000;
      while ((await openDescriptors(d.pid)) < before + 18 && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const held = await openDescriptors(d.pid);
      assert.ok(held >= before + 18, `${held - before} descriptors for 6 handshakes`);
      // One descriptor left: a new client is accepted, its relay is not.
      await setSoftLimit(d.pid, held + 1);
      await new Promise((r) => setTimeout(r, 400));
      const r = await run("python3", ["-c", TLS_CLIENTS, String(d.port), String(wport)], {
        timeoutMs: 30000,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split("\n"), ["starttls ok 250", "wrapper ok 250"], d.log());
      await d.waitForLog(
        /closed the idle session of \[127\.0\.0\.1\] \(silent \d+ ms\) to make room: too many open files/,
      );
      // Once the stalled clients leave, every descriptor comes back.
      for (const c of stalled.splice(0)) c.close();
      const back = Date.now() + 5000;
      while ((await openDescriptors(d.pid)) > before && Date.now() < back) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok((await openDescriptors(d.pid)) <= before, "descriptors leaked");
    } finally {
      for (const c of stalled) c.close();
      await d.stop();
    }
  },
});
