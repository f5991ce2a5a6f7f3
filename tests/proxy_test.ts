/**
 * PROXY protocol end to end: Debian's HAProxy on loopback with
 * send-proxy-v2 in front of two `smtpd serve` instances that share nothing;
 * the queued messages and the logs show the real client address. Also v1
 * by hand, a missing header, and stand-alone mode with a header on stdin.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fakePolicyServer } from "./_policy_servers.ts";
import {
  type Daemon,
  freePort,
  type Haproxy,
  makeWorkDir,
  postcat,
  queueFiles,
  RawClient,
  run,
  runStdin,
  smtpdArgs,
  startDaemon,
  startHaproxy,
  tlsCertConfig,
  writeConfig,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const PROXY_EXTRA =
  'smtpd_upstream_proxy_protocol = "haproxy"\nsmtpd_peername_lookup = false\nmynetworks = ["127.0.0.0/8", "192.0.2.0/24"]';

const SEND_FROM = `
import smtplib, sys
port, src, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for i in range(n):
    with smtplib.SMTP("127.0.0.1", port, source_address=(src, 0)) as s:
        s.sendmail("p@sender.example", ["u@example.com"], b"Subject: via haproxy %d\\r\\n\\r\\nbody\\r\\n" % i)
print("sent", n)
`;

Deno.test({
  name: "HAProxy with send-proxy-v2 in front of two instances: queue and log show the real client",
  ignore: (await run("sh", ["-c", "command -v haproxy"])).code !== 0,
  ...opts,
  fn: async () => {
    const a = await startDaemon(PROXY_EXTRA);
    const b = await startDaemon(PROXY_EXTRA);
    let haproxy: Haproxy | undefined;
    try {
      haproxy = await startHaproxy(await makeWorkDir("haproxy"), {
        servers: [a.port, b.port],
        proxy: "send-proxy-v2",
      });
      const front = haproxy.port;
      const r = await run("python3", ["-c", SEND_FROM, String(front), "127.0.0.7", "4"]);
      assert.equal(r.code, 0, r.stderr);
      const files = [...await queueFiles(a.queueDir), ...await queueFiles(b.queueDir)];
      assert.equal(files.length, 4);
      assert.ok(
        (await queueFiles(a.queueDir)).length > 0 && (await queueFiles(b.queueDir)).length > 0,
        "both instances served",
      );
      for (const f of files) {
        const pc = await postcat(f);
        assert.match(pc, /^Received: from \[?127\.0\.0\.1\]? \(unknown \[127\.0\.0\.7\]\)$/m);
        assert.match(pc, /^named_attribute: client_address=127\.0\.0\.7$/m);
      }
      await a.waitForLog("connect from unknown[127.0.0.7]");
      await b.waitForLog("connect from unknown[127.0.0.7]");
      // Every queued message names the real client (the readiness probe above came from 127.0.0.1).
      const logs = a.log() + b.log();
      assert.equal(logs.match(/: client=unknown\[127\.0\.0\.7\]/g)?.length, 4);
      assert.doesNotMatch(logs, /: client=unknown\[127\.0\.0\.1\]/);
    } finally {
      await haproxy?.stop();
      await a.stop();
      await b.stop();
    }
  },
});

Deno.test({
  name:
    "PROXY v1 header by hand; no header drops the connection; restrictions see the proxied client",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      'smtpd_upstream_proxy_protocol = "haproxy"\nsmtpd_peername_lookup = false\nsmtpd_upstream_proxy_timeout = 1\nmydestination = ["example.com"]',
    );
    try {
      const c = await RawClient.connect(d.port);
      await c.send("PROXY TCP4 203.0.113.9 127.0.0.1 40001 25\r\n");
      assert.match(await c.reply(), /^220 /);
      await c.send(
        "HELO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@elsewhere.example>\r\nQUIT\r\n",
      );
      await c.reply();
      await c.reply();
      // 203.0.113.9 is outside mynetworks: relaying is refused although the TCP peer is 127.0.0.1.
      assert.equal(await c.reply(), "454 4.7.1 <u@elsewhere.example>: Relay access denied\r\n");
      c.close();
      await d.waitForLog("NOQUEUE: reject: RCPT from unknown[203.0.113.9]");
      const bad = await RawClient.connect(d.port);
      await bad.send("EHLO not-a-proxy-header\r\n");
      assert.equal(await bad.reply(), "", "dropped without a greeting");
      bad.close();
      await d.waitForLog(/haproxy read: no PROXY header/);
      const silent = await RawClient.connect(d.port);
      // Dropped after smtpd_upstream_proxy_timeout (1 s), not smtpd_timeout
      // (300 s); the wait has room for a loaded host.
      assert.equal(await silent.reply(15_000), "", "dropped after smtpd_upstream_proxy_timeout");
      silent.close();
      await d.waitForLog(/haproxy read: timeout/);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "stand-alone mode with a network client (tcpserver behind a balancer) takes a PROXY v2 header on stdin",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("proxy");
    const { configFile, queueDir } = await writeConfig(
      work,
      'smtpd_upstream_proxy_protocol = "haproxy"\nsmtpd_peername_lookup = false\nmydestination = ["example.com"]',
    );
    const header = new Uint8Array([
      0x0d,
      0x0a,
      0x0d,
      0x0a,
      0x00,
      0x0d,
      0x0a,
      0x51,
      0x55,
      0x49,
      0x54,
      0x0a,
      0x21,
      0x11,
      0x00,
      0x0c,
      192,
      0,
      2,
      44,
      127,
      0,
      0,
      1,
      0x9c,
      0x41,
      0x00,
      0x19,
    ]);
    const session = new TextEncoder().encode(
      "HELO p\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@example.com>\r\nDATA\r\nSubject: p\r\n\r\nb\r\n.\r\nQUIT\r\n",
    );
    const input = new Uint8Array(header.length + session.length);
    input.set(header);
    input.set(session, header.length);
    // The launcher names the balancer, as tcpserver does.
    const r = await runStdin(configFile, input, {
      TCPREMOTEIP: "127.0.0.1",
      TCPREMOTEPORT: "40000",
    });
    assert.match(r.stdout, /250 2\.0\.0 Ok: queued as/);
    assert.match(r.stderr, /connect from unknown\[192\.0\.2\.44\]/);
    const [f] = await queueFiles(queueDir, "maildrop");
    assert.match(await postcat(f as string), /^named_attribute: client_address=192\.0\.2\.44$/m);
  },
});

const MESSAGE =
  "HELO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@example.com>\r\nDATA\r\nSubject: p\r\n\r\nb\r\n.\r\nQUIT\r\n";

Deno.test({
  name:
    "a local submission (smtpd stdin on a pipe) with smtpd_upstream_proxy_protocol set reads no header and is served, as Postfix's stand-alone smtpd",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("proxy");
    // One configuration for the daemon behind HAProxy and for local submissions.
    const { configFile, queueDir } = await writeConfig(
      work,
      'smtpd_upstream_proxy_protocol = "haproxy"\nsmtpd_peername_lookup = false\nmydestination = ["example.com"]',
    );
    const r = await runStdin(configFile, MESSAGE);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^220 /);
    assert.match(r.stdout, /250 2\.0\.0 Ok: queued as/, r.stdout + r.stderr);
    assert.match(r.stderr, /connect from localhost\[127\.0\.0\.1\]/);
    assert.doesNotMatch(r.stderr, /haproxy read/);
    const [f] = await queueFiles(queueDir, "maildrop");
    assert.match(await postcat(f as string), /^Subject: p$/m);
  },
});

Deno.test({
  name:
    "a PROXY v1 header with an ESC or a bare CR in the address is dropped: nothing logged or queued",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      'smtpd_upstream_proxy_protocol = "haproxy"\nsmtpd_peername_lookup = false\nmydestination = ["example.com"]',
    );
    try {
      const headers = [
        "PROXY TCP4 \x1b[2J\x1b]0;pwned\x07203.0.113.9 127.0.0.1 40001 25\r\n",
        "PROXY TCP4 203.0.113.9\rX 127.0.0.1 40001 25\r\n",
        "PROXY TCP4 203.0.113.010 127.0.0.1 40001 25\r\n",
      ];
      for (const h of headers) {
        const c = await RawClient.connect(d.port);
        try {
          // Latin-1 bytes as they are, then a whole transaction pipelined behind the header.
          await c.send(Uint8Array.from(h + MESSAGE, (ch) => ch.charCodeAt(0)));
          assert.equal(await c.reply(), "", `dropped without a greeting: ${JSON.stringify(h)}`);
        } finally {
          c.close();
        }
      }
      await d.waitForLog(/(haproxy read: .*dropping connection[^]*){3}/);
      const log = d.log();
      for (const c of ["\x1b", "\x07", "\r"]) {
        assert.ok(!log.includes(c), `no ${JSON.stringify(c)} of the header in the log`);
      }
      assert.doesNotMatch(log, /203\.0\.113/, "nothing of the address in the log");
      assert.equal((await queueFiles(d.queueDir)).length, 0, "nothing queued");
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "a PROXY header from a balancer outside smtpd_upstream_proxy_networks is refused",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      'smtpd_upstream_proxy_protocol = "haproxy"\nsmtpd_peername_lookup = false\n' +
        'mydestination = ["example.com"]\nsmtpd_upstream_proxy_networks = ["192.0.2.0/24"]\n' +
        'mynetworks = ["203.0.113.0/24"]',
    );
    try {
      const c = await RawClient.connect(d.port);
      try {
        // A client in mynetworks, claimed by an untrusted "balancer" (127.0.0.1).
        await c.send("PROXY TCP4 203.0.113.9 127.0.0.1 40001 25\r\n" + MESSAGE);
        assert.equal(await c.reply(), "", "dropped without a greeting");
      } finally {
        c.close();
      }
      await d.waitForLog(
        "haproxy read: connection from [127.0.0.1]:",
      );
      assert.match(d.log(), /is not in smtpd_upstream_proxy_networks: dropping connection/);
      assert.doesNotMatch(d.log(), /connect from unknown\[203\.0\.113\.9\]/);
      assert.equal((await queueFiles(d.queueDir)).length, 0, "nothing queued");
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "smtpd_upstream_proxy_networks with a bad entry stops the start with file and line",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("proxy");
    const { configFile } = await writeConfig(
      work,
      'smtpd_upstream_proxy_protocol = "haproxy"\nsmtpd_upstream_proxy_networks = ["127.0.0.010/32"]',
    );
    const r = await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", configFile]));
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /smtpd\.toml:6: smtpd_upstream_proxy_networks: cannot parse network "127\.0\.0\.010\/32"/,
    );
  },
});

/**
 * Connects as the balancer does for a client (a PROXY v1 header naming it);
 * `held` keeps the connection for the clean-up.
 * @returns the reply to the header (the greeting, or a refusal)
 */
async function proxiedReply(port: number, address: string, held: RawClient[]): Promise<string> {
  const c = await RawClient.connect(port);
  held.push(c);
  const v6 = address.includes(":");
  await c.send(`PROXY ${v6 ? "TCP6" : "TCP4"} ${address} ${v6 ? "::1" : "127.0.0.1"} 40001 25\r\n`);
  return await c.reply();
}

/** The per-client slot a fixed FNV-1a hash would give: what an attacker can compute. */
function fixedSlot(address: string): number {
  let h = 2166136261;
  for (let i = 0; i < address.length; i++) h = Math.imul(h ^ address.charCodeAt(i), 16777619);
  return (h >>> 0) % 65536;
}

Deno.test({
  name:
    "per-client limit behind PROXY: addresses chosen to share a victim's slot do not lock the victim out",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      'smtpd_upstream_proxy_protocol = "haproxy"\nsmtpd_peername_lookup = false\n' +
        "smtpd_client_connection_count_limit = 2\nsmtpd_client_event_limit_exceptions = []\n" +
        // Each address counted apart (the victims share one /84).
        "smtpd_client_ipv6_prefix_length = 128",
    );
    const held: RawClient[] = [];
    try {
      // Three victims; for each, an attacker address with the same fixed-hash slot
      // (all in canonical text, as the server writes a PROXY header's address).
      const pairs: [string, string][] = [];
      for (let v = 1; pairs.length < 3; v++) {
        const victim = `2001:db8::${v.toString(16)}`;
        for (let n = 0; n < 0x400000; n++) {
          const attacker = `2001:db8:${(1 + (n >> 12)).toString(16)}:${
            (1 + (n & 0xfff)).toString(16)
          }:1:1:1:1`;
          if (fixedSlot(attacker) === fixedSlot(victim)) {
            pairs.push([victim, attacker]);
            break;
          }
        }
      }
      const proxied = (address: string) => proxiedReply(d.port, address, held);
      // Each attacker holds its two sessions: its slot is full.
      for (const [, attacker] of pairs) {
        assert.match(await proxied(attacker), /^220 /);
        assert.match(await proxied(attacker), /^220 /);
        assert.match(await proxied(attacker), /^421 4\.7\.0 .*too many connections from/);
      }
      const victims = await Promise.all(pairs.map(([victim]) => proxied(victim)));
      // Keyed with a random seed, a victim shares an attacker's slot with odds 1/65536.
      const admitted = victims.filter((r) => r.startsWith("220 "));
      assert.ok(admitted.length >= 2, victims.join(""));
    } finally {
      for (const c of held) c.close();
      await d.stop();
    }
  },
});

const HAS_HAPROXY = (await run("sh", ["-c", "command -v haproxy"])).code === 0;

Deno.test({
  name:
    "HAProxy on a UNIX-socket frontend sends PROXY UNKNOWN: dropped, not run as the balancer (no relay)",
  ignore: !HAS_HAPROXY,
  ...opts,
  fn: async () => {
    // Default mynetworks: loopback, where the balancer is.
    const d = await startDaemon(
      'smtpd_upstream_proxy_protocol = "haproxy"\nmydestination = ["example.com"]',
    );
    const dir = await makeWorkDir("haproxy");
    let haproxy: Haproxy | undefined;
    try {
      const unixSocket = join(dir, "front.sock");
      haproxy = await startHaproxy(dir, { servers: [d.port], proxy: "send-proxy", unixSocket });
      const conn = await Deno.connect({ transport: "unix", path: unixSocket });
      let got = "";
      try {
        const enc = new TextEncoder();
        await conn.write(enc.encode(
          "EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<victim@elsewhere.example>\r\nQUIT\r\n",
        ));
        const buf = new Uint8Array(65536);
        for (;;) {
          const n = await conn.read(buf).catch(() => null);
          if (n === null) break;
          got += new TextDecoder().decode(buf.subarray(0, n));
        }
      } finally {
        conn.close();
      }
      assert.doesNotMatch(got, /250 2\.1\.5/, "no relaying for a client with no address");
      assert.equal(got, "", "dropped without a greeting");
      await d.waitForLog(/haproxy read: v1 header with protocol UNKNOWN from \[127\.0\.0\.1\]/);
      assert.doesNotMatch(d.log(), /connect from /);
    } finally {
      await haproxy?.stop();
      await d.stop();
    }
  },
});

/** Five TLS sessions (wrapper mode) through a port; prints the count of greetings. */
const TLS_THROUGH = `
import socket, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ok = 0
for i in range(5):
    raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])), source_address=("127.0.0.7", 0))
    # Room for a loaded host; a lost ClientHello ends at smtpd_starttls_timeout (3 s).
    raw.settimeout(15)
    try:
        t = ctx.wrap_socket(raw)
        if t.recv(200).startswith(b"220 "): ok += 1
        t.sendall(b"QUIT\\r\\n"); t.close()
    except Exception as e:
        print("failed:", e); raw.close()
print("greetings", ok)
`;

Deno.test({
  name:
    "HAProxy send-proxy in front of a wrapper-mode (implicit TLS) port: the ClientHello behind the header is not lost",
  ignore: !HAS_HAPROXY,
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("proxy-tls");
    const wrapper = freePort();
    const d = await startDaemon(
      `smtpd_upstream_proxy_protocol = "haproxy"\nsmtpd_peername_lookup = false\n` +
        `smtpd_tls_wrappermode_listen = ["127.0.0.1:${wrapper}"]\nsmtpd_starttls_timeout = 3\n` +
        await tlsCertConfig(dir, "may"),
      { dir },
    );
    let haproxy: Haproxy | undefined;
    try {
      haproxy = await startHaproxy(dir, { servers: [wrapper], proxy: "send-proxy" });
      // HAProxy writes the header and the client's ClientHello back to back:
      // they often arrive in one read.
      const r = await run("python3", ["-c", TLS_THROUGH, String(haproxy.port)]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /greetings 5/, r.stdout);
      await d.waitForLog(
        /(Anonymous TLS connection established from unknown\[127\.0\.0\.7\][^]*){5}/,
      );
      assert.doesNotMatch(d.log(), /discarded \d+ bytes of plaintext/);
    } finally {
      await haproxy?.stop();
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "check_policy_service behind PROXY: server_address and server_port come from the header, as in Postfix",
  ...opts,
  fn: async () => {
    const policy = await fakePolicyServer({ action: "DUNNO" });
    const d = await startDaemon(
      'smtpd_upstream_proxy_protocol = "haproxy"\nsmtpd_peername_lookup = false\n' +
        'mydestination = ["example.com"]\n' +
        `smtpd_recipient_restrictions = ["check_policy_service", "inet:127.0.0.1:${policy.port}"]`,
    );
    try {
      const c = await RawClient.connect(d.port);
      try {
        await c.send("PROXY TCP4 203.0.113.9 192.0.2.25 40001 2525\r\n");
        assert.match(await c.reply(), /^220 /);
        await c.send("HELO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@example.com>\r\n");
        await c.reply();
        await c.reply();
        assert.match(await c.reply(), /^250 2\.1\.5/);
      } finally {
        c.close();
      }
      const [req] = policy.requests();
      assert.equal(req?.get("client_address"), "203.0.113.9");
      assert.equal(req?.get("client_port"), "40001");
      assert.equal(req?.get("server_address"), "192.0.2.25");
      assert.equal(req?.get("server_port"), "2525");
    } finally {
      policy.stop();
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "behind PROXY, the per-client limits count network blocks (smtpd_client_ipv6_prefix_length, smtpd_client_ipv4_prefix_length)",
  ...opts,
  fn: async () => {
    const base = 'smtpd_upstream_proxy_protocol = "haproxy"\nsmtpd_peername_lookup = false\n' +
      "smtpd_client_event_limit_exceptions = []\n";
    const refused = /^421 4\.7\.0 .*too many connections from/;
    // One daemon per configuration; `proxied` connects to the one at hand.
    const withDaemon = async (
      extra: string,
      body: (d: Daemon, proxied: (address: string) => Promise<string>) => Promise<void>,
    ) => {
      const d = await startDaemon(base + extra);
      const held: RawClient[] = [];
      try {
        await body(d, (address) => proxiedReply(d.port, address, held));
      } finally {
        for (const c of held) c.close();
        await d.stop();
      }
    };
    // The defaults: IPv6 per /84, IPv4 per address.
    await withDaemon("smtpd_client_connection_count_limit = 2", async (d, proxied) => {
      assert.match(await proxied("2001:db8:1:2:3::1"), /^220 /);
      assert.match(await proxied("2001:db8:1:2:3::2"), /^220 /);
      // Another address of the same /84: the block holds its two sessions.
      assert.match(await proxied("2001:db8:1:2:3:ab::9"), refused);
      await d.waitForLog(
        /Connection concurrency limit exceeded: 3 from \[2001:db8:1:2:3:ab:0:9\] for service smtp/,
      );
      // The next /84 is another client.
      assert.match(await proxied("2001:db8:1:2:3:1000::1"), /^220 /);
      for (const a of ["192.0.2.1", "192.0.2.2", "192.0.2.3"]) {
        assert.match(await proxied(a), /^220 /, a);
      }
    });
    // IPv4 per /24, IPv6 per address.
    await withDaemon(
      "smtpd_client_connection_count_limit = 2\n" +
        "smtpd_client_ipv4_prefix_length = 24\nsmtpd_client_ipv6_prefix_length = 128",
      async (_d, proxied) => {
        assert.match(await proxied("192.0.2.1"), /^220 /);
        assert.match(await proxied("192.0.2.2"), /^220 /);
        assert.match(await proxied("192.0.2.200"), refused);
        assert.match(await proxied("198.51.100.1"), /^220 /);
        for (const a of ["2001:db8:1:2:3::1", "2001:db8:1:2:3::2", "2001:db8:1:2:3::3"]) {
          assert.match(await proxied(a), /^220 /, a);
        }
      },
    );
    // The rate limits count the block too.
    await withDaemon(
      "smtpd_client_connection_count_limit = 0\nsmtpd_client_connection_rate_limit = 2",
      async (_d, proxied) => {
        assert.match(await proxied("2001:db8:7::1"), /^220 /);
        assert.match(await proxied("2001:db8:7::2"), /^220 /);
        assert.match(await proxied("2001:db8:7::3"), refused);
        assert.match(await proxied("2001:db8:8::1"), /^220 /);
      },
    );
  },
});

Deno.test({
  name: "behind PROXY, an exempt client's sessions do not count against the rest of its IPv6 /84",
  ...opts,
  fn: async () => {
    // A trusted host (smtpd_client_event_limit_exceptions) with a /84 it
    // shares: Postfix does not count it, so its neighbours keep their limit.
    const d = await startDaemon(
      'smtpd_upstream_proxy_protocol = "haproxy"\nsmtpd_peername_lookup = false\n' +
        'smtpd_client_connection_count_limit = 2\nsmtpd_client_event_limit_exceptions = ["[2001:db8:1:2:3::10]"]',
    );
    const held: RawClient[] = [];
    const proxied = (address: string) => proxiedReply(d.port, address, held);
    try {
      for (let i = 0; i < 3; i++) assert.match(await proxied("2001:db8:1:2:3::10"), /^220 /);
      assert.match(await proxied("2001:db8:1:2:3::20"), /^220 /);
      assert.match(await proxied("2001:db8:1:2:3::21"), /^220 /);
      assert.match(await proxied("2001:db8:1:2:3::22"), /^421 4\.7\.0 .*too many connections from/);
    } finally {
      for (const c of held) c.close();
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "behind PROXY at default_process_limit, a client over its connection rate makes no room; one within it does",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      'smtpd_upstream_proxy_protocol = "haproxy"\nsmtpd_peername_lookup = false\n' +
        "default_process_limit = 1\nsmtpd_stress_threshold = 0\n" +
        "smtpd_client_connection_rate_limit = 1\nsmtpd_client_event_limit_exceptions = []",
    );
    const clients: RawClient[] = [];
    const open = async (client: string) => {
      const c = await RawClient.connect(d.port);
      clients.push(c);
      await c.send(`PROXY TCP4 ${client} 192.0.2.100 40000 25\r\n`);
      return c;
    };
    try {
      // 192.0.2.9 spends its one connection of the time unit.
      const first = await open("192.0.2.9");
      assert.match(await first.reply(), /^220 /);
      await first.send("QUIT\r\n");
      assert.match(await first.reply(), /^221 /);
      const idle = await open("192.0.2.1");
      assert.match(await idle.reply(), /^220 /);
      // Silent past the idle threshold: it could give way.
      await new Promise((r) => setTimeout(r, 1500));
      for (let i = 0; i < 2; i++) {
        const over = await open("192.0.2.9");
        assert.equal(
          (await over.reply()).trim(),
          "421 4.7.0 mx.test.example Error: too many connections from 192.0.2.9",
        );
      }
      await idle.send("NOOP\r\n");
      assert.match(await idle.reply(), /^250 /);
      assert.equal(d.log().includes("closed the idle session"), false);
      // A client within its rate still takes the idle session's place.
      await new Promise((r) => setTimeout(r, 1500));
      const fresh = await open("192.0.2.2");
      assert.match(await fresh.reply(), /^220 /);
      assert.match(await idle.reply(), /^421 4\.3\.2 .*idle session closed to make room/);
      await d.waitForLog(/closed the idle session of \[[^\]]+\] \(silent \d+ ms\)/);
    } finally {
      for (const c of clients) c.close();
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "behind PROXY at default_process_limit, room is made by the proxied clients' sessions: an address holding busy ones takes no lone idle one",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      'smtpd_upstream_proxy_protocol = "haproxy"\nsmtpd_peername_lookup = false\n' +
        "default_process_limit = 3\nsmtpd_stress_threshold = 0\n" +
        "smtpd_client_event_limit_exceptions = []",
    );
    const clients: RawClient[] = [];
    const open = async (client: string) => {
      const c = await RawClient.connect(d.port);
      clients.push(c);
      await c.send(`PROXY TCP4 ${client} 192.0.2.100 40000 25\r\n`);
      assert.match(await c.reply(), /^(220|421) /);
      return c;
    };
    const busy: RawClient[] = [];
    // Ends right after NOOPs, not after a pause: the next client comes then,
    // and a stalled test on a loaded host does not make the busy ones idle.
    const keepBusy = async (ms: number) => {
      for (let first = true, until = Date.now() + ms; Date.now() < until; first = false) {
        if (!first) await new Promise((r) => setTimeout(r, 200));
        for (const b of busy) {
          await b.send("NOOP\r\n");
          assert.match(await b.reply(), /^250 /);
        }
      }
    };
    try {
      const lone = await open("192.0.2.1");
      busy.push(await open("192.0.2.2"), await open("192.0.2.2"));
      await keepBusy(1500);
      // A third for 192.0.2.2 waits and is refused: 192.0.2.1 keeps its session.
      const third = await RawClient.connect(d.port);
      clients.push(third);
      await third.send("PROXY TCP4 192.0.2.2 192.0.2.100 40000 25\r\n");
      assert.match(await third.reply(), /^421 4\.3\.2 .*too many connections/);
      await lone.send("NOOP\r\n");
      assert.match(await lone.reply(), /^250 /);
      await keepBusy(1300);
      // A new address takes the lone idle session's place; the log names its client.
      const fresh = await RawClient.connect(d.port);
      clients.push(fresh);
      await fresh.send("PROXY TCP4 192.0.2.3 192.0.2.100 40000 25\r\n");
      assert.match(await fresh.reply(), /^220 /);
      assert.match(await lone.reply(), /^421 4\.3\.2 .*idle session closed to make room/);
      await d.waitForLog(/closed the idle session of \[192\.0\.2\.1\] \(silent \d+ ms\)/);
    } finally {
      for (const c of clients) c.close();
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "behind PROXY at default_process_limit, at most that many connections wait for their header without a slot",
  ...opts,
  fn: async () => {
    // One listener thread: the count of connections waiting for their header
    // is per thread, and one thread takes connections in the order they came
    // (two could take `refused` on the other one, where none waits yet).
    const d = await startDaemon(
      'smtpd_upstream_proxy_protocol = "haproxy"\nsmtpd_peername_lookup = false\n' +
        "default_process_limit = 1\nsmtpd_stress_threshold = 0\nsmtpd_listen_threads = 1",
    );
    const clients: RawClient[] = [];
    try {
      const first = await RawClient.connect(d.port);
      clients.push(first);
      await first.send("PROXY TCP4 192.0.2.1 192.0.2.100 40000 25\r\n");
      assert.match(await first.reply(), /^220 /);
      // In a mail transaction the first is never idle, however long this
      // test takes on a loaded host: it cannot give way to the waiting one.
      await first.send("HELO first.example\r\nMAIL FROM:<a@first.example>\r\n");
      assert.match(await first.reply(), /^250 /);
      assert.match(await first.reply(), /^250 /);
      // One more may wait for its header; the next is refused at once. The
      // thread took `waiting` (connected) before `refused` comes: it counts
      // it as it accepts it, before it accepts the next.
      const waiting = await RawClient.connect(d.port);
      clients.push(waiting);
      const refused = await RawClient.connect(d.port);
      clients.push(refused);
      assert.match(await refused.reply(), /^421 4\.3\.2 .*too many connections/);
      // Once its header names its client it is one more at the cap (the first is busy).
      await waiting.send("PROXY TCP4 192.0.2.2 192.0.2.100 40000 25\r\n");
      assert.match(await waiting.reply(), /^421 4\.3\.2 .*too many connections/);
    } finally {
      for (const c of clients) c.close();
      await d.stop();
    }
  },
});
