/**
 * Stand-alone mode (`smtpd stdin`) and the command line, end to end with
 * the production flags.
 */

import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { join } from "node:path";
import {
  allEntries,
  canTrace,
  CLOSE_NOTIFY,
  freePort,
  INJECTION,
  makeWorkDir,
  postcat,
  queueFiles,
  RawClient,
  ROOT,
  run,
  runStdin,
  smtpdArgs,
  swaks,
  tlsCertConfig,
  UP_TO_STARTTLS,
  waitFor,
  writeConfig,
} from "./_harness.ts";
import { flagsForArgs } from "../scripts/permissions.ts";
import { DOVECOT_USERS, hasDovecot, startDovecot, swaksAuth } from "./_dovecot.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const SESSION = [
  "HELO local",
  "MAIL FROM:<me@local.example>",
  "RCPT TO:<you@example.com>",
  "DATA",
  "Subject: from stdin",
  "",
  "stand-alone body",
  ".",
  "QUIT",
  "",
].join("\r\n");

/**
 * A UDP syslog server on loopback (under inetd and xinetd the session's
 * only log): the datagrams it got, its port, and how to close it.
 */
async function udpSyslog(): Promise<{ got: string[]; port: number; close: () => void }> {
  const got: string[] = [];
  const server = createSocket("udp4");
  server.on("message", (m) => got.push(m.toString()));
  await new Promise<void>((r) => server.bind(0, "127.0.0.1", r));
  return { got, port: server.address().port, close: () => server.close() };
}

Deno.test({
  name: "stdin mode leaves a postcat-readable file in maildrop/ (mode 0744)",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin");
    const { configFile, queueDir } = await writeConfig(work);
    const r = await runStdin(configFile, SESSION);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^220 mx\.test\.example ESMTP/);
    assert.match(r.stdout, /250 2\.0\.0 Ok: queued as \w+\r\n221 2\.0\.0 Bye\r\n$/);
    const files = await queueFiles(queueDir, "maildrop");
    assert.equal(files.length, 1);
    assert.equal(((await Deno.stat(files[0] as string)).mode ?? 0) & 0o777, 0o744);
    const pc = await postcat(files[0] as string);
    assert.match(pc, /^sender: me@local\.example$/m);
    assert.match(pc, /^recipient: you@example\.com$/m);
    assert.match(pc, /^stand-alone body$/m);
    assert.match(pc, /^named_attribute: rewrite_context=local$/m);
    assert.match(pc, /^From: me@local\.example$/m, "From: added for a local submission");
    assert.match(r.stderr, /connect from localhost\[127\.0\.0\.1\]/);
  },
});

Deno.test({
  name: "stdin mode: the From: added for a local submission quotes the sender's local part",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin");
    const { configFile, queueDir } = await writeConfig(work);
    const r = await runStdin(
      configFile,
      'HELO local\r\nMAIL FROM:<"a,b@evil.example,c"@local.example>\r\n' +
        "RCPT TO:<you@example.com>\r\nDATA\r\nSubject: quoted\r\n\r\nbody\r\n.\r\nQUIT\r\n",
    );
    assert.equal(r.code, 0, r.stderr);
    const files = await queueFiles(queueDir, "maildrop");
    assert.equal(files.length, 1, r.stdout);
    const pc = await postcat(files[0] as string);
    // Unquoted, it would be a From: of three addresses, one at evil.example.
    assert.match(pc, /^From: "a,b@evil\.example,c"@local\.example$/m);
    assert.match(pc, /^sender: a,b@evil\.example,c@local\.example$/m);
  },
});

Deno.test({
  name: "Received: quotes the recipient of its for clause (no forged date after a ;)",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin");
    const { configFile, queueDir } = await writeConfig(work, 'mydestination = ["example.com"]');
    const r = await runStdin(
      configFile,
      "HELO far\r\nMAIL FROM:<a@far.example>\r\n" +
        'RCPT TO:<"x>; Mon, 1 Jan 2001 00:00:00 +0000"@example.com>\r\n' +
        "DATA\r\nSubject: quoted\r\n\r\nbody\r\n.\r\nQUIT\r\n",
      { REMOTE_ADDR: "192.0.2.7", REMOTE_PORT: "40000" },
    );
    assert.equal(r.code, 0, r.stderr);
    const files = await queueFiles(queueDir, "maildrop");
    assert.equal(files.length, 1, r.stdout);
    const pc = await postcat(files[0] as string);
    assert.match(pc, /^\tfor <"x>; Mon, 1 Jan 2001 00:00:00 \+0000"@example\.com>; \w{3}, /m);
  },
});

Deno.test({
  name: "stdin mode sends its last log lines to syslog_server before it ends (the disconnect line)",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin");
    const { got, port: syslogPort, close: closeSyslog } = await udpSyslog();
    try {
      const { configFile } = await writeConfig(
        work,
        `syslog_server = "udp://127.0.0.1:${syslogPort}"`,
      );
      for (let i = 0; i < 3; i++) {
        const r = await runStdin(configFile, SESSION);
        assert.equal(r.code, 0, r.stderr);
      }
      // The processes have ended: what they sent is in this socket's buffer,
      // read as this event loop gets to it. Until the last disconnect line
      // is (bounded); then each process's lines are counted.
      const disconnects = () =>
        got.join("\n").match(/: disconnect from localhost\[127\.0\.0\.1\] helo=1 /g)?.length ?? 0;
      await waitFor("three disconnect lines", () => Promise.resolve(disconnects() >= 3), 10_000)
        .catch(() => {}); // the count below says what came
      const lines = got.join("\n");
      // Each of the three processes' lines, its last ones too (they were lost at exit).
      assert.equal(lines.match(/: connect from localhost\[127\.0\.0\.1\]/g)?.length, 3, lines);
      assert.equal(lines.match(/: from=<me@local\.example>, size=/g)?.length, 3, lines);
      assert.equal(
        lines.match(/: disconnect from localhost\[127\.0\.0\.1\] helo=1 /g)?.length,
        3,
        lines,
      );
    } finally {
      closeSyslog();
    }
  },
});

Deno.test({
  name: "stdin mode with REMOTE_ADDR gets the network policy (relay refused)",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin");
    const { configFile, queueDir } = await writeConfig(work, 'mydestination = ["example.com"]');
    const r = await runStdin(
      configFile,
      "HELO far\r\nMAIL FROM:<a@far.example>\r\nRCPT TO:<x@elsewhere.example>\r\nRCPT TO:<y@example.com>\r\nQUIT\r\n",
      { REMOTE_ADDR: "192.0.2.7", REMOTE_PORT: "40000" },
    );
    assert.match(
      r.stdout,
      /454 4\.7\.1 <x@elsewhere\.example>: Relay access denied\r\n250 2\.1\.5 Ok/,
    );
    assert.match(r.stderr, /connect from unknown\[192\.0\.2\.7\]/);
    assert.equal((await queueFiles(queueDir, "maildrop")).length, 0);
  },
});

const hasPrlimit = (await run("sh", ["-c", "command -v prlimit"])).code === 0;

Deno.test({
  name:
    "stdin mode: a message past the file size limit (ulimit -f) gets 451 and leaves no half-written file",
  ignore: !hasPrlimit,
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin");
    const { configFile, queueDir } = await writeConfig(work);
    const child = new Deno.Command(Deno.execPath(), {
      args: await smtpdArgs(["stdin", "-c", configFile]),
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const killer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 30000);
    const stderrText = new Response(child.stderr).text();
    try {
      const out = child.stdout.getReader();
      let text = "";
      while (!text.includes("\r\n")) {
        const { value, done } = await out.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      assert.match(text, /^220 /);
      // The limit comes once the process runs: Deno's own caches stay out of it.
      const limited = await run("prlimit", [`--pid=${child.pid}`, "--fsize=600000"]);
      assert.equal(limited.code, 0, limited.stderr);
      const w = child.stdin.getWriter();
      await w.write(
        new TextEncoder().encode(
          "EHLO big\r\nMAIL FROM:<a@local.example>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n" +
            "Subject: too big for the limit\r\n\r\n" + `${"x".repeat(76)}\r\n`.repeat(13000) +
            ".\r\nQUIT\r\n",
        ),
      ).catch(() => {});
      await w.close().catch(() => {});
      for (;;) {
        const { value, done } = await out.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      const status = await child.status;
      const log = await stderrText;
      assert.equal(status.signal, null, `killed by ${status.signal}: ${log}`);
      assert.equal(status.code, 0, log);
      assert.match(text, /354 [^\r]*\r\n451 4\.3\.0 Error: queue file write error\r\n221 /);
      // Nothing half-written: every file there is complete (a notice to the postmaster).
      for (const name of await allEntries(queueDir, "maildrop")) {
        const st = await Deno.stat(join(queueDir, "maildrop", name));
        assert.equal((st.mode ?? 0) & 0o777, 0o744, `${name} left unfinished`);
        assert.ok(st.size < 100_000, `${name}: ${st.size} bytes`);
      }
    } finally {
      clearTimeout(killer);
      await stderrText.catch(() => {});
    }
  },
});

/**
 * Python: runs the command in argv with stdout on a pipe in non-blocking
 * mode (as a launcher may hand it over), sends 1,000 EHLO and QUIT at once,
 * reads nothing for a second (the pipe fills), then reads to the end and
 * prints how many 250 replies came, the last line, and the exit status.
 */
const NONBLOCKING_STDOUT = `
import os, subprocess, sys, time
r, w = os.pipe()
os.set_blocking(w, False)
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=w, stderr=subprocess.DEVNULL)
os.close(w)
p.stdin.write(b"EHLO nonblocking.example\\r\\n" * 1000 + b"QUIT\\r\\n")
p.stdin.close()
time.sleep(1)
out = b""
while True:
    d = os.read(r, 65536)
    if not d:
        break
    out += d
lines = out.decode().split("\\r\\n")
print("ehlo:", sum(1 for l in lines if l.startswith("250 ")))
print("last:", lines[-2])
print("status:", p.wait(30))
`;

Deno.test({
  name: "stdin mode with stdout in non-blocking mode waits for a full pipe instead of failing",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin");
    const { configFile, queueDir } = await writeConfig(work);
    const r = await run("python3", [
      "-c",
      NONBLOCKING_STDOUT,
      Deno.execPath(),
      ...await smtpdArgs(["stdin", "-c", configFile]),
    ], { timeoutMs: 40000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ehlo: 1000$/m, r.stdout);
    assert.match(r.stdout, /^last: 221 2\.0\.0 Bye$/m, r.stdout);
    assert.match(r.stdout, /^status: 0$/m, r.stdout);
    // No software error, so no notice to the postmaster either.
    assert.deepEqual(await allEntries(queueDir, "maildrop"), []);
  },
});

/**
 * Python: how much CPU (utime + stime, /proc/PID/stat) the program in argv
 * uses while its client is silent for argv[1] seconds after the greeting,
 * with stdin in non-blocking mode: first a socket (an event loop's accepted
 * connection handed over as descriptors 0 and 1, peer in REMOTE_ADDR), then
 * a pipe (a local submission), then a terminal. The socket's client then
 * says EHLO and QUIT; the pipe's hangs up, which must end its session at
 * once; the terminal's says HELO and QUIT. Last, a session on a terminal in
 * blocking mode: the mode the terminal is left in (shared with the shell).
 */
const SILENT_NONBLOCKING_STDIN = `
import os, pty, socket, subprocess, sys, time
tck = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tck
silent, cmd = float(sys.argv[1]), sys.argv[2:]
a, b = socket.socketpair()
b.setblocking(False)
env = dict(os.environ, REMOTE_ADDR="127.0.0.1", REMOTE_PORT="40000")
p = subprocess.Popen(cmd, stdin=b, stdout=b, stderr=subprocess.DEVNULL, env=env)
b.close()
f = a.makefile("rb")
print("socket greeting:", f.readline().decode().strip(), flush=True)
c = cpu(p.pid)
time.sleep(silent)
print("socket cpu: %.3f" % (cpu(p.pid) - c), flush=True)
a.sendall(b"EHLO silent.example\\r\\n")
line = f.readline()
while line[3:4] == b"-":
    line = f.readline()
print("socket ehlo:", line.decode().strip())
a.sendall(b"QUIT\\r\\n")
print("socket quit:", f.readline().decode().strip())
print("socket status:", p.wait(30), flush=True)
r0, w0 = os.pipe()
r1, w1 = os.pipe()
os.set_blocking(r0, False)
p = subprocess.Popen(cmd, stdin=r0, stdout=w1, stderr=subprocess.DEVNULL)
os.close(r0)
os.close(w1)
f = os.fdopen(r1, "rb")
print("pipe greeting:", f.readline().decode().strip(), flush=True)
c = cpu(p.pid)
time.sleep(silent)
print("pipe cpu: %.3f" % (cpu(p.pid) - c), flush=True)
os.close(w0)
t = time.time()
status = p.wait(30)
print("pipe hang-up: status %d after %.1f s" % (status, time.time() - t))
for blocking in (False, True):
    m, s = pty.openpty()
    os.set_blocking(s, blocking)
    r1, w1 = os.pipe()
    p = subprocess.Popen(cmd, stdin=s, stdout=w1, stderr=subprocess.DEVNULL)
    os.close(w1)
    f = os.fdopen(r1, "rb")
    print("tty greeting:", f.readline().decode().strip(), flush=True)
    if not blocking:
        c = cpu(p.pid)
        time.sleep(silent)
        print("tty cpu: %.3f" % (cpu(p.pid) - c), flush=True)
    os.write(m, b"HELO tty.example\\n")
    print("tty helo:", f.readline().decode().strip())
    os.write(m, b"QUIT\\n")
    print("tty quit:", f.readline().decode().strip())
    print("tty status:", p.wait(30))
    print("tty blocking %s kept: %s" % (blocking, os.get_blocking(s) == blocking), flush=True)
`;

/** Seconds the client of SILENT_NONBLOCKING_STDIN stays silent. */
const SILENT_SECONDS = 3;

Deno.test({
  name:
    "stdin mode on a non-blocking socket, pipe or terminal: a silent client costs next to no CPU",
  ...opts,
  fn: async () => {
    // Deno.stdin retries a read that fails with EAGAIN at once, so a silent
    // client used to cost a whole CPU (2 to 3 s of CPU time in these 3 s).
    // Waiting for readability costs a few milliseconds; the bound leaves room
    // for a loaded host.
    const work = await makeWorkDir("stdin");
    const { configFile } = await writeConfig(work);
    const r = await run("python3", [
      "-c",
      SILENT_NONBLOCKING_STDIN,
      String(SILENT_SECONDS),
      Deno.execPath(),
      ...await smtpdArgs(["stdin", "-c", configFile]),
    ], { timeoutMs: 90000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const spent = ["socket", "pipe", "tty"].map((kind) => {
      assert.match(r.stdout, new RegExp(`^${kind} greeting: 220 mx\\.test\\.example ESMTP`, "m"));
      return [
        kind,
        Number(new RegExp(`^${kind} cpu: ([0-9.]+)$`, "m").exec(r.stdout)?.[1]),
      ] as const;
    });
    assert.ok(
      spent.every(([, cpu]) => cpu < 0.3),
      `CPU time in ${SILENT_SECONDS} s of silence: ${spent.map((s) => s.join(" ")).join(", ")} s`,
    );
    assert.match(r.stdout, /^socket ehlo: 250 CHUNKING$/m, r.stdout);
    assert.match(r.stdout, /^socket quit: 221 2\.0\.0 Bye$/m, r.stdout);
    assert.match(r.stdout, /^socket status: 0$/m, r.stdout);
    // EOF ends the session at once, not at smtpd_timeout (300 s).
    const hangUp = /^pipe hang-up: status 0 after ([0-9.]+) s$/m.exec(r.stdout);
    assert.ok(hangUp && Number(hangUp[1]) < 10, r.stdout);
    assert.equal(r.stdout.match(/^tty helo: 250 mx\.test\.example$/gm)?.length, 2, r.stdout);
    assert.equal(r.stdout.match(/^tty quit: 221 2\.0\.0 Bye$/gm)?.length, 2, r.stdout);
    assert.equal(r.stdout.match(/^tty status: 0$/gm)?.length, 2, r.stdout);
    // node:tty reads the terminal through its own open file: the shell's keeps its mode.
    assert.match(r.stdout, /^tty blocking False kept: True$/m, r.stdout);
    assert.match(r.stdout, /^tty blocking True kept: True$/m, r.stdout);
  },
});

/**
 * Python: a session on a socket in non-blocking mode (as above) that sends
 * a message of about 3 MB in one go, then stays silent: prints the reply to
 * the message, the reply that ends the silence and after how long, and the
 * exit status. The message's body, as postcat shows it, goes to argv[1].
 */
const BIG_THEN_SILENT = `
import os, random, socket, subprocess, sys, time
random.seed(7)
lines = ["".join(random.choice("abcdefghij .") for _ in range(random.randint(0, 900)))
         for _ in range(7000)]
lines = ["." + l if i % 97 == 0 else l for i, l in enumerate(lines)]
open(sys.argv[1], "w").write("\\n".join(lines) + "\\n")
a, b = socket.socketpair()
b.setblocking(False)
env = dict(os.environ, REMOTE_ADDR="127.0.0.1", REMOTE_PORT="40000")
p = subprocess.Popen(sys.argv[2:], stdin=b, stdout=b, stderr=subprocess.DEVNULL, env=env)
b.close()
f = a.makefile("rb")
f.readline()
for c in ["EHLO big.example", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>", "DATA"]:
    a.sendall(c.encode() + b"\\r\\n")
    line = f.readline()
    while line[3:4] == b"-":
        line = f.readline()
stuffed = ["." + l if l.startswith(".") else l for l in lines]
a.sendall(("Subject: big\\r\\n\\r\\n" + "\\r\\n".join(stuffed) + "\\r\\n.\\r\\n").encode())
print("data:", f.readline().decode().strip(), flush=True)
t = time.time()
print("silence:", f.readline().decode().strip(), "after %.1f s" % (time.time() - t))
print("status:", p.wait(30))
`;

Deno.test({
  name:
    "stdin mode on a non-blocking socket: a 3 MB message arrives intact, smtpd_timeout still ends the silence",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin");
    const { configFile, queueDir } = await writeConfig(work, 'smtpd_timeout = "2s"');
    const bodyFile = join(work, "body.txt");
    const r = await run("python3", [
      "-c",
      BIG_THEN_SILENT,
      bodyFile,
      Deno.execPath(),
      ...await smtpdArgs(["stdin", "-c", configFile]),
    ], { timeoutMs: 90000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^data: 250 2\.0\.0 Ok: queued as \w+$/m, r.stdout);
    const silence =
      /^silence: 421 4\.4\.2 mx\.test\.example Error: timeout exceeded after ([0-9.]+) s$/m
        .exec(r.stdout);
    assert.ok(silence && Number(silence[1]) >= 1.5 && Number(silence[1]) < 20, r.stdout);
    assert.match(r.stdout, /^status: 0$/m, r.stdout);
    const [file] = await queueFiles(queueDir, "maildrop");
    const pc = await postcat(file as string);
    const body = pc.slice(pc.indexOf("\n\n", pc.indexOf("Subject: big\n")) + 2);
    const expected = await Deno.readTextFile(bodyFile);
    assert.ok(body.startsWith(expected), "the body as postcat shows it differs from the one sent");
    assert.match(body.slice(expected.length), /^\*\*\* HEADER EXTRACTED/);
  },
});

Deno.test({
  name:
    "bare LF in DATA: normalized by default; under reject refused from a network client, normalized for a local submission",
  ...opts,
  fn: async () => {
    const body = "HELO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n" +
      "Subject: lf\r\n\r\nline one\nline two\r\n.\r\nQUIT\r\n";
    const work = await makeWorkDir("stdin");
    const normal = await writeConfig(work);
    const r1 = await runStdin(normal.configFile, body);
    assert.match(r1.stdout, /250 2\.0\.0 Ok: queued as/);
    const [f] = await queueFiles(normal.queueDir, "maildrop");
    assert.match(await postcat(f as string), /^line one\nline two$/m);

    const work2 = await makeWorkDir("stdin");
    const strict = await writeConfig(
      work2,
      'smtpd_forbid_bare_newline = "reject"\nrelay_domains = ["example.com"]',
    );
    // A network client outside mynetworks (the exclusions' default).
    const r2 = await runStdin(strict.configFile, body, {
      REMOTE_ADDR: "192.0.2.7",
      REMOTE_PORT: "40000",
    });
    assert.match(r2.stdout, /550 5\.5\.2 mx\.test\.example Error: bare <LF> received\r\n221/);
    assert.equal((await queueFiles(strict.queueDir, "maildrop")).length, 0);
    // A local submission (Postfix's stand-alone mode) is never refused for it.
    const r3 = await runStdin(strict.configFile, body);
    assert.match(r3.stdout, /250 2\.0\.0 Ok: queued as/);
    const [g] = await queueFiles(strict.queueDir, "maildrop");
    assert.match(await postcat(g as string), /^line one\nline two$/m);

    // "yes", Postfix's setting from the 2023 backports, is normalize (its
    // migration aid): a main.cf that says so starts and normalizes.
    const work3 = await makeWorkDir("stdin");
    const yes = await writeConfig(
      work3,
      'smtpd_forbid_bare_newline = "yes"\nrelay_domains = ["example.com"]',
    );
    const r4 = await runStdin(yes.configFile, body, {
      REMOTE_ADDR: "192.0.2.7",
      REMOTE_PORT: "40000",
    });
    assert.match(r4.stdout, /250 2\.0\.0 Ok: queued as/, r4.stdout + r4.stderr);
    const [h] = await queueFiles(yes.queueDir, "maildrop");
    assert.match(await postcat(h as string), /^line one\nline two$/m);
  },
});

Deno.test({
  name:
    "bare LF ending a command under reject: a network client gets 550 and the session ends; a local submission is answered",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin");
    const strict = await writeConfig(work, 'smtpd_forbid_bare_newline = "reject"');
    const session = "EHLO client.example\nNOOP\r\nQUIT\r\n";
    const net = await runStdin(strict.configFile, session, {
      REMOTE_ADDR: "192.0.2.7",
      REMOTE_PORT: "40000",
    });
    assert.equal(
      net.stdout,
      "220 mx.test.example ESMTP deno-smtpd\r\n" +
        "550 5.5.2 mx.test.example Error: bare <LF> received\r\n",
    );
    assert.match(
      net.stderr,
      /NOQUEUE: reject: CONNECT from unknown\[192\.0\.2\.7\]: bare <LF> received; proto=SMTP\n/,
    );
    const local = await runStdin(strict.configFile, session);
    assert.match(local.stdout, /\r\n250 2\.0\.0 Ok\r\n221 /);
  },
});

Deno.test({
  name: "unknown parameter on line 7 stops the start with file and line",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("config");
    const file = join(work, "bad.toml").slice(ROOT.length);
    await Deno.writeTextFile(
      join(ROOT, file),
      [
        "# a config",
        'queue_directory = "var/spool"',
        "",
        'myhostname = "mx.example.com"',
        "message_size_limit = 20000000",
        "# the next line is misspelled",
        'smtpd_baner = "hello"',
        "",
      ].join("\n"),
    );
    const r = await run(Deno.execPath(), await smtpdArgs(["serve", "-c", file]));
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      new RegExp(
        `${
          file.replaceAll(".", "\\.")
        }:7: unknown parameter "smtpd_baner" \\(did you mean "smtpd_banner"\\?\\)`,
      ),
    );
  },
});

Deno.test({
  name: "wrong type and out-of-range values stop the start with file and line",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("config");
    const file = join(work, "bad.toml").slice(ROOT.length);
    await Deno.writeTextFile(
      join(ROOT, file),
      'queue_directory = "var/spool"\nsmtpd_recipient_limit = "many"\n',
    );
    const r = await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", file]));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.toml:2: smtpd_recipient_limit: expected an integer/);
    await Deno.writeTextFile(join(ROOT, file), "\n\nline_length_limit = 10\n");
    const r2 = await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", file]));
    assert.equal(r2.code, 1);
    assert.match(
      r2.stderr,
      /bad\.toml:3: line_length_limit: value 10 is out of range: must be at least 80/,
    );
  },
});

Deno.test({
  name: "config prints effective values; -n only explicit ones; -o overrides",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("config");
    const { configFile } = await writeConfig(work);
    const all = await run(Deno.execPath(), await smtpdArgs(["config", "-c", configFile]));
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /^message_size_limit = 10240000$/m);
    assert.match(all.stdout, /^smtpd_banner = "mx\.test\.example ESMTP deno-smtpd"$/m);
    const n = await run(
      Deno.execPath(),
      await smtpdArgs([
        "config",
        "-n",
        "-c",
        configFile,
        "-o",
        "smtpd_timeout=5m",
        "-o",
        "smtpd_helo_required=yes",
      ]),
    );
    assert.match(n.stdout, /^smtpd_timeout = 300$/m);
    assert.match(n.stdout, /^smtpd_helo_required = true$/m);
    assert.doesNotMatch(n.stdout, /^message_size_limit/m);
    const bad = await run(
      Deno.execPath(),
      await smtpdArgs(["config", "-c", configFile, "-o", "nope=1"]),
    );
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /-o nope=1: unknown parameter "nope"/);
  },
});

Deno.test({
  name:
    "an error about a value -o set names the override, not the file's line it replaced; smtpd_listen_threads over 8 refused",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("config-o-error");
    const { configFile } = await writeConfig(work, `smtpd_tls_security_level = "none"`);
    // Found after loading (stand-alone mode cannot run TLS): the file says "none".
    const tls = await run(
      Deno.execPath(),
      await smtpdArgs(["stdin", "-c", configFile, "-o", "smtpd_tls_security_level=encrypt"]),
      { stdin: "" },
    );
    assert.equal(tls.code, 1, tls.stderr);
    assert.match(
      tls.stderr,
      /^smtpd: fatal: -o smtpd_tls_security_level=encrypt: smtpd_tls_security_level = "encrypt" cannot be met in stand-alone mode/m,
    );
    assert.doesNotMatch(tls.stderr, /smtpd\.toml:\d+/);
    // In the file, the same problem names the file and line.
    await Deno.mkdir(join(work, "b"));
    const inFile = await writeConfig(join(work, "b"), `smtpd_tls_security_level = "encrypt"`);
    const fromFile = await run(
      Deno.execPath(),
      await smtpdArgs(["stdin", "-c", inFile.configFile]),
      { stdin: "" },
    );
    assert.equal(fromFile.code, 1, fromFile.stderr);
    assert.match(fromFile.stderr, /smtpd\.toml:\d+: smtpd_tls_security_level = "encrypt" cannot/);
    const threads = await run(
      Deno.execPath(),
      await smtpdArgs(["config", "--check", "-c", configFile, "-o", "smtpd_listen_threads=9"]),
    );
    assert.equal(threads.code, 1, threads.stderr);
    assert.match(
      threads.stderr,
      /-o smtpd_listen_threads: value 9 is out of range: must be at most 8/,
    );
  },
});

Deno.test({
  name: "config and config -n print restriction class definitions: the output loads again",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("config-classes");
    const { configFile } = await writeConfig(
      work,
      `smtpd_restriction_classes = ["strict"]\nstrict = ["reject_unauth_pipelining", "permit"]\n` +
        `smtpd_recipient_restrictions = ["permit_mynetworks", "reject_unauth_destination"]`,
    );
    for (const flags of [[], ["-n"]]) {
      const printed = await run(
        Deno.execPath(),
        await smtpdArgs(["config", ...flags, "-c", configFile]),
      );
      assert.equal(printed.code, 0, printed.stderr);
      assert.match(printed.stdout, /^strict = \["reject_unauth_pipelining", "permit"\]$/m);
      const again = join(work, `printed${flags.join("")}.toml`);
      await Deno.writeTextFile(again, printed.stdout);
      const check = await run(
        Deno.execPath(),
        await smtpdArgs(["config", "--check", "-c", again]),
      );
      assert.equal(check.code, 0, `config ${flags.join(" ")} printed:\n${check.stderr}`);
    }
  },
});

Deno.test({
  name: "--help works on every subcommand",
  ...opts,
  fn: async () => {
    for (const sub of [[], ["serve"], ["stdin"], ["config"]]) {
      const r = await run(Deno.execPath(), await smtpdArgs([...sub, "--help"]));
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^Usage: smtpd/);
    }
    // stdin's help names what a network client gets: a submission service needs it.
    const help = await run(Deno.execPath(), await smtpdArgs(["stdin", "--help"]));
    assert.match(help.stdout, /STARTTLS/);
    assert.match(help.stdout, /AUTH \(smtpd_sasl_auth_enable\)/);
    assert.match(help.stdout, /-o smtpd_tls_wrappermode=true/);
    const r = await run(Deno.execPath(), await smtpdArgs(["bogus"]));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^smtpd: unknown command "bogus"/);
    // No command at all is a usage error too, not a success.
    const none = await run(Deno.execPath(), await smtpdArgs([]));
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^smtpd: no command given\n\nUsage: smtpd COMMAND/);
    assert.equal(none.stdout, "");
  },
});

Deno.test({
  name: "started with the flags of another configuration, the program names each missing flag",
  ...opts,
  fn: async () => {
    // As a compiled binary carries the flags of the configuration it was
    // built for: this one runs with the flags of a loopback configuration.
    const work = await makeWorkDir("perm");
    const { configFile } = await writeConfig(work);
    const flags = await flagsForArgs(["-c", configFile], ROOT);
    // Then the operator moves the queue and listens on all addresses.
    const outside = `/tmp/smtpd-outside-queue-${Date.now()}`;
    const cfg = join(ROOT, configFile);
    await Deno.writeTextFile(
      cfg,
      `queue_directory = "${outside}"\nsmtpd_listen = ["0.0.0.0:2599"]\n`,
    );
    for (const sub of [["stdin"], ["serve"], ["config", "--check"]]) {
      const r = await run(Deno.execPath(), [
        "run",
        ...flags,
        "mod.ts",
        ...sub,
        "-c",
        cfg.slice(ROOT.length),
      ], { stdin: "QUIT\r\n" });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /needs permissions this program was not given/);
      assert.ok(r.stderr.includes(`--allow-write=${outside}  (queue_directory)`), r.stderr);
      assert.ok(r.stderr.includes(`--allow-net=0.0.0.0:2599  (smtpd_listen)`), r.stderr);
      assert.match(r.stderr, /run it with the flags it needs: deno task smtpd COMMAND -c \//);
      assert.doesNotMatch(r.stdout, /^220/m); // no session was served
    }
    assert.equal(await Deno.stat(outside).then(() => true, () => false), false);
  },
});

Deno.test({
  name:
    "the derived flags deny writes outside the queue directory and reads outside the named files",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("perm");
    const { configFile, queueDir } = await writeConfig(work);
    await Deno.mkdir(queueDir, { recursive: true });
    const flags = await flagsForArgs(["-c", configFile], ROOT);
    assert.ok(!flags.some((f) => /^--allow-(all|run|ffi)\b|^-A$/.test(f)), flags.join(" "));
    const probe = `
      const results = [];
      for (const [op, path] of JSON.parse(Deno.args[0])) {
        try {
          if (op === "write") Deno.writeTextFileSync(path, "x");
          else Deno.readTextFileSync(path);
          results.push("ok");
        } catch (e) {
          results.push(e.name);
        }
      }
      console.log(results.join(" "));`;
    const probeFile = join(work, "probe.ts");
    await Deno.writeTextFile(probeFile, probe);
    const ops = [
      ["write", join(queueDir, "probe")],
      ["write", join(work, "beside-the-queue")],
      ["write", "/tmp/smtpd-probe"],
      ["read", join(ROOT, configFile)],
      ["read", join(ROOT, "deno.json")],
      ["read", "/etc/hostname"],
    ];
    const r = await run(Deno.execPath(), ["run", ...flags, probeFile, JSON.stringify(ops)]);
    assert.equal(r.stdout.trim(), "ok NotCapable NotCapable ok NotCapable NotCapable", r.stderr);
  },
});

// The order of a commit's system calls, seen with strace: the mode that marks
// the file complete must reach the disk with the file's own fsync, and the
// directory entry of a file created during the session needs a directory
// fsync; both before the 250. (Before, a created file's chmod came after its
// fsync and was never synced: a crash could leave a file the recovery sets
// aside as a write in progress, after the client had its 250.)
Deno.test({
  name: "a created queue file is made complete, then fsynced, and its directory fsynced (strace)",
  ignore: !(await canTrace()),
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin-order");
    const { configFile, queueDir } = await writeConfig(work);
    const trace = join(work, "strace.out");
    const r = await run(
      "strace",
      [
        "-f",
        "-qq",
        "-y", // file descriptors shown with their paths (Deno duplicates them for async calls)
        "-e",
        "trace=openat,chmod,fchmod,fchmodat,fsync,fdatasync,write",
        "-o",
        trace,
        Deno.execPath(),
        ...await smtpdArgs(["stdin", "-c", configFile]),
      ],
      { stdin: SESSION },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /250 2\.0\.0 Ok: queued as/);
    const [file] = await queueFiles(queueDir, "maildrop");
    assert.ok(file, "one queue file");
    const id = file.slice(file.lastIndexOf("/") + 1);
    const lines = (await Deno.readTextFile(trace)).split("\n");
    // strace splits a call another thread interrupts into "<unfinished ...>" and "resumed".
    const at = (re: RegExp, from = 0) =>
      lines.findIndex((l, i) => i >= from && re.test(l) && !l.includes("resumed>"));
    const created = at(new RegExp(`openat\\(.*maildrop/${id}", O_WRONLY\\|O_CREAT\\|O_EXCL`));
    const chmod = at(new RegExp(`chmod(at)?\\(.*maildrop/${id}", 0744`));
    const fileSync = at(new RegExp(`fsync\\(\\d+<[^>]*maildrop/${id}>`));
    const dirSync = at(/fsync\(\d+<[^>]*maildrop>/);
    // In stand-alone mode the pipelined replies go out in one write, after the commit.
    const reply = at(/write\(1</, created);
    const where = JSON.stringify({ created, chmod, fileSync, dirSync, reply });
    assert.ok(created >= 0 && chmod >= 0 && fileSync >= 0 && dirSync >= 0 && reply >= 0, where);
    assert.ok(chmod < fileSync, "the mode is set before the file's fsync");
    assert.ok(fileSync < reply && dirSync < reply, "both fsyncs before the 250");
  },
});

/** A socket-passing launcher running `smtpd stdin` once per connection. */
interface Launcher {
  readonly port: number;
  /** The launcher's and the sessions' stderr so far. */
  log(): string;
  /** Waits (at most 5 s) until the log holds `count` matches of `want` (default 1). */
  waitForLog(want: RegExp, count?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a launcher and waits until it listens.
 * @param cmd the launcher
 * @param args its arguments
 * @param port the loopback port it listens on
 * @param ready text its stderr shows when listening, or "connect" to probe the port
 */
async function launch(
  cmd: string,
  args: string[],
  port: number,
  ready: string,
): Promise<Launcher> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const pump = (async () => {
    for await (const chunk of child.stderr) text += decoder.decode(chunk, { stream: true });
  })();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await pump;
  };
  let up = false;
  for (let i = 0; i < 100 && !up; i++) {
    if (ready === "connect") {
      // The probe is a session that ends at once (EOF before any command).
      up = await Deno.connect({ hostname: "127.0.0.1", port }).then((c) => {
        c.close();
        return true;
      }, () => false);
    } else up = text.includes(ready);
    if (!up) await new Promise((r) => setTimeout(r, 50));
  }
  if (!up) {
    await stop();
    throw new Error(`${cmd} did not start:\n${text}`);
  }
  const waitForLog = (want: RegExp, count = 1) =>
    waitFor(
      `${want} in the log`,
      () => Promise.resolve((text.match(new RegExp(want, "g")) ?? []).length >= count),
      5000,
    );
  return { port, log: () => text, waitForLog, stop };
}

/**
 * Starts `systemd-socket-activate --accept --inetd` on a free loopback port
 * (what a systemd socket with Accept=yes or inetd does: the connection is
 * stdin and stdout), running the program with the production flags.
 */
async function socketActivate(
  configFile: string,
  _queueDir: string,
  env: string[] = [],
): Promise<Launcher> {
  const port = freePort();
  return await launch(
    "systemd-socket-activate",
    [
      "--accept",
      "--inetd",
      "-l",
      `127.0.0.1:${port}`,
      ...env.flatMap((e) => ["-E", e]),
      Deno.execPath(),
      ...await smtpdArgs(["stdin", "-c", configFile]),
    ],
    port,
    "Listening on",
  );
}

/**
 * Starts a command as inetd and xinetd start a server, stderr on the
 * connection too (systemd-socket-activate --inetd, then `exec 2>&1`), for a
 * network client at 127.0.0.1:40000.
 * @param port the loopback port to listen on
 * @param argv the program and its arguments
 */
function inetdWithStderr(port: number, argv: string[]): Promise<Launcher> {
  return launch(
    "systemd-socket-activate",
    [
      "--accept",
      "--inetd",
      "-l",
      `127.0.0.1:${port}`,
      "-E",
      "REMOTE_ADDR=127.0.0.1",
      "-E",
      "REMOTE_PORT=40000",
      "sh",
      "-c",
      'exec 2>&1; exec "$@"',
      "sh",
      ...argv,
    ],
    port,
    "Listening on",
  );
}

/** Sends a whole dialog at once and reads replies until the server closes. */
async function dialog(port: number, text: string): Promise<string[]> {
  const c = await RawClient.connect(port);
  try {
    await c.send(text);
    const replies: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await c.reply(15000);
      if (r === "") break;
      replies.push(r);
    }
    return replies;
  } finally {
    c.close();
  }
}

const RELAY_ATTEMPT = "HELO far\r\nMAIL FROM:<a@far.example>\r\nRCPT TO:<x@elsewhere.example>\r\n" +
  "DATA\r\nSubject: relay\r\n\r\nbody\r\n.\r\nQUIT\r\n";
const NO_LOOPBACK = 'mynetworks = ["192.0.2.0/24"]\nmydestination = ["example.com"]\n' +
  "smtpd_peername_lookup = false";
const hasLauncher = (await run("sh", ["-c", "command -v systemd-socket-activate"])).code === 0;

Deno.test({
  name: "stdin mode on a socket without a client address refuses with 421 (no open relay)",
  ignore: !hasLauncher,
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin");
    const { configFile, queueDir } = await writeConfig(work, NO_LOOPBACK);
    const l = await socketActivate(configFile, queueDir);
    try {
      const replies = await dialog(l.port, RELAY_ATTEMPT);
      assert.ok(
        !replies.some((r) => r.startsWith("250")),
        `no 250 for anything (a local submission would relay): ${JSON.stringify(replies)}`,
      );
      assert.equal((await queueFiles(queueDir, "maildrop")).length, 0, "nothing queued");
      assert.match(replies[0] ?? "", /^421 4\.3\.0 mx\.test\.example Error: server configuration/);
      assert.equal(replies.length, 1, `nothing after the 421: ${JSON.stringify(replies)}`);
      await l.waitForLog(/refusing the session/);
      assert.match(
        l.log(),
        /stand-alone mode: refusing the session: stdin is a socket .*tcpserver .*Accept=yes .*xinetd/,
      );
      assert.equal((await queueFiles(queueDir, "maildrop")).length, 0);
    } finally {
      await l.stop();
    }
  },
});

Deno.test({
  name:
    "stdin mode with stderr on the client's socket (inetd, xinetd) sends a fatal error to syslog_server, not to the client",
  ignore: !hasLauncher,
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin");
    const { got, port: syslogPort, close: closeSyslog } = await udpSyslog();
    const missing = join(work, "missing.pem");
    const { configFile } = await writeConfig(
      work,
      `syslog_server = "udp://127.0.0.1:${syslogPort}"\n` +
        `smtpd_tls_security_level = "may"\nsmtpd_tls_cert_file = "${missing}"`,
    );
    const port = freePort();
    // As inetd and xinetd start a server: stdin, stdout and stderr are the connection.
    const l = await inetdWithStderr(port, [
      Deno.execPath(),
      ...await smtpdArgs(["stdin", "-c", configFile]),
    ]);
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      let text = "";
      try {
        const buf = new Uint8Array(4096);
        for (;;) {
          const n = await c.read(buf);
          if (n === null) break;
          text += new TextDecoder().decode(buf.subarray(0, n));
        }
      } catch {
        /* reset */
      } finally {
        c.close();
      }
      assert.equal(text, "", "the client gets no log line, no file name");
      for (let i = 0; i < 100 && got.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const lines = got.join("\n");
      assert.match(lines, /^<18>\w{3} [ \d]\d [\d:]{8} \S+ postfix\/smtpd\[\d+\]: fatal: /m);
      assert.ok(lines.includes(`cannot read "${missing}"`), lines);
    } finally {
      await l.stop();
      closeSyslog();
    }
  },
});

Deno.test({
  name:
    "stdin mode with stderr on the client's socket: a stray asynchronous error goes to syslog_server, not to the client",
  ignore: !hasLauncher,
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin");
    const { got, port: syslogPort, close: closeSyslog } = await udpSyslog();
    const { configFile } = await writeConfig(
      work,
      `syslog_server = "udp://127.0.0.1:${syslogPort}"`,
    );
    const port = freePort();
    const fault = join(import.meta.dirname ?? ".", "_start_fault.ts");
    // As inetd and xinetd start a server: stdin, stdout and stderr are the
    // connection; a promise rejected with no handler a second in.
    const l = await inetdWithStderr(port, [
      Deno.execPath(),
      "run",
      "-A",
      fault,
      "rejection",
      "stdin",
      "-c",
      configFile,
    ]);
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      let text = "";
      try {
        const buf = new Uint8Array(4096);
        const read = async () => {
          const n = await c.read(buf);
          if (n !== null) text += new TextDecoder().decode(buf.subarray(0, n));
          return n;
        };
        while (!text.includes("\r\n")) if (await read() === null) break;
        await new Promise((r) => setTimeout(r, 2000));
        await c.write(new TextEncoder().encode("QUIT\r\n"));
        while (await read() !== null);
      } catch {
        /* reset */
      } finally {
        c.close();
      }
      assert.match(text, /^220 /);
      assert.ok(!/rejection|secret/.test(text), `the client got a log line: ${text}`);
      for (let i = 0; i < 100 && !got.some((g) => g.includes("stray")); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const lines = got.join("\n");
      assert.match(
        lines,
        /postfix\/smtpd\[\d+\]: error: unhandled rejection: .*stray rejection \(test\)/,
      );
    } finally {
      await l.stop();
      closeSyslog();
    }
  },
});

Deno.test({
  name:
    "stdin mode on a socket with REMOTE_ADDR gets the network policy (relay denied, ours queued)",
  ignore: !hasLauncher,
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin");
    const { configFile, queueDir } = await writeConfig(work, NO_LOOPBACK);
    const l = await socketActivate(configFile, queueDir, [
      "REMOTE_ADDR=203.0.113.7",
      "REMOTE_PORT=40001",
    ]);
    try {
      const relay = await dialog(l.port, RELAY_ATTEMPT);
      assert.match(relay[0] ?? "", /^220 /);
      assert.ok(
        relay.includes("454 4.7.1 <x@elsewhere.example>: Relay access denied\r\n"),
        JSON.stringify(relay),
      );
      assert.equal((await queueFiles(queueDir, "maildrop")).length, 0);
      const ours = await dialog(
        l.port,
        "HELO far\r\nMAIL FROM:<a@far.example>\r\nRCPT TO:<u@example.com>\r\n" +
          "DATA\r\nSubject: ours\r\n\r\nbody\r\n.\r\nQUIT\r\n",
      );
      assert.ok(ours.some((r) => /^250 2\.0\.0 Ok: queued as/.test(r)), JSON.stringify(ours));
      const files = await queueFiles(queueDir, "maildrop");
      assert.equal(files.length, 1);
      const pc = await postcat(files[0] as string);
      assert.match(pc, /^named_attribute: client_address=203\.0\.113\.7$/m);
      assert.match(pc, /^recipient: u@example\.com$/m);
      assert.doesNotMatch(pc, /^From: /m, "no From: added: not a local submission");
    } finally {
      await l.stop();
    }
  },
});

Deno.test({
  name: "stdin mode refuses garbage in REMOTE_ADDR or its port; TCPREMOTEHOST is not read",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin");
    const { configFile, queueDir } = await writeConfig(work, NO_LOOPBACK);
    const bad: Record<string, string>[] = [
      { REMOTE_ADDR: "\x1b[2J192.0.2.7" },
      { REMOTE_ADDR: "192.0.2.7\r\nX-Injected: 1" },
      { REMOTE_ADDR: "127.0.0.010" },
      { REMOTE_ADDR: "192.0.2.7", REMOTE_PORT: "25\x1b[0m" },
      { TCPREMOTEIP: "192.0.2.7 ", TCPREMOTEPORT: "1" },
      { TCPREMOTEIP: "192.0.2.7", TCPREMOTEPORT: "70000" },
    ];
    for (const env of bad) {
      const r = await runStdin(configFile, RELAY_ATTEMPT, env);
      assert.match(r.stdout, /^421 4\.3\.0 /, JSON.stringify(env));
      assert.doesNotMatch(r.stdout, /^250/m, JSON.stringify(env));
      for (const bad of ["\x1b", "\r", "X-Injected", "192.0.2.7"]) {
        assert.ok(
          !r.stderr.includes(bad),
          `${JSON.stringify(bad)} logged for ${JSON.stringify(env)}`,
        );
      }
      assert.match(
        r.stderr,
        /refusing the session: (REMOTE_ADDR|REMOTE_PORT|TCPREMOTEIP|TCPREMOTEPORT) is not/,
      );
    }
    assert.equal((await queueFiles(queueDir, "maildrop")).length, 0);
    const named = await runStdin(
      configFile,
      "HELO x\r\nMAIL FROM:<a@far.example>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n\r\nb\r\n.\r\nQUIT\r\n",
      { TCPREMOTEIP: "203.0.113.8", TCPREMOTEPORT: "4000", TCPREMOTEHOST: "a\x1b[31m.example" },
    );
    assert.match(named.stdout, /250 2\.0\.0 Ok: queued as/);
    assert.match(named.stderr, /connect from unknown\[203\.0\.113\.8\]/);
    assert.ok(!named.stderr.includes("\x1b"), "no ESC in the log");
    const [f] = await queueFiles(queueDir, "maildrop");
    assert.ok(!(await postcat(f as string)).includes("\x1b"), "no ESC in the queue file");
  },
});

Deno.test({
  name:
    "RCPT TO:<u@[127.0.0.010]> is valid syntax, as in Postfix, but not our address 127.0.0.10 (nor 127.0.0.8): relaying",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin");
    const { configFile, queueDir } = await writeConfig(
      work,
      `${NO_LOOPBACK}\ninet_interfaces = ["127.0.0.10"]`,
    );
    const r = await runStdin(
      configFile,
      "HELO far\r\nMAIL FROM:<a@far.example>\r\nRCPT TO:<u@[127.0.0.10]>\r\n" +
        "RCPT TO:<u@[127.0.0.010]>\r\nRCPT TO:<u@[127.000.0.10]>\r\nQUIT\r\n",
      { REMOTE_ADDR: "203.0.113.7" },
    );
    // [127.0.0.10] is ours; [127.0.0.010] is 127.0.0.8 to the C library and
    // 127.0.0.10 to a naive parser: a literal with a leading zero is valid
    // syntax (Postfix's valid_ipv4_hostaddr) but read as no address.
    assert.match(
      r.stdout,
      /250 2\.1\.5 Ok\r\n454 4\.7\.1 <u@\[127\.0\.0\.010\]>: Relay access denied\r\n454 4\.7\.1 <u@\[127\.000\.0\.10\]>: Relay access denied\r\n221/,
    );
    assert.equal((await queueFiles(queueDir, "maildrop")).length, 0);
  },
});

Deno.test({
  name: "an address with a leading zero in mynetworks stops the start with file and line",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("config");
    for (
      const [extra, want] of [
        ['mynetworks = ["10.0.0.010/32"]', /smtpd\.toml:5: mynetworks: cannot parse network/],
        ['inet_interfaces = ["127.0.0.010"]', /smtpd\.toml:5: inet_interfaces: cannot parse/],
        ['smtpd_listen = ["127.0.0.01:2525"]', /smtpd\.toml:\d+: smtpd_listen: cannot parse/],
      ] as const
    ) {
      const { configFile } = await writeConfig(work, extra);
      const r = await run(
        Deno.execPath(),
        await smtpdArgs(["config", "--check", "-c", configFile]),
      );
      assert.notEqual(r.code, 0, extra);
      assert.match(r.stderr, want);
    }
  },
});

const hasTcpserver = (await run("sh", ["-c", "command -v tcpserver"])).code === 0;
const hasXinetd = (await run("sh", ["-c", "command -v xinetd"])).code === 0;

/** Mail for a domain of ours, then a relay attempt, each in its own connection. */
async function oursAndRelay(l: Launcher, queueDir: string): Promise<string> {
  const ours = await dialog(
    l.port,
    "HELO far\r\nMAIL FROM:<a@far.example>\r\nRCPT TO:<u@example.com>\r\n" +
      "DATA\r\nSubject: ours\r\n\r\nbody\r\n.\r\nQUIT\r\n",
  );
  assert.ok(ours.some((r) => /^250 2\.0\.0 Ok: queued as/.test(r)), JSON.stringify(ours));
  const relay = await dialog(l.port, RELAY_ATTEMPT);
  assert.ok(
    relay.includes("454 4.7.1 <x@elsewhere.example>: Relay access denied\r\n"),
    JSON.stringify(relay),
  );
  // Only SMTP replies reach the client: no log line (xinetd makes stderr the socket too).
  for (const r of [...ours, ...relay]) assert.match(r, /^(\d{3}[ -][^\n]*\n)+$/, r);
  const files = await queueFiles(queueDir, "maildrop");
  assert.equal(files.length, 1);
  return await postcat(files[0] as string);
}

Deno.test({
  name: "stdin mode under tcpserver takes TCPREMOTEIP as the client (loopback outside mynetworks)",
  ignore: !hasTcpserver,
  ...opts,
  fn: async () => {
    const l = await tcpserverStdin(NO_LOOPBACK);
    try {
      const pc = await oursAndRelay(l, l.queueDir);
      assert.match(pc, /^named_attribute: client_address=127\.0\.0\.1$/m);
    } finally {
      await l.stop();
    }
  },
});

/** A tcpserver running `smtpd stdin`, and its configuration. */
type StdinService = Launcher & { queueDir: string; configFile: string };

/**
 * Starts tcpserver running `smtpd stdin` on a free loopback port: the
 * client's connection is stdin and stdout, TCPREMOTEIP names it.
 * @param config the configuration's lines
 * @param work the work directory (a new one by default)
 */
async function tcpserverStdin(config: string, work?: string): Promise<StdinService> {
  const dir = work ?? await makeWorkDir("stdin");
  const { configFile, queueDir } = await writeConfig(dir, config);
  const port = freePort();
  const l = await launch(
    "tcpserver",
    [
      "-v",
      "-H",
      "-R",
      "-c",
      "4",
      "127.0.0.1",
      String(port),
      Deno.execPath(),
      ...await smtpdArgs(["stdin", "-c", configFile]),
    ],
    port,
    "status:",
  );
  return { ...l, queueDir, configFile };
}

/**
 * {@linkcode tcpserverStdin} with TLS offered (a self-signed certificate)
 * and no loopback client trusted.
 * @param extra more configuration lines
 * @param level smtpd_tls_security_level
 */
async function tcpserverTls(extra: string, level = "may"): Promise<StdinService> {
  const work = await makeWorkDir("stdin-tls");
  const tls = await tlsCertConfig(work, level);
  return await tcpserverStdin(`${NO_LOOPBACK}\n${tls}\n${extra}`, work);
}

Deno.test({
  name:
    "stdin mode under tcpserver offers STARTTLS: swaks's message over TLS is queued, with Postfix's TLS log line and Received comment",
  ignore: !hasTcpserver,
  ...opts,
  fn: async () => {
    const l = await tcpserverTls("");
    try {
      const r = await swaks(l.port, ["--to", "u@example.com", "--tls"]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /<- {2}250-STARTTLS/);
      assert.match(r.stdout, /=== TLS started with cipher TLSv1\.3:TLS_AES_256_GCM_SHA384:256/);
      // The EHLO after the handshake offers STARTTLS no more.
      const afterTls = r.stdout.slice(r.stdout.indexOf("=== TLS started"));
      assert.doesNotMatch(afterTls, /STARTTLS/);
      assert.match(afterTls, /<~ {2}250 2\.0\.0 Ok: queued as/);
      const files = await queueFiles(l.queueDir, "maildrop");
      assert.equal(files.length, 1);
      assert.match(
        await postcat(files[0] as string),
        /\(using TLSv1\.3 with cipher TLS_AES_256_GCM_SHA384 \(256\/256 bits\)\)/,
      );
      await l.waitForLog(/disconnect from/);
      assert.match(
        l.log(),
        /Anonymous TLS connection established from unknown\[127\.0\.0\.1\]: TLSv1\.3 with cipher TLS_AES_256_GCM_SHA384 \(256\/256 bits\)/,
      );
      assert.match(
        l.log(),
        /disconnect from unknown\[127\.0\.0\.1\] ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1/,
      );
    } finally {
      await l.stop();
    }
  },
});

Deno.test({
  name:
    "stdin mode with TLS: plaintext pipelined after STARTTLS is discarded, and QUIT ends TLS with a close_notify",
  ignore: !hasTcpserver,
  ...opts,
  fn: async () => {
    const l = await tcpserverTls("");
    try {
      const r = await run("python3", ["-c", INJECTION, String(l.port)]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^starttls: 220 2\.0\.0 Ready to start TLS$/m);
      assert.match(r.stdout, /^ehlo: 250 CHUNKING$/m);
      // Had the injected MAIL run, RCPT would be accepted; it was discarded.
      assert.match(r.stdout, /^rcpt: 503 5\.5\.1 Error: need MAIL command$/m);
      // The process waits for the close_notify to go out before it exits.
      const end = await run("python3", ["-c", CLOSE_NOTIFY, String(l.port)]);
      assert.equal(end.code, 0, end.stderr);
      assert.match(end.stdout, /^quit: 221 2\.0\.0 Bye$/m);
      assert.match(end.stdout, /^end: b''$/m);
    } finally {
      await l.stop();
    }
  },
});

Deno.test({
  name:
    "stdin mode with TLS: garbage instead of a ClientHello, or silence, ends the session with Postfix's log lines",
  ignore: !hasTcpserver,
  ...opts,
  fn: async () => {
    const l = await tcpserverTls("smtpd_starttls_timeout = 2");
    try {
      const garbage = await RawClient.connect(l.port);
      try {
        await garbage.reply();
        await garbage.send("EHLO x\r\nSTARTTLS\r\n");
        await garbage.reply();
        assert.equal(await garbage.reply(), "220 2.0.0 Ready to start TLS\r\n");
        await garbage.send("this is not TLS at all\r\n".repeat(20));
        // The server closes the connection (no reply, no wait for the timeout).
        assert.equal(await garbage.reply(15_000), "");
      } finally {
        garbage.close();
      }
      const silent = await RawClient.connect(l.port);
      try {
        await silent.reply();
        await silent.send("EHLO x\r\nSTARTTLS\r\n");
        await silent.reply();
        await silent.reply();
        // From the 220 to STARTTLS on: the handshake's timeout (2 s), not
        // smtpd_timeout (300 s). (Counted from the connect, it took in the
        // start of the process tcpserver runs, seconds on a loaded host.)
        const t0 = Date.now();
        assert.equal(await silent.reply(20_000), "");
        assert.ok(Date.now() - t0 < 8000, `closed after ${Date.now() - t0} ms`);
      } finally {
        silent.close();
      }
      await l.waitForLog(/disconnect from/, 2);
      assert.match(l.log(), /SSL_accept error from unknown\[127\.0\.0\.1\]: -1/);
      assert.match(
        l.log(),
        /SSL_accept error from unknown\[127\.0\.0\.1\]: Connection timed out/,
      );
      assert.equal(
        (l.log().match(/lost connection after STARTTLS from unknown\[127\.0\.0\.1\]/g) ?? [])
          .length,
        2,
        l.log(),
      );
      assert.equal((await queueFiles(l.queueDir, "maildrop")).length, 0);
    } finally {
      await l.stop();
    }
  },
});

Deno.test({
  name:
    "stdin mode with TLS required: 530 before STARTTLS; implicit TLS (smtpd_tls_wrappermode) for swaks --tls-on-connect",
  ignore: !hasTcpserver,
  ...opts,
  fn: async () => {
    const enc = await tcpserverTls("", "encrypt");
    try {
      const replies = await dialog(
        enc.port,
        "EHLO x\r\nMAIL FROM:<a@far.example>\r\nQUIT\r\n",
      );
      assert.ok(
        replies.includes("530 5.7.0 Must issue a STARTTLS command first\r\n"),
        JSON.stringify(replies),
      );
      const r = await swaks(enc.port, ["--to", "u@example.com", "--tls"]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /<~ {2}250 2\.0\.0 Ok: queued as/);
    } finally {
      await enc.stop();
    }
    const wrapped = await tcpserverTls("smtpd_tls_wrappermode = true");
    try {
      const r = await swaks(wrapped.port, ["--to", "u@example.com", "--tls-on-connect"]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /=== TLS started with cipher TLSv1\.3/);
      assert.match(r.stdout, /<~ {2}220 mx\.test\.example ESMTP/);
      assert.doesNotMatch(r.stdout, /STARTTLS/);
      assert.match(r.stdout, /<~ {2}250 2\.0\.0 Ok: queued as/);
      assert.equal((await queueFiles(wrapped.queueDir, "maildrop")).length, 1);
    } finally {
      await wrapped.stop();
    }
  },
});

Deno.test({
  name:
    "stdin mode under tcpserver with AUTH: swaks AUTH PLAIN over STARTTLS against Dovecot relays; a local submission gets no AUTH",
  ignore: !hasTcpserver || !hasDovecot(),
  ...opts,
  fn: async () => {
    const dovecot = await startDovecot(freePort());
    const auth = [
      "smtpd_sasl_auth_enable = true",
      `smtpd_sasl_path = "${dovecot.socket}"`,
      "smtpd_sasl_authenticated_header = true",
      "smtpd_tls_auth_only = true",
    ].join("\n");
    const l = await tcpserverTls(auth);
    try {
      const relay = ["--to", "someone@foreign.example", "--tls"];
      const r = await swaks(l.port, [
        ...relay,
        ...swaksAuth("PLAIN", "alice"),
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      // Not before TLS (smtpd_tls_auth_only), then Dovecot's mechanisms.
      const plain = r.stdout.slice(0, r.stdout.indexOf("=== TLS started"));
      assert.doesNotMatch(plain, /250-AUTH/);
      assert.match(r.stdout, /<~ {2}250-AUTH PLAIN LOGIN/);
      assert.match(r.stdout, /<~ {2}235 2\.7\.0 Authentication successful/);
      assert.match(r.stdout, /<~ {2}250 2\.0\.0 Ok: queued as/);
      const [f] = await queueFiles(l.queueDir, "maildrop");
      const pc = await postcat(f as string);
      assert.match(pc, /named_attribute: sasl_username=alice/);
      assert.match(pc, /\(Authenticated sender: alice\)/);
      // Without AUTH the same relay is refused.
      const refused = await swaks(l.port, relay);
      assert.notEqual(refused.code, 0);
      assert.match(
        refused.stdout,
        /<~\* 454 4\.7\.1 <someone@foreign\.example>: Relay access denied/,
      );
      assert.ok(!l.log().includes(DOVECOT_USERS.alice), "the password reached the log");
      // A local submission (a pipe on stdin) is offered no AUTH.
      const local = await runStdin(l.configFile, "EHLO x\r\nQUIT\r\n");
      assert.equal(local.code, 0, local.stderr);
      assert.match(local.stdout, /^250 /m);
      assert.doesNotMatch(local.stdout, /AUTH/);
    } finally {
      await l.stop();
      await dovecot.dispose();
    }
  },
});

Deno.test({
  name: "stdin mode: implicit TLS for a local submission (a pipe on stdin) stops the start",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin-tls");
    const tls = await tlsCertConfig(work, "may");
    const { configFile } = await writeConfig(work, `${tls}\nsmtpd_tls_wrappermode = true`);
    const r = await runStdin(configFile, "EHLO x\r\nQUIT\r\n");
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(
      r.stderr,
      /smtpd\.toml:\d+: smtpd_tls_wrappermode = true cannot be met in stand-alone mode \(smtpd stdin\) for a local submission/,
    );
  },
});

Deno.test({
  name: "stdin mode under xinetd takes REMOTE_HOST as the client (loopback outside mynetworks)",
  // xinetd wants a user for each service, and only root may name one.
  ignore: !hasXinetd || Deno.uid() !== 0,
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin");
    const { configFile, queueDir } = await writeConfig(work, NO_LOOPBACK);
    const port = freePort();
    // xinetd starts servers in "/": a wrapper enters the checkout first.
    const wrapper = join(work, "smtpd.sh");
    const argv = [Deno.execPath(), ...await smtpdArgs(["stdin", "-c", configFile])];
    await Deno.writeTextFile(
      wrapper,
      `#!/bin/sh\ncd '${ROOT}' || exit 1\nexec ${argv.map((a) => `'${a}'`).join(" ")}\n`,
    );
    await Deno.chmod(wrapper, 0o755);
    const conf = join(work, "xinetd.conf");
    await Deno.writeTextFile(
      conf,
      `defaults\n{\n}\nservice smtpd-test\n{\n  type = UNLISTED\n  socket_type = stream\n` +
        `  protocol = tcp\n  wait = no\n  bind = 127.0.0.1\n  port = ${port}\n  flags = IPv4\n` +
        `  user = root\n  server = ${wrapper}\n}\n`,
    );
    const l = await launch(
      "xinetd",
      [
        "-dontfork",
        "-f",
        conf,
        "-pidfile",
        join(work, "xinetd.pid"),
        "-filelog",
        join(work, "xinetd.log"),
      ],
      port,
      "connect",
    );
    try {
      const pc = await oursAndRelay(l, queueDir);
      assert.match(pc, /^named_attribute: client_address=127\.0\.0\.1$/m);
    } finally {
      await l.stop();
    }
  },
});

Deno.test({
  name: "explain --client with a leading zero is refused, not read as another host",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("config");
    const { configFile } = await writeConfig(work);
    const r = await run(
      Deno.execPath(),
      await smtpdArgs([
        "explain",
        "--client",
        "127.0.0.010",
        "--client-name",
        "x",
        "-c",
        configFile,
      ]),
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, /explain: --client "127\.0\.0\.010" is not an IP address/);
  },
});

Deno.test({
  name: "TCPREMOTEHOST (the client's own, unconfirmed PTR name) does not pass a name-based rule",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin");
    const { configFile, queueDir } = await writeConfig(
      work,
      `${NO_LOOPBACK}\nsmtpd_recipient_restrictions = ` +
        '["check_client_access inline:{ trusted.example=OK }", "reject_unauth_destination"]',
    );
    const r = await runStdin(configFile, RELAY_ATTEMPT, {
      TCPREMOTEIP: "203.0.113.8",
      TCPREMOTEPORT: "4000",
      TCPREMOTEHOST: "trusted.example",
    });
    assert.match(r.stdout, /554 5\.7\.1 <x@elsewhere\.example>: Relay access denied/);
    assert.match(r.stderr, /connect from unknown\[203\.0\.113\.8\]/);
    assert.equal((await queueFiles(queueDir, "maildrop")).length, 0);
  },
});

/**
 * Python: after STARTTLS and EHLO over TLS, a forged record (application
 * data that fails its integrity check) on the raw socket; prints how long
 * the server took to close the connection, or "open" after 10 s.
 */
const FORGED_RECORD = `${UP_TO_STARTTLS}
import select, time
t = ctx.wrap_socket(s); tf = t.makefile("rb")
t.sendall(b"EHLO y\\r\\n"); print("ehlo:", reply(tf))
fd = t.fileno()
os.write(fd, b"\\x17\\x03\\x03\\x00\\x20" + b"\\x00" * 32)
t0 = time.time()
while time.time() - t0 < 10:
    if select.select([fd], [], [], 0.5)[0]:
        try:
            if not os.read(fd, 65536):
                print("closed:", round(time.time() - t0)); break
        except ConnectionResetError:
            print("closed:", round(time.time() - t0)); break
else:
    print("open")
`;

Deno.test({
  name:
    "stdin mode with TLS: a forged record after the handshake ends the session at once (not at smtpd_timeout)",
  ignore: !hasTcpserver,
  ...opts,
  fn: async () => {
    const l = await tcpserverTls("");
    try {
      const r = await run("python3", ["-c", FORGED_RECORD, String(l.port)]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^ehlo: 250 CHUNKING$/m);
      // At once (0 s when the host is idle), not at smtpd_timeout (300 s):
      // the client gives up at 10 s; a loaded host may take a few seconds.
      assert.match(r.stdout, /^closed: \d$/m, r.stdout);
      await l.waitForLog(/disconnect from/);
      assert.match(l.log(), /lost connection after EHLO from unknown\[127\.0\.0\.1\]/);
      assert.match(l.log(), /disconnect from unknown\[127\.0\.0\.1\] ehlo=2 starttls=1 commands=3/);
    } finally {
      await l.stop();
    }
  },
});

/**
 * Python: a session on a socket handed over as descriptors 0 and 1 (as
 * inetd, tcpserver and systemd do) whose client pipelines argv[1] EHLO
 * commands and reads their replies only after a pause, so that the socket
 * fills up, three times in plaintext, then three times after STARTTLS.
 * Prints how many replies each burst got, whether they all read back
 * alike, and the reply to the NOOP that follows (nothing left over).
 */
const SLOW_READER = `
import os, socket, ssl, subprocess, sys, time
n, cmd = int(sys.argv[1]), sys.argv[2:]
a, b = socket.socketpair()
env = dict(os.environ, REMOTE_ADDR="127.0.0.1", REMOTE_PORT="40000")
p = subprocess.Popen(cmd, stdin=b, stdout=b, stderr=subprocess.DEVNULL, env=env)
b.close()
a.settimeout(30)
def replies(f, count):
    got = []
    for _ in range(count):
        lines = [f.readline()]
        while lines[-1][3:4] == b"-":
            lines.append(f.readline())
        got.append(b"".join(lines))
    return got
def burst(s, f, name):
    s.sendall(b"EHLO s\\r\\n" * n)
    time.sleep(1)
    try:
        got = replies(f, n)
        s.sendall(b"NOOP\\r\\n")
        after = f.readline().decode().strip()
        print(name, "replies:", len(got), "all alike:", len(set(got)) == 1, "then:", after, flush=True)
    except Exception as e:
        print(name, "failed:", type(e).__name__, e, flush=True)
f = a.makefile("rb")
f.readline()
for _ in range(3):
    burst(a, f, "plain")
a.sendall(b"STARTTLS\\r\\n")
print("starttls:", f.readline().decode().strip(), flush=True)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(a)
g = s.makefile("rb")
for _ in range(3):
    burst(s, g, "tls")
s.sendall(b"QUIT\\r\\n")
print("status:", p.wait(30), flush=True)
`;

Deno.test({
  name:
    "stdin mode on a socket: a client that reads its replies late gets each once, in plaintext and after STARTTLS",
  ...opts,
  fn: async () => {
    // Deno.stdout fails a write to a full non-blocking socket with EAGAIN
    // without saying how much of it went out: the retry sent bytes again,
    // and after STARTTLS the client saw records that failed their MAC.
    const work = await makeWorkDir("stdin");
    const { configFile } = await writeConfig(work, await tlsCertConfig(work));
    const r = await run("python3", [
      "-c",
      SLOW_READER,
      "10000",
      Deno.execPath(),
      ...await smtpdArgs(["stdin", "-c", configFile]),
    ], { timeoutMs: 120000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const burst = (name: string) =>
      new RegExp(`^${name} replies: 10000 all alike: True then: 250 2\\.0\\.0 Ok$`, "gm");
    assert.equal(r.stdout.match(burst("plain"))?.length, 3, r.stdout);
    assert.match(r.stdout, /^starttls: 220 2\.0\.0 Ready to start TLS$/m, r.stdout);
    assert.equal(r.stdout.match(burst("tls"))?.length, 3, r.stdout);
    assert.match(r.stdout, /^status: 0$/m, r.stdout);
  },
});

/**
 * Python: a local submission whose stdout is a pipe the caller shares (a
 * shell script's stdout, used by the commands after this one): prints the
 * replies and whether the pipe is still in blocking mode afterwards.
 */
const SHARED_STDOUT_PIPE = `
import os, subprocess, sys
r, w = os.pipe()
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=w, stderr=subprocess.DEVNULL)
p.stdin.write(b"HELO local\\r\\nQUIT\\r\\n")
p.stdin.close()
print("status:", p.wait(30))
print("blocking:", os.get_blocking(w))
os.close(w)
print(os.read(r, 4096).decode().replace("\\r\\n", "|"))
`;

Deno.test({
  name: "stdin mode: a stdout pipe the caller shares is left in blocking mode",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("stdin");
    const { configFile } = await writeConfig(work);
    const r = await run("python3", [
      "-c",
      SHARED_STDOUT_PIPE,
      Deno.execPath(),
      ...await smtpdArgs(["stdin", "-c", configFile]),
    ], { timeoutMs: 60000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^status: 0$/m, r.stdout);
    assert.match(r.stdout, /^blocking: True$/m, r.stdout);
    assert.match(
      r.stdout,
      /^220 mx\.test\.example ESMTP deno-smtpd\|250 mx\.test\.example\|221 2\.0\.0 Bye\|$/m,
    );
  },
});
