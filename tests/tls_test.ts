/**
 * STARTTLS (RFC 3207) end to end: swaks --tls, the Received: header and the
 * log, the STARTTLS command-injection defence, and smtpd_tls_security_level.
 */

import assert from "node:assert/strict";
import {
  allEntries,
  assertConfigChecks,
  CLOSE_NOTIFY,
  INJECTION,
  makeTestCert,
  makeWorkDir,
  postcat,
  queueFiles,
  RawClient,
  run,
  runStdin,
  smtpdArgs,
  startDaemon,
  swaks,
  tlsCertConfig,
  UP_TO_STARTTLS,
  writeConfig,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function tlsConfig(
  level: string,
  engine = false,
): Promise<{ dir: string; extra: string }> {
  const dir = await makeWorkDir("tls");
  const tls = await tlsCertConfig(dir, level, { engine });
  return { dir, extra: `smtpd_peername_lookup = false\n${tls}` };
}

/**
 * A test run twice, against a daemon offering STARTTLS at level may:
 * through node:tls, and through the TLS engine (tls_engine.ts).
 * @param name the test's name (" (TLS engine)" is added for the second)
 * @param body the test, given the running daemon
 */
function onBothTlsPaths(
  name: string,
  body: (d: Awaited<ReturnType<typeof startDaemon>>) => Promise<void>,
): void {
  for (const engine of [false, true]) {
    Deno.test({
      name: name + (engine ? " (TLS engine)" : ""),
      ...opts,
      fn: async () => {
        const { dir, extra } = await tlsConfig("may", engine);
        const d = await startDaemon(extra, { dir });
        try {
          await body(d);
        } finally {
          await d.stop();
        }
      },
    });
  }
}

onBothTlsPaths(
  "swaks --tls: TLS 1.3 negotiated, message queued, Received: and the log record the cipher",
  async (d) => {
    const r = await swaks(d.port, ["--to", "u@example.com", "--tls"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /250-STARTTLS/);
    assert.match(r.stdout, /TLS started with cipher TLSv1\.3:/);
    assert.match(r.stdout, /250 2\.0\.0 Ok: queued as/);
    const [f] = await queueFiles(d.queueDir);
    const pc = await postcat(f as string);
    assert.match(pc, /\(using TLSv1\.3 with cipher TLS_\w+ \(\d+\/\d+ bits\)\)/);
    assert.match(pc, /with ESMTPS id/);
    await d.waitForLog(
      /Anonymous TLS connection established from unknown\[127\.0\.0\.1\]: TLSv1\.3 with cipher/,
    );
  },
);

for (const engine of [false, true]) {
  Deno.test({
    name: "Postfix's defaults, smtpd_tls_loglevel = 0 and smtpd_tls_received_header = no: " +
      'no TLS line in the log, no TLS comment in Received:, still "with ESMTPS"' +
      (engine ? " (TLS engine)" : ""),
    ...opts,
    fn: async () => {
      const { dir, extra } = await tlsConfig("may", engine);
      const defaults = extra.split("\n").filter((l) =>
        !/^smtpd_tls_(loglevel|received_header) /.test(l)
      ).join("\n");
      assert.notEqual(defaults, extra);
      const d = await startDaemon(defaults, { dir });
      try {
        const r = await swaks(d.port, ["--to", "u@example.com", "--tls"]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /TLS started with cipher TLSv1\.3:/);
        const [f] = await queueFiles(d.queueDir);
        const pc = await postcat(f as string);
        assert.match(pc, /with ESMTPS id/);
        assert.doesNotMatch(pc, /using TLS|No client certificate/);
        await d.waitForLog(/disconnect from /);
        assert.doesNotMatch(d.log(), /TLS connection established/);
      } finally {
        await d.stop();
      }
    },
  });
}

Deno.test({
  name:
    "node:tls, TLS 1.2: OpenSSL's suite name in the log and Received:, as Postfix and the engine",
  ...opts,
  fn: async () => {
    const { dir, extra } = await tlsConfig("may");
    const d = await startDaemon(extra, { dir });
    try {
      const r = await swaks(d.port, [
        "--tls",
        "--tls-protocol",
        "tlsv1_2",
        "--to",
        "u@example.com",
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /TLS started with cipher TLSv1\.2:ECDHE-RSA-AES256-GCM-SHA384/);
      await d.waitForLog(/disconnect from/);
      assert.match(
        d.log(),
        /TLS connection established from .*: TLSv1\.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 \(256\/256 bits\)/,
      );
      const [f] = await queueFiles(d.queueDir);
      assert.match(
        await postcat(f as string),
        /\(using TLSv1\.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 \(256\/256 bits\)\)/,
      );
    } finally {
      await d.stop();
    }
  },
});

onBothTlsPaths(
  "STARTTLS injection: a command pipelined in plaintext after STARTTLS is never executed",
  async (d) => {
    const r = await run("python3", ["-c", INJECTION, String(d.port)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^starttls: 220 2\.0\.0 Ready to start TLS$/m);
    assert.match(r.stdout, /^ehlo: 250 CHUNKING$/m);
    // Had the injected MAIL run, RCPT would be accepted; it was discarded.
    assert.match(r.stdout, /^rcpt: 503 5\.5\.1 Error: need MAIL command$/m);
    await d.waitForLog(/discarded \d+ bytes of plaintext pipelined after STARTTLS/);
    assert.doesNotMatch(d.log(), /injected@evil/);
  },
);

/**
 * Python: three sessions, each with one message over STARTTLS and no EHLO
 * after it: the first says HELO before STARTTLS, the second nothing, the
 * third EHLO. Prints each 250 of the end of data.
 */
const GREETINGS_BEFORE_STARTTLS = `
import socket, ssl, sys
port = int(sys.argv[1])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
def reply(f):
    while True:
        l = f.readline()
        if len(l) < 4 or l[3:4] != b"-":
            return l.decode().strip()
for greeting in ["HELO", "", "EHLO"]:
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(10)
    f = s.makefile("rb"); reply(f)
    if greeting:
        s.sendall(greeting.encode() + b" c.example\\r\\n"); reply(f)
    s.sendall(b"STARTTLS\\r\\n"); reply(f)
    t = ctx.wrap_socket(s); tf = t.makefile("rb")
    for line in ["MAIL FROM:<a@example.org>", "RCPT TO:<u@example.com>", "DATA",
                 "Subject: after %s\\r\\n\\r\\nbody\\r\\n." % (greeting or "nothing")]:
        t.sendall(line.encode() + b"\\r\\n"); last = reply(tf)
    print(greeting or "nothing", last)
    t.sendall(b"QUIT\\r\\n"); reply(tf); t.close()
`;

Deno.test({
  name:
    "STARTTLS after HELO, or before any greeting: the session stays SMTP (Received: with SMTP, not ESMTPS), as Postfix's",
  ...opts,
  fn: async () => {
    const { dir, extra } = await tlsConfig("may");
    const d = await startDaemon(extra, { dir });
    try {
      const r = await run("python3", ["-c", GREETINGS_BEFORE_STARTTLS, String(d.port)]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^HELO 250 2\.0\.0 Ok: queued as/m);
      assert.match(r.stdout, /^nothing 250 2\.0\.0 Ok: queued as/m);
      assert.match(r.stdout, /^EHLO 250 2\.0\.0 Ok: queued as/m);
      const dumps = await Promise.all((await queueFiles(d.queueDir)).map((f) => postcat(f)));
      const of = (greeting: string) => {
        const found = dumps.find((p) => p.includes(`Subject: after ${greeting}`));
        assert.ok(found, `no message after ${greeting}`);
        return found;
      };
      // Postfix's STARTTLS forgets the HELO name but not the protocol, and
      // RFC 3848's "S" is for ESMTP only.
      for (const greeting of ["HELO", "nothing"]) {
        assert.match(of(greeting), /\(using TLSv1\.3 with cipher/);
        assert.match(of(greeting), /with SMTP id /);
        assert.match(of(greeting), /^named_attribute: protocol_name=SMTP$/m);
      }
      assert.match(of("EHLO"), /with ESMTPS id /);
      assert.match(of("EHLO"), /^named_attribute: protocol_name=ESMTP$/m);
    } finally {
      await d.stop();
    }
  },
});

const BAD_RECORD = `${UP_TO_STARTTLS}
t = ctx.wrap_socket(s)
t.sendall(b"EHLO y\\r\\n"); print("ehlo:", reply(t.makefile("rb")))
# The attack: an application-data record that does not decrypt, written
# past the TLS layer onto the connection.
raw = socket.socket(fileno=os.dup(t.fileno()))
raw.sendall(b"\\x17\\x03\\x03\\x00\\x20" + os.urandom(32))
try:
    print("after:", t.recv(100))
except Exception as e:
    print("after:", type(e).__name__)
`;

onBothTlsPaths(
  "a record that does not decrypt after the handshake is a lost connection, no notice",
  async (d) => {
    const r = await run("python3", ["-c", BAD_RECORD, String(d.port)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ehlo: 250 CHUNKING$/m);
    await d.waitForLog(/disconnect from unknown\[127\.0\.0\.1\]/);
    // A notice (if one were due) is queued after the disconnect line, the
    // session holding its slot until then: a stop waits for it, and the log
    // is complete once the daemon has exited (not after a guessed 300 ms).
    await d.stop();
    const log = d.log();
    assert.match(log, /lost connection after EHLO from unknown\[127\.0\.0\.1\]/, log);
    assert.match(
      log,
      /disconnect from unknown\[127\.0\.0\.1\] ehlo=2 starttls=1 commands=3$/m,
      log,
    );
    assert.doesNotMatch(log, /failed:|software problems|error:/, log);
  },
);

const FINISHED_AND_END = `${UP_TO_STARTTLS}
inc = ssl.MemoryBIO(); out = ssl.MemoryBIO(); o = ctx.wrap_bio(inc, out)
while True:
    try:
        o.do_handshake(); break
    except ssl.SSLWantReadError:
        if out.pending: s.sendall(out.read())
        d = s.recv(65536)
        if not d: print("closed during handshake"); sys.exit(0)
        inc.write(d)
# The client's last flight, its commands and its end, in one write.
o.write(b"NOOP\\r\\nMAIL FROM:<a@b.example>\\r\\n")
s.sendall(out.read()); s.shutdown(socket.SHUT_WR)
got = b""
while True:
    d = s.recv(65536)
    if not d: break
    inc.write(d)
    try:
        while True:
            b = o.read(65536)
            if not b: break
            got += b
    except (ssl.SSLWantReadError, ssl.SSLZeroReturnError): pass
    except ssl.SSLError as e: print("tls error", e); break
print("replies:", got)
`;

onBothTlsPaths(
  "a client's Finished, commands and end in one write: the handshake completes, all answered",
  async (d) => {
    for (let i = 0; i < 3; i++) {
      const r = await run("python3", ["-c", FINISHED_AND_END, String(d.port)]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        r.stdout.trim(),
        "replies: b'250 2.0.0 Ok\\r\\n250 2.1.0 Ok\\r\\n'",
        d.log(),
      );
    }
    await d.waitForLog(/(lost connection after MAIL[^]*){3}/);
    assert.doesNotMatch(d.log(), /SSL_accept error/);
  },
);

Deno.test({
  name: "smtpd_tls_security_level = encrypt refuses MAIL before STARTTLS with 530",
  ...opts,
  fn: async () => {
    const { dir, extra } = await tlsConfig("encrypt");
    const d = await startDaemon(extra, { dir });
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("EHLO x\r\nMAIL FROM:<a@example.org>\r\nSTARTTLS now\r\n");
      assert.match(await c.reply(), /250-STARTTLS/);
      assert.equal(await c.reply(), "530 5.7.0 Must issue a STARTTLS command first\r\n");
      assert.equal(await c.reply(), "501 5.5.4 Syntax: STARTTLS\r\n");
      // A BDAT chunk is read away with its 530 (Postfix 3.7 would run the
      // chunk's "VRFY x" as a command, a 530 more); the NOOP after it is answered.
      await c.send("BDAT 8\r\nVRFY x\r\nNOOP\r\n");
      assert.equal(await c.reply(), "530 5.7.0 Must issue a STARTTLS command first\r\n");
      assert.equal(await c.reply(), "250 2.0.0 Ok\r\n");
    } finally {
      c.close();
      await d.stop();
    }
  },
});

Deno.test({
  name: "TLS without a certificate, or with an unreadable one, stops the start with file and line",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("tls");
    const { configFile } = await writeConfig(work, 'smtpd_tls_security_level = "may"');
    const r = await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", configFile]));
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /smtpd\.toml:\d+: smtpd_tls_cert_file is required when smtpd_tls_security_level is "may"/,
    );
    const { configFile: c2 } = await writeConfig(
      await makeWorkDir("tls"),
      'smtpd_tls_security_level = "may"\nsmtpd_tls_cert_file = "/etc/ssl/private/nope.pem"\nsmtpd_tls_key_file = "/etc/ssl/private/nope.pem"',
    );
    const r2 = await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", c2]));
    assert.equal(r2.code, 1);
    assert.match(
      r2.stderr,
      /smtpd_tls_cert_file: cannot read "\/etc\/ssl\/private\/nope\.pem": No such file/,
    );
  },
});

Deno.test({
  name:
    "stand-alone mode, a local submission (a pipe on stdin): no STARTTLS offered at level may; level encrypt stops the start",
  ...opts,
  fn: async () => {
    const may = await tlsConfig("may");
    const { configFile } = await writeConfig(may.dir, may.extra);
    const r = await runStdin(configFile, "EHLO x\r\nSTARTTLS\r\nQUIT\r\n");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /250-8BITMIME/);
    assert.doesNotMatch(r.stdout, /250-STARTTLS/);
    assert.match(r.stdout, /502 5\.5\.1 Error: command not implemented/);
    const enc = await tlsConfig("encrypt");
    const { configFile: c2 } = await writeConfig(enc.dir, enc.extra);
    const r2 = await runStdin(c2, "EHLO x\r\nMAIL FROM:<a@example.org>\r\nQUIT\r\n");
    assert.equal(r2.code, 1);
    assert.doesNotMatch(r2.stdout, /^530/m);
    assert.match(
      r2.stderr,
      /smtpd\.toml:\d+: smtpd_tls_security_level = "encrypt" cannot be met in stand-alone mode/,
    );
  },
});

Deno.test({
  name:
    "a key that is not the certificate's, or a certificate cut short, stops the start with file and line",
  ...opts,
  fn: async () => {
    const { dir, extra } = await tlsConfig("may");
    const other = await makeWorkDir("tls");
    await makeTestCert(other);
    const check = async (text: string) => {
      const { configFile } = await writeConfig(dir, text);
      return await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", configFile]));
    };
    const mismatched = await check(
      extra.replace(/smtpd_tls_key_file = ".*"/, `smtpd_tls_key_file = "${other}/key.pem"`),
    );
    assert.equal(mismatched.code, 1, mismatched.stdout);
    assert.match(
      mismatched.stderr,
      /smtpd\.toml:\d+: smtpd_tls_cert_file\/smtpd_tls_key_file: the private key does not match the certificate/,
    );
    // A file half written (as a reload may find it).
    const pem = await Deno.readTextFile(`${dir}/cert.pem`);
    await Deno.writeTextFile(`${dir}/half.pem`, pem.slice(0, pem.length / 2));
    const half = await check(
      extra.replace(/smtpd_tls_cert_file = ".*"/, `smtpd_tls_cert_file = "${dir}/half.pem"`),
    );
    assert.equal(half.code, 1, half.stdout);
    assert.match(
      half.stderr,
      /smtpd\.toml:\d+: smtpd_tls_cert_file\/smtpd_tls_key_file: the certificate file does not hold whole PEM certificates/,
    );
  },
});

// Before, an encrypted key said "error:07880109:common libcrypto
// routines::interrupted or cancelled", a damaged one "DECODER
// routines::unsupported", both at the certificate's line.
Deno.test({
  name:
    "an encrypted or damaged private key stops the start at the key's line, with what to do, not the key",
  ...opts,
  fn: async () => {
    const { dir, extra } = await tlsConfig("may");
    const check = async (key: string) => {
      const { configFile } = await writeConfig(
        dir,
        extra.replace(/smtpd_tls_key_file = ".*"/, `smtpd_tls_key_file = "${key}"`),
      );
      const text = await Deno.readTextFile(configFile);
      const line = text.split("\n").findIndex((l) => l.startsWith("smtpd_tls_key_file")) + 1;
      const r = await run(
        Deno.execPath(),
        await smtpdArgs(["config", "--check", "-c", configFile]),
      );
      assert.equal(r.code, 1, r.stdout);
      assert.match(
        r.stderr,
        new RegExp(`smtpd\\.toml:${line}: smtpd_tls_cert_file/smtpd_tls_key_file: `),
      );
      return r.stderr;
    };
    const encrypted = await run("openssl", [
      "pkey",
      "-in",
      `${dir}/key.pem`,
      "-aes128",
      "-passout",
      "pass:secret",
      "-out",
      `${dir}/encrypted.pem`,
    ]);
    assert.equal(encrypted.code, 0, encrypted.stderr);
    assert.match(
      await check(`${dir}/encrypted.pem`),
      /the private key is encrypted: nothing can give its passphrase at start; store it unencrypted/,
    );
    // One base64 line of the key's body changed: still PEM, no longer a key.
    const pem = (await Deno.readTextFile(`${dir}/key.pem`)).split("\n");
    const body = pem[3] as string;
    pem[3] = body.slice(0, 8) + "AAAA" + body.slice(12);
    await Deno.writeTextFile(`${dir}/damaged.pem`, pem.join("\n"));
    const damaged = await check(`${dir}/damaged.pem`);
    assert.match(damaged, /the private key cannot be read \(damaged PEM\?\)/);
    assert.ok(!damaged.includes(body.slice(12, 40)), damaged);
    // No key parameter: the key is looked for in the certificate file, and
    // the message says so (before: "the key file holds no PEM private key").
    const { configFile } = await writeConfig(
      dir,
      extra.replace(/smtpd_tls_key_file = ".*"\n/, ""),
    );
    const none = await run(
      Deno.execPath(),
      await smtpdArgs(["config", "--check", "-c", configFile]),
    );
    assert.equal(none.code, 1, none.stdout);
    assert.match(
      none.stderr,
      /smtpd\.toml:\d+: smtpd_tls_cert_file\/smtpd_tls_key_file: smtpd_tls_cert_file holds no PEM private key, and the key is looked for there: smtpd_tls_key_file is empty/,
    );
  },
});

/**
 * Python: STARTTLS, then over TLS `sys.argv[2]` (EHLO or HELO), MAIL, RCPT
 * and DATA (pipelined after EHLO, one by one after HELO), a message, and a
 * RCPT refused; prints each reply's last line.
 */
const PIPELINED_OVER_TLS = `${UP_TO_STARTTLS}
t = ctx.wrap_socket(s); tf = t.makefile("rb")
t.sendall(sys.argv[2].encode() + b" client.example\\r\\n"); reply(tf)
cmds = [b"MAIL FROM:<a@b.example>\\r\\n", b"RCPT TO:<u@example.com>\\r\\n", b"DATA\\r\\n"]
if sys.argv[2] == "EHLO":
    t.sendall(b"".join(cmds)); print(reply(tf)); print(reply(tf)); print(reply(tf))
else:
    for c in cmds: t.sendall(c); print(reply(tf))
t.sendall(b"Subject: x\\r\\n\\r\\nhi\\r\\n.\\r\\n"); print(reply(tf))
t.sendall(b"MAIL FROM:<a@b.example>\\r\\n"); reply(tf)
t.sendall(b"RCPT TO:<nobody@elsewhere.example>\\r\\n"); print(reply(tf))
t.sendall(b"QUIT\\r\\n"); reply(tf)
`;

Deno.test({
  name:
    "after STARTTLS an EHLO client may pipeline (reject_unauth_pipelining), logs say proto=ESMTP, HELO gets 'with SMTP'",
  ...opts,
  fn: async () => {
    for (const engine of [false, true]) {
      const { dir, extra } = await tlsConfig("may", engine);
      const d = await startDaemon(
        `${extra}\nsmtpd_data_restrictions = ["reject_unauth_pipelining"]\n` +
          `smtpd_recipient_restrictions = ["check_recipient_access inline:{ nobody@elsewhere.example = REJECT }"]`,
        { dir },
      );
      try {
        const r = await run("python3", ["-c", PIPELINED_OVER_TLS, String(d.port), "EHLO"]);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(r.stdout.trim().split("\n").slice(0, 3), [
          "250 2.1.0 Ok",
          "250 2.1.5 Ok",
          "354 End data with <CR><LF>.<CR><LF>",
        ], d.log());
        assert.match(r.stdout, /^554 5\.7\.1 <nobody@elsewhere\.example>/m);
        await d.waitForLog(/NOQUEUE: reject: RCPT/);
        // Postfix's proto= is SMTP or ESMTP; TLS adds its "S" to Received: only.
        assert.match(d.log(), /NOQUEUE: reject: RCPT .* proto=ESMTP helo=<client\.example>$/m);
        assert.doesNotMatch(d.log(), /improper command pipelining/);
        const [f] = await queueFiles(d.queueDir);
        assert.match(await postcat(f as string), /with ESMTPS id/);
        // HELO: RFC 3848 is for ESMTP only, so Postfix writes "with SMTP".
        const h = await run("python3", ["-c", PIPELINED_OVER_TLS, String(d.port), "HELO"]);
        assert.equal(h.code, 0, h.stderr);
        await d.waitForLog(/(queued as[^]*){2}|(NOQUEUE: reject: RCPT[^]*){2}/);
        const received = await Promise.all((await queueFiles(d.queueDir)).map((q) => postcat(q)));
        assert.equal(
          received.filter((pc) => /\) with SMTP id /.test(pc)).length,
          1,
          received.join(),
        );
        assert.ok(!received.some((pc) => /with SMTPS id/.test(pc)), received.join());
      } finally {
        await d.stop();
      }
    }
  },
});

Deno.test({
  name:
    "key and chain in one file (smtpd_tls_key_file empty, as Postfix's default, or naming the same file): STARTTLS works",
  ...opts,
  fn: async () => {
    for (const engine of [false, true]) {
      const dir = await makeWorkDir("tls");
      const { cert, key } = await makeTestCert(dir);
      const ec = await makeTestCert(dir, { ecdsa: true });
      // Postfix's documentation has the key first; certbot-style files have it last.
      await Deno.writeTextFile(
        `${dir}/both.pem`,
        (await Deno.readTextFile(key)) + (await Deno.readTextFile(cert)),
      );
      await Deno.writeTextFile(
        `${dir}/ecboth.pem`,
        (await Deno.readTextFile(ec.cert)) + (await Deno.readTextFile(ec.key)),
      );
      const lines = [
        'smtpd_tls_security_level = "may"',
        `smtpd_tls_cert_file = "${dir}/both.pem"`,
        ...(engine
          ? [
            `smtpd_tls_key_file = "${dir}/both.pem"`,
            `smtpd_tls_loopback_listen = "127.0.0.1:0"`,
            `smtpd_tls_eccert_file = "${dir}/ecboth.pem"`,
          ]
          : []),
      ].join("\n");
      await assertConfigChecks(dir, lines);
      const d = await startDaemon(lines, { dir });
      try {
        const r = await swaks(d.port, ["--to", "u@example.com", "--tls"]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /TLS started with cipher TLSv1\.3:/);
        assert.match(r.stdout, /250 2\.0\.0 Ok: queued as/);
      } finally {
        await d.stop();
      }
    }
  },
});

const IN_TRANSACTION = `${
  UP_TO_STARTTLS.replace(
    'reply(); s.sendall(b"EHLO x\\r\\n"); reply(); s.sendall(b"STARTTLS\\r\\n"); reply()',
    'reply(); s.sendall(b"EHLO x\\r\\n"); reply()',
  )
}
s.sendall(b"MAIL FROM:<a@example.org>\\r\\n"); print("mail:", reply())
s.sendall(b"RCPT TO:<u@example.com>\\r\\n"); print("rcpt:", reply())
s.sendall(b"BDAT 5\\r\\nhello"); print("bdat:", reply())
s.sendall(b"STARTTLS\\r\\n"); print("starttls:", reply())
t = ctx.wrap_socket(s); tf = t.makefile("rb")
t.sendall(b"EHLO y\\r\\n"); reply(tf)
t.sendall(b"BDAT 3 LAST\\r\\nbye"); print("bdat after:", reply(tf))
t.sendall(b"RCPT TO:<u@example.com>\\r\\n"); print("rcpt after:", reply(tf))
t.sendall(b"QUIT\\r\\n"); print("quit:", reply(tf))
`;

onBothTlsPaths(
  "STARTTLS inside a transaction is taken, as Postfix takes it: the handshake ends the transaction and removes a BDAT message in progress",
  async (d) => {
    const r = await run("python3", ["-c", IN_TRANSACTION, String(d.port)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^rcpt: 250 2\.1\.5 Ok$/m);
    assert.match(r.stdout, /^bdat: 250 2\.0\.0 Ok: 5 bytes$/m);
    assert.match(r.stdout, /^starttls: 220 2\.0\.0 Ready to start TLS$/m);
    // The envelope and the chunk are gone with the transaction.
    assert.match(r.stdout, /^bdat after: 503 5\.5\.1 Error: need RCPT command$/m);
    assert.match(r.stdout, /^rcpt after: 503 5\.5\.1 Error: need MAIL command$/m);
    assert.match(r.stdout, /^quit: 221 2\.0\.0 Bye$/m);
    await d.waitForLog(/disconnect from unknown\[127\.0\.0\.1\]/);
    assert.deepEqual(await allEntries(d.queueDir), [], "no file left of the BDAT message");
  },
);

onBothTlsPaths(
  "QUIT over TLS: the session ends with a close_notify, as Postfix's (Exim logs an error otherwise)",
  async (d) => {
    const r = await run("python3", ["-c", CLOSE_NOTIFY, String(d.port)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^quit: 221 2\.0\.0 Bye$/m);
    // Python reads b"" after a close_notify, SSLEOFError after a bare TCP end.
    assert.match(r.stdout, /^end: b''$/m);
    await d.waitForLog(/disconnect from unknown\[127\.0\.0\.1\] ehlo=2 starttls=1 quit=1/);
  },
);

/**
 * Python: over TLS, a message of 18 bytes as Postfix counts them (lines and
 * their CRLFs: "Subject: x", "", "hi") sent after DATA, then the TCP
 * connection closed without a close_notify (Python's close() sends none),
 * as a client that crashes or loses its link leaves.
 */
const CUT_IN_DATA = `${UP_TO_STARTTLS}
t = ctx.wrap_socket(s); tf = t.makefile("rb")
t.sendall(b"EHLO y\\r\\n"); reply(tf)
t.sendall(b"MAIL FROM:<a@example.org>\\r\\n"); reply(tf)
t.sendall(b"RCPT TO:<u@example.com>\\r\\n"); reply(tf)
t.sendall(b"DATA\\r\\n"); print("data:", reply(tf))
t.sendall(b"Subject: x\\r\\n\\r\\nhi\\r\\n")
t.close(); s.close()
`;

onBothTlsPaths(
  "a TLS connection cut mid-DATA without a close_notify: no file left, and Postfix's 'lost connection after DATA (N bytes)'",
  async (d) => {
    const r = await run("python3", ["-c", CUT_IN_DATA, String(d.port)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^data: 354 /m);
    await d.waitForLog(/disconnect from unknown\[127\.0\.0\.1\]/);
    // Postfix 3.7 logs the bytes it had whether the client ends with a FIN or
    // a reset, close_notify or not (the engine's TLS stack reports the end
    // without one as an error: it lost the count).
    assert.match(
      d.log(),
      /lost connection after DATA \(18 bytes\) from unknown\[127\.0\.0\.1\]/,
      d.log(),
    );
    assert.deepEqual(await allEntries(d.queueDir), [], "no file left of the message");
  },
);
