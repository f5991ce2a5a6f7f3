/**
 * TLS beyond STARTTLS on one thread: STARTTLS on every listener thread,
 * implicit TLS (smtpd_tls_wrappermode) on an address of its own with a
 * bounded handshake, and the protocol range (smtpd_tls_protocols,
 * smtpd_tls_mandatory_protocols) enforced or refused at start.
 */

import assert from "node:assert/strict";
import {
  CONCURRENT_STARTTLS,
  freePort,
  makeTestCert,
  makeWorkDir,
  postcat,
  queueFiles,
  RawClient,
  run,
  smtpdArgs,
  startDaemon,
  swaks,
  tlsCertConfig,
  writeConfig,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** N concurrent smtplib sessions, each STARTTLS then one message; prints one line per result. */

Deno.test({
  name: "STARTTLS on every listener thread: 2 threads, 16 concurrent smtplib sessions all encrypt",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("tls-threads");
    const d = await startDaemon(`smtpd_listen_threads = 2\n${await tlsCertConfig(dir, "may")}`, {
      dir,
    });
    try {
      await d.waitForLog(/listening on .*\(2 threads\)/);
      const r = await run("python3", ["-c", CONCURRENT_STARTTLS, String(d.port), "16"]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split("\n");
      // A thread without a TLS context would not offer STARTTLS: smtplib fails there.
      assert.deepEqual(lines, Array(16).fill("ok TLSv1.3"), r.stdout);
      const deadline = Date.now() + 5000;
      while ((await queueFiles(d.queueDir)).length < 16 && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, 50));
      }
      assert.equal((await queueFiles(d.queueDir)).length, 16);
    } finally {
      await d.stop();
    }
  },
});

async function wrapperDaemon(extra = "", level = "none") {
  const dir = await makeWorkDir("tls-wrapper");
  const port = freePort();
  const d = await startDaemon(
    `smtpd_tls_wrappermode_listen = ["127.0.0.1:${port}"]\n${await tlsCertConfig(dir, level)}\n` +
      extra,
    { dir },
  );
  return { d, port };
}

Deno.test({
  name: "swaks --tls-on-connect on the wrapper-mode address: TLS first, no STARTTLS, mail queued",
  ...opts,
  fn: async () => {
    const { d, port } = await wrapperDaemon();
    try {
      await d.waitForLog(`127.0.0.1:${port} (TLS wrapper mode)`);
      const r = await swaks(port, ["--tls-on-connect", "--to", "u@example.com"]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      // deno-lint-ignore no-console
      console.log(`swaks --tls-on-connect on the wrapper-mode address:\n${r.stdout}`);
      assert.match(r.stdout, /TLS started with cipher TLSv1\.3:/);
      assert.match(r.stdout, /<~ +220 mx\.test\.example ESMTP/);
      assert.doesNotMatch(r.stdout, /STARTTLS/);
      assert.match(r.stdout, /250 2\.0\.0 Ok: queued as/);
      const [f] = await queueFiles(d.queueDir);
      assert.match(await postcat(f as string), /with ESMTPS id/);
      await d.waitForLog(/Anonymous TLS connection established from unknown\[127\.0\.0\.1\]/);
      // The plain address (level none) offers no STARTTLS.
      const plain = await swaks(d.port, ["--quit-after", "EHLO"]);
      assert.doesNotMatch(plain.stdout, /STARTTLS/);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "an IPv6 client (swaks --tls-on-connect to [::1]): Received: gives its address as Postfix does, [IPv6:::1]",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("tls-wrapper");
    const port = freePort();
    const d = await startDaemon(
      `smtpd_listen = ["127.0.0.1:0"]\nsmtpd_tls_wrappermode_listen = ["[::1]:${port}"]\n` +
        `${await tlsCertConfig(dir, "none")}\nmynetworks = ["127.0.0.0/8", "[::1]/128"]`,
      { dir },
    );
    try {
      const r = await run("swaks", [
        "--server",
        "::1",
        "--port",
        String(port),
        "--tls-on-connect",
        "--to",
        "u@example.com",
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const [f] = await queueFiles(d.queueDir);
      const text = await postcat(f as string);
      // Postfix 3.7 on [::1] with the same settings:
      // "Received: from vm (unknown [IPv6:::1])" (RFC 5321's address literal).
      assert.match(text, /^Received: from \S+ \(unknown \[IPv6:::1\]\)$/m, text);
      assert.match(text, /with ESMTPS id/);
      await d.waitForLog(/Anonymous TLS connection established from unknown\[::1\]/);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "wrapper mode: a client that connects and sends nothing is cut off at smtpd_starttls_timeout",
  ...opts,
  fn: async () => {
    const { d, port } = await wrapperDaemon("smtpd_starttls_timeout = 1");
    const c = await RawClient.connect(port);
    try {
      const start = Date.now();
      // No greeting in plaintext, ever; the connection ends after the timeout
      // (1 s; bounded with room for a loaded host, far below the 300 s default).
      assert.equal(await c.reply(20000), "");
      const took = Date.now() - start;
      assert.ok(took >= 900 && took < 20000, `closed after ${took} ms`);
      await d.waitForLog(/SSL_accept error from unknown\[127\.0\.0\.1\]: Connection timed out/);
      await d.waitForLog(/lost connection after CONNECT from unknown\[127\.0\.0\.1\]/);
    } finally {
      c.close();
      await d.stop();
    }
  },
});

/**
 * Python: two wrapper-mode clients (127.0.0.1, 127.0.0.2) hold the two
 * session slots in their handshakes; then one more from 127.0.0.1 (over its
 * per-client limit) and one from 127.0.0.3 (over default_process_limit)
 * each read until the server closes, printing what they got. Just before
 * each, the held clients send one more byte of their ClientHello: a client
 * silent for a second is idle, and a newcomer at the cap takes its place.
 * (The server takes connections in order: the held ones have their slots
 * first.)
 */
const WRAPPER_REFUSALS = `
import socket, sys
port = int(sys.argv[1])
def conn(src):
    s = socket.socket(); s.settimeout(5); s.bind((src, 0)); s.connect(("127.0.0.1", port)); return s
held = [conn(src) for src in ("127.0.0.1", "127.0.0.2")]
for s in held: s.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))
for name, src in (("per-client", "127.0.0.1"), ("global", "127.0.0.3")):
    for h in held: h.sendall(b"\\x00")
    s = conn(src); s.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])); got = b""
    while True:
        try:
            d = s.recv(4096)
        except ConnectionResetError:
            break
        if not d: break
        got += d
    print(name, repr(got))
`;

Deno.test({
  name:
    "wrapper mode over the per-client or the process limit: closed without a plaintext 421 (its client reads TLS)",
  ...opts,
  fn: async () => {
    const { d, port } = await wrapperDaemon(
      "smtpd_client_connection_count_limit = 1\nsmtpd_client_event_limit_exceptions = []\n" +
        "default_process_limit = 2\nsmtpd_listen_threads = 1",
    );
    try {
      const r = await run("python3", ["-c", WRAPPER_REFUSALS, String(port)], { timeoutMs: 20000 });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split("\n"), ["per-client b''", "global b''"], r.stdout);
      // Refused all the same, and logged as such.
      await d.waitForLog(/Connection concurrency limit exceeded: 2 from \[127\.0\.0\.1\]/);
      await d.waitForLog(/Connection limit exceeded: 2 sessions; refused \[127\.0\.0\.3\]/);
    } finally {
      await d.stop();
    }
  },
});

/**
 * Python: behind a PROXY-protocol balancer, two wrapper-mode clients that
 * the PROXY header names as 192.0.2.1: the first holds its slot in its
 * handshake, the second (over its per-client limit) reads until closed. The
 * second comes once the file argv[2] exists (made by the test when the
 * server has logged the first one's connect: its client is counted).
 */
const PROXIED_WRAPPER_REFUSAL = `
import os, socket, sys, time
port = int(sys.argv[1])
hello = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"PROXY TCP4 192.0.2.1 127.0.0.1 40000 465\\r\\n" + hello); return s
first = conn()
deadline = time.time() + 30
while not os.path.exists(sys.argv[2]) and time.time() < deadline: time.sleep(0.02)
s = conn(); got = b""
while True:
    try:
        d = s.recv(4096)
    except ConnectionResetError:
        break
    if not d: break
    got += d
print("proxied", repr(got))
`;

Deno.test({
  name:
    "wrapper mode behind the PROXY protocol, over the per-client limit: closed without a plaintext 421",
  ...opts,
  fn: async () => {
    const { d, port } = await wrapperDaemon(
      'smtpd_upstream_proxy_protocol = "haproxy"\nsmtpd_client_connection_count_limit = 1\n' +
        "smtpd_client_event_limit_exceptions = []\nsmtpd_listen_threads = 1",
    );
    try {
      const go = `${await makeWorkDir("tls-wrapper-go")}/go`;
      const python = run("python3", ["-c", PROXIED_WRAPPER_REFUSAL, String(port), go], {
        timeoutMs: 60000,
      });
      // The first client is counted before its connect line (not 300 ms
      // after its header: a loaded server may not have read it by then).
      const counted = await d.waitForLog("connect from unknown[192.0.2.1]", 20000)
        .then(() => undefined, (e: Error) => e);
      await Deno.writeTextFile(go, "");
      const r = await python;
      if (counted) throw counted;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "proxied b''");
      await d.waitForLog(/Connection concurrency limit exceeded: 2 from \[192\.0\.2\.1\]/);
    } finally {
      await d.stop();
    }
  },
});

/**
 * Python: behind a PROXY-protocol balancer, at default_process_limit = 2.
 * 192.0.2.9 makes one TLS session on the wrapper-mode address (its new TLS
 * session rate limit, 1, is reached); two idle sessions from other
 * addresses then fill the slots, and 192.0.2.9 comes back. Prints what the
 * comeback read, then what each idle session read (nothing: still open).
 */
const OVER_TLS_RATE_AT_CAP = `
import socket, ssl, struct, sys, time
port, wport = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
def v2(src, sport):
    addr = socket.inet_aton(src) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", sport, 465)
    return b"\\r\\n\\r\\n\\x00\\r\\nQUIT\\n\\x21\\x11" + struct.pack("!H", len(addr)) + addr
def reply(f):
    while True:
        l = f.readline()
        if len(l) < 4 or l[3:4] != b"-": return l
s = socket.create_connection(("127.0.0.1", wport), timeout=10); s.sendall(v2("192.0.2.9", 1))
t = ctx.wrap_socket(s); tf = t.makefile("rb"); reply(tf); t.sendall(b"QUIT\\r\\n"); reply(tf); t.close()
idle = []
for i, src in enumerate(["192.0.2.1", "192.0.2.2"]):
    c = socket.create_connection(("127.0.0.1", port), timeout=10); c.sendall(v2(src, 10 + i))
    f = c.makefile("rb"); reply(f); c.sendall(b"EHLO idle\\r\\n"); reply(f); idle.append((c, f))
time.sleep(1.5)  # idle long enough to give way to a newcomer
s = socket.create_connection(("127.0.0.1", wport), timeout=10); s.sendall(v2("192.0.2.9", 2))
got = b""
while True:
    try:
        d = s.recv(4096)
    except ConnectionResetError:
        break
    if not d: break
    got += d
print("comeback", repr(got))
for c, f in idle:
    c.settimeout(0.5)
    try:
        print("idle", repr(f.readline()))
    except TimeoutError:
        print("idle open")
`;

Deno.test({
  name:
    "wrapper mode at default_process_limit: a client over its new TLS session rate makes no room (no idle session is closed for it)",
  ...opts,
  fn: async () => {
    const { d, port: wport } = await wrapperDaemon(
      'smtpd_upstream_proxy_protocol = "haproxy"\ndefault_process_limit = 2\n' +
        "smtpd_client_new_tls_session_rate_limit = 1\nsmtpd_client_event_limit_exceptions = []\n" +
        "smtpd_listen_threads = 1",
    );
    try {
      const r = await run("python3", ["-c", OVER_TLS_RATE_AT_CAP, String(d.port), String(wport)], {
        timeoutMs: 30000,
      });
      assert.equal(r.code, 0, r.stderr);
      // Refused before its handshake, without a plaintext reply ...
      assert.match(r.stdout, /^comeback b''$/m);
      // ... and both idle sessions kept their slots.
      assert.equal(r.stdout.match(/^idle open$/gm)?.length, 2, r.stdout);
      await d.waitForLog(/Refusing TLS service request from \[192\.0\.2\.9\] for service smtp/);
      assert.doesNotMatch(d.log(), /to make room/);
    } finally {
      await d.stop();
    }
  },
});

async function openssl(port: number, ...args: string[]): Promise<string> {
  const r = await run("sh", [
    "-c",
    `echo QUIT | timeout 10 openssl s_client -connect 127.0.0.1:${port} ${args.join(" ")} 2>&1`,
  ]);
  return r.stdout;
}

Deno.test({
  name: "smtpd_tls_mandatory_protocols = >=TLSv1.3 on the wrapper address: a TLSv1.2 client fails",
  ...opts,
  fn: async () => {
    const { d, port } = await wrapperDaemon('smtpd_tls_mandatory_protocols = ">=TLSv1.3"');
    try {
      assert.match(await openssl(port, "-tls1_3"), /New, TLSv1\.3, Cipher is/);
      const old = await openssl(port, "-tls1_2");
      assert.doesNotMatch(old, /New, TLSv1\.2/);
      assert.match(old, /alert|error/i);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "smtpd_tls_protocols = !TLSv1.3 for STARTTLS at level may: TLSv1.2 is negotiated",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("tls-proto");
    const d = await startDaemon(
      `smtpd_tls_protocols = "!TLSv1.3"\n${await tlsCertConfig(dir, "may")}`,
      { dir },
    );
    try {
      const r = await swaks(d.port, ["--tls", "--quit-after", "EHLO"]);
      assert.match(r.stdout, /TLS started with cipher TLSv1\.2:/, r.stdout);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "Postfix 3.6's hexadecimal protocol bounds and its words in any case (MAY, HIGH) are taken, as Postfix 3.7 takes them",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("tls-proto");
    // postconf(5): "<=0305" is a later version than any known (no ceiling
    // here); ">=0x0303" is TLSv1.2. Postfix's name_code() ignores case.
    const d = await startDaemon(
      [
        await tlsCertConfig(dir, "MAY"),
        'smtpd_tls_protocols = ">=0x0303, <=0305"',
        'smtpd_tls_ciphers = "HIGH"',
        'smtpd_tls_mandatory_protocols = "<=0x0303"',
        'smtpd_tls_mandatory_ciphers = "Medium"',
        'smtpd_tls_wrappermode_listen = ["127.0.0.1:0"]',
      ].join("\n"),
      { dir },
    );
    try {
      const r = await swaks(d.port, ["--tls", "--quit-after", "EHLO"]);
      assert.match(r.stdout, /TLS started with cipher TLSv1\.3:/, r.stdout);
      const m = /listening on \S+ 127\.0\.0\.1:(\d+) \(TLS wrapper mode\)/.exec(d.log());
      assert.ok(m, d.log());
      // The mandatory list (wrapper mode) stops at TLSv1.2.
      const w = await swaks(Number(m[1]), ["--tls-on-connect", "--quit-after", "EHLO"]);
      assert.match(w.stdout, /TLS started with cipher TLSv1\.2:/, w.stdout);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "protocol lists and cipher grades that cannot be enforced stop the start with file and line",
  ...opts,
  fn: async () => {
    for (
      const [line, want] of [
        [
          'smtpd_tls_protocols = "<=TLSv1.1"',
          /smtpd\.toml:\d+: smtpd_tls_protocols: "<=TLSv1\.1" leaves no protocol/,
        ],
        [
          'smtpd_tls_mandatory_protocols = "TLSv9"',
          /smtpd\.toml:\d+: smtpd_tls_mandatory_protocols: unknown protocol "TLSv9"/,
        ],
        [
          // Postfix turns TLS off for it ("Invalid TLS protocol list").
          'smtpd_tls_protocols = ">=SSLv2"',
          /smtpd\.toml:\d+: smtpd_tls_protocols: no bound can be "SSLv2" in ">=SSLv2"/,
        ],
        [
          'smtpd_tls_ciphers = "null"',
          /smtpd\.toml:\d+: smtpd_tls_ciphers: "null" \(no encryption\) is not supported/,
        ],
      ] as const
    ) {
      const dir = await makeWorkDir("tls-bad");
      const { configFile } = await writeConfig(dir, `${await tlsCertConfig(dir, "may")}\n${line}`);
      const r = await run(
        Deno.execPath(),
        await smtpdArgs(["config", "--check", "-c", configFile]),
      );
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, want);
    }
    // A wrapper-mode address needs a certificate even at level none.
    const dir = await makeWorkDir("tls-bad");
    const { configFile } = await writeConfig(dir, 'smtpd_tls_wrappermode_listen = ["127.0.0.1:0"]');
    const r = await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", configFile]));
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /smtpd\.toml:\d+: smtpd_tls_cert_file is required when smtpd_tls_wrappermode_listen is set/,
    );
  },
});

Deno.test({
  name:
    "tls_server_sni_maps: openssl -servername gets the mapped chain (name or .parent), others the default",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("tls-sni");
    const pem = `${dir}/sni.pem`;
    const made = await run("sh", [
      "-c",
      `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ${dir}/sk.pem ` +
      `-out ${dir}/sc.pem -days 2 -subj /CN=sni.example 2>&1 && cat ${dir}/sk.pem ${dir}/sc.pem > ${pem}`,
    ]);
    assert.equal(made.code, 0, made.stdout);
    await Deno.writeTextFile(`${dir}/sni`, `sni.example ${pem}\n.sub.example ${pem}\n`);
    const { d, port } = await wrapperDaemon(`tls_server_sni_maps = ["texthash:${dir}/sni"]`);
    try {
      const subject = async (name: string) =>
        /subject=CN ?= ?([\w.]+)/.exec(await openssl(port, "-servername", name))?.[1];
      assert.equal(await subject("sni.example"), "sni.example");
      assert.equal(await subject("SNI.Example"), "sni.example");
      assert.equal(await subject("a.b.sub.example"), "sni.example");
      assert.equal(await subject("sub.example"), "mx.test.example"); // ".sub.example" is for subdomains
      assert.equal(await subject("other.example"), "mx.test.example");
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "tls_server_sni_maps: two chains for one name, or an unreadable chain, stop the start with file and line",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("tls-sni-bad");
    const tls = await tlsCertConfig(dir, "may");
    const ec = await makeTestCert(dir, { ecdsa: true });
    const read = (f: string) => Deno.readTextFileSync(f);
    await Deno.writeTextFile(`${dir}/rsa.pem`, read(`${dir}/key.pem`) + read(`${dir}/cert.pem`));
    await Deno.writeTextFile(`${dir}/ecchain.pem`, read(ec.key) + read(ec.cert));
    await Deno.writeTextFile(`${dir}/sni`, `a.example ${dir}/rsa.pem, ${dir}/ecchain.pem\n`);
    const { configFile } = await writeConfig(
      dir,
      `${tls}\ntls_server_sni_maps = ["texthash:${dir}/sni"]`,
    );
    const r = await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", configFile]));
    assert.equal(r.code, 1, r.stderr);
    // The configuration's line, and the table's own file and line.
    assert.match(
      r.stderr,
      /smtpd\.toml:\d+: tls_server_sni_maps: \S+\/sni:1: a\.example: "\S+\/rsa\.pem" \+ "\S+\/ecchain\.pem": 2 private keys: one chain per name/,
    );
    // The key's file and the chain's, as Postfix takes them: one chain.
    await Deno.writeTextFile(`${dir}/sni`, `a.example ${dir}/key.pem, ${dir}/cert.pem\n`);
    const split = await run(
      Deno.execPath(),
      await smtpdArgs(["config", "--check", "-c", configFile]),
    );
    assert.equal(split.code, 0, split.stderr);
    // A table line that is not "name value", and a file that is no key and
    // chain: the start stops, naming the table's file and line.
    await Deno.writeTextFile(`${dir}/sni`, `# names\nb.example ${dir}/rsa.pem\nc.example\n`);
    const started = await run(Deno.execPath(), await smtpdArgs(["serve", "-c", configFile]));
    assert.equal(started.code, 1, started.stderr);
    assert.match(
      started.stderr,
      /smtpd\.toml:\d+: tls_server_sni_maps: \S+\/sni:3: missing value for key "c\.example"/,
    );
    await Deno.writeTextFile(`${dir}/sni`, `# names\n\nc.example ${dir}/cert.pem\n`);
    const r1 = await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", configFile]));
    assert.equal(r1.code, 1, r1.stderr);
    assert.match(
      r1.stderr,
      /tls_server_sni_maps: \S+\/sni:3: c\.example: "\S+\/cert\.pem" must hold a private key and a chain/,
    );
    await Deno.writeTextFile(`${dir}/sni`, `a.example ${dir}/missing.pem\n`);
    const r2 = await run(Deno.execPath(), [
      "run",
      "-A",
      "mod.ts",
      "config",
      "--check",
      "-c",
      configFile,
    ]);
    assert.equal(r2.code, 1, r2.stderr);
    assert.match(
      r2.stderr,
      /smtpd\.toml:\d+: tls_server_sni_maps: \S+\/sni:1: a\.example: cannot read ".*missing\.pem"/,
    );
  },
});
