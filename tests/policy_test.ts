/**
 * Restrictions end to end: the relay battery over TCP from a client outside
 * mynetworks, DNS checks against a real dnsmasq on loopback (and a name
 * server that never answers), smtpd explain, and start-up errors.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startBlackHole, startDns } from "./_dns.ts";
import {
  makeWorkDir,
  RawClient,
  ROOT,
  run,
  smtpdArgs,
  startDaemon,
  writeConfig,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** The relay battery: address tricks that must never relay. */
export const RELAY_BATTERY = [
  "<user@other.example>",
  "<user%other.example@example.com>",
  "<other.example!user@example.com>",
  "<@example.com:user@other.example>",
  '<"user@other.example"@example.com>',
  '<"user%other.example"@example.com>',
  "<user@other.example@example.com>",
  "<user@other.example.>",
  "<user@[192.0.2.9]>",
  "<USER@OTHER.EXAMPLE>",
  "<user@example.com.other.example>",
  "<user@example.net>",
];

Deno.test({
  name: "relay battery: a client outside mynetworks cannot relay by any address trick",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      'mynetworks = ["127.0.0.2/32"]\nmydestination = ["example.com"]\nrelay_domains = ["example.com"]\nsmtpd_peername_lookup = false\nsmtpd_soft_error_limit = 100\nsmtpd_hard_error_limit = 100',
    );
    const c = await RawClient.connect(d.port);
    const seen: string[] = [];
    try {
      await c.reply();
      await c.send("EHLO outside.example\r\nMAIL FROM:<a@sender.example>\r\n");
      await c.reply();
      await c.reply();
      for (const rcpt of RELAY_BATTERY) {
        await c.send(`RCPT TO:${rcpt}\r\n`);
        const r = await c.reply();
        seen.push(`${rcpt} -> ${r.trim()}`);
        assert.match(r, /^[45]\d\d /, `${rcpt} must be refused, got ${r}`);
      }
      // Ours however written. A source route is dropped, as Postfix's smtpd
      // drops it (Postfix 3.7 accepts it too, see
      // tests/resolve_parity_postfix_test.ts): it is queued and delivered
      // as user@example.com, never through other.example. Routing that
      // leads back to us is ours too.
      for (
        const rcpt of [
          "<user@example.com>",
          "<USER@Example.COM>",
          "<user@example.com.>",
          "<@other.example:user@example.com>",
          "<user%example.com@example.com>",
        ]
      ) {
        await c.send(`RCPT TO:${rcpt}\r\n`);
        const r = await c.reply();
        seen.push(`${rcpt} -> ${r.trim()}`);
        assert.equal(r, "250 2.1.5 Ok\r\n", rcpt);
      }
      // deno-lint-ignore no-console
      console.log(seen.join("\n"));
    } finally {
      c.close();
      await d.stop();
    }
  },
});

const SMTPLIB_FROM = `
import smtplib, sys
port, src, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = smtplib.SMTP("127.0.0.1", port, source_address=(src, 0))
s.ehlo(sys.argv[4] if len(sys.argv) > 4 else "client.good.example")
s.mail("a@good.example")
code, msg = s.rcpt(rcpt)
print(code, msg.decode())
s.quit()
`;

async function rcptFrom(
  port: number,
  source: string,
  rcpt: string,
  helo?: string,
): Promise<string> {
  const r = await run("python3", [
    "-c",
    SMTPLIB_FROM,
    String(port),
    source,
    rcpt,
    ...(helo ? [helo] : []),
  ]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

Deno.test({
  name:
    "reject_dnsbl_score against dnsmasq: two lists refuse, one does not, an allow list offsets, a dead list adds nothing",
  ...opts,
  fn: async () => {
    // .21: on both block lists (2 + 1); .22: on the small one only (1);
    // .23: on the big one and the allow list (2 - 5).
    const dns = await startDns({
      a: [
        ["21.0.0.127.big.example", "127.0.0.2"],
        ["21.0.0.127.small.example", "127.0.0.3"],
        ["22.0.0.127.small.example", "127.0.0.2"],
        ["23.0.0.127.big.example", "127.0.0.2"],
        ["23.0.0.127.allow.example", "127.0.0.10"],
        // .24: the big list answers "you query too much", a list error.
        ["24.0.0.127.big.example", "127.255.255.254"],
      ],
    });
    const hole = await startBlackHole();
    const d = await startDaemon([
      `dns_server = "127.0.0.1:${dns.port}"`,
      "smtpd_peername_lookup = false",
      'mynetworks = ["127.0.0.2/32"]',
      'mydestination = ["example.com"]',
      'smtpd_dnsbl_sites = ["big.example*2", "small.example=127.0.0.[2..3]", "allow.example*-5"]',
      "smtpd_dnsbl_threshold = 3",
      'smtpd_recipient_restrictions = ["reject_dnsbl_score", "permit_auth_destination", "reject"]',
    ].join("\n"));
    try {
      assert.equal(
        await rcptFrom(d.port, "127.0.0.21", "u@example.com"),
        "554 5.7.1 Service unavailable; Client host [127.0.0.21] blocked using DNSBL score 3 (big.example, small.example)",
      );
      assert.equal(await rcptFrom(d.port, "127.0.0.22", "u@example.com"), "250 2.1.5 Ok");
      assert.equal(await rcptFrom(d.port, "127.0.0.23", "u@example.com"), "250 2.1.5 Ok");
      // A list error counts nothing, and is logged as reject_rbl_client logs it.
      assert.equal(await rcptFrom(d.port, "127.0.0.24", "u@example.com"), "250 2.1.5 Ok");
      await d.waitForLog("big.example: list error answer 127.255.255.254 for 127.0.0.24 ignored");
    } finally {
      await d.stop();
    }
    // A resolver that never answers: every list fails, the client is not refused (nor deferred).
    const dead = await startDaemon([
      `dns_server = "127.0.0.1:${hole.port}"`,
      "dns_timeout = 1",
      "smtpd_peername_lookup = false",
      'mydestination = ["example.com"]',
      'smtpd_dnsbl_sites = ["big.example*3"]',
      'smtpd_recipient_restrictions = ["reject_dnsbl_score", "permit_auth_destination", "reject"]',
    ].join("\n"));
    try {
      assert.equal(await rcptFrom(dead.port, "127.0.0.21", "u@example.com"), "250 2.1.5 Ok");
      await dead.waitForLog("21.0.0.127.big.example: RBL lookup error");
    } finally {
      await dead.stop();
      hole.stop();
      await dns.stop();
    }
  },
});

Deno.test({
  name: "DNS checks against dnsmasq: client names, blocklist with TXT text, list errors, domains",
  ...opts,
  fn: async () => {
    // Deno's resolver answers 127.x PTR and "localhost" itself (RFC 6761), so
    // on loopback 127.0.0.1 is forward-confirmed as "localhost" and other
    // 127.x clients are not. dnsmasq serves the rest: .11 is listed
    // (127.0.0.2 plus TXT), .12 gets the 127.255.255.254 list error, and
    // 192.0.2.9 has a real PTR/A pair (checked through smtpd explain).
    const dnsAll = await startDns({
      a: [
        ["mail.good.example", "192.0.2.9"],
        ["mx.good.example", "127.0.0.9"],
        ["11.0.0.127.bl.example", "127.0.0.2"],
        ["12.0.0.127.bl.example", "127.255.255.254"],
      ],
      ptr: [["192.0.2.9", "mail.good.example"], ["192.0.2.10", "forged.good.example"]],
      mx: [["good.example", "mx.good.example", 10]],
      txt: [["11.0.0.127.bl.example", "Listed for testing: see https://bl.example/11"]],
    });
    const d = await startDaemon([
      `dns_server = "127.0.0.1:${dnsAll.port}"`,
      'mynetworks = ["127.0.0.2/32"]',
      'mydestination = ["example.com"]',
      'smtpd_recipient_restrictions = ["reject_rbl_client", "bl.example", "reject_unknown_client_hostname", "reject_unknown_sender_domain", "reject_unknown_helo_hostname", "permit_auth_destination", "reject"]',
    ].join("\n"));
    try {
      // Forward-confirmed name, MX'd sender domain, resolvable HELO: accepted.
      assert.equal(
        await rcptFrom(d.port, "127.0.0.1", "u@example.com", "mx.good.example"),
        "250 2.1.5 Ok",
      );
      // Whatever the local resolver calls 127.0.0.1, it is forward-confirmed, not "unknown".
      await d.waitForLog(/connect from (?!unknown)[^ []+\[127\.0\.0\.1\]/);
      // An unknown HELO name: 450 4.7.1 Host not found.
      assert.equal(
        await rcptFrom(d.port, "127.0.0.1", "u@example.com", "nohost.good.example"),
        "450 4.7.1 <nohost.good.example>: Helo command rejected: Host not found",
      );
      // PTR without a matching A record: unknown client, 450.
      assert.equal(
        await rcptFrom(d.port, "127.0.0.10", "u@example.com", "mail.good.example"),
        "450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.10]",
      );
      // Listed: refused with the TXT text.
      assert.equal(
        await rcptFrom(d.port, "127.0.0.11", "u@example.com"),
        "554 5.7.1 Service unavailable; Client host [127.0.0.11] blocked using bl.example; Listed for testing: see https://bl.example/11",
      );
      // 127.255.255.254 is a list error, not a listing: the next rule decides (no PTR: 450).
      const r12 = await rcptFrom(d.port, "127.0.0.12", "u@example.com");
      assert.match(
        r12,
        /^450 4\.7\.25 Client host rejected: cannot find your hostname, \[127\.0\.0\.12\]/,
      );
      await d.waitForLog("list error answer 127.255.255.254");
      // A real PTR + A pair from dnsmasq, seen through smtpd explain with the same resolver.
      const work = await makeWorkDir("explain-dns");
      const { configFile } = await writeConfig(work, `dns_server = "127.0.0.1:${dnsAll.port}"`);
      const good = await run(
        Deno.execPath(),
        await smtpdArgs(["explain", "-c", configFile, "--client", "192.0.2.9", "--json"]),
      );
      assert.equal(JSON.parse(good.stdout).client.name, "mail.good.example");
      const forged = await run(
        Deno.execPath(),
        await smtpdArgs(["explain", "-c", configFile, "--client", "192.0.2.10", "--json"]),
      );
      const fc = JSON.parse(forged.stdout).client;
      assert.equal(fc.name, "unknown");
      assert.equal(fc.reverseName, "forged.good.example");
    } finally {
      await d.stop();
      await dnsAll.stop();
    }
  },
});

Deno.test({
  name: "a name server that never answers is a temporary failure: 450, never 5xx, never a permit",
  ...opts,
  fn: async () => {
    const hole = await startBlackHole();
    const d = await startDaemon([
      `dns_server = "127.0.0.1:${hole.port}"`,
      "dns_timeout = 1",
      "smtpd_peername_lookup = false",
      'smtpd_recipient_restrictions = ["reject_unknown_sender_domain", "permit_mynetworks", "reject"]',
    ].join("\n"));
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("HELO x\r\nMAIL FROM:<a@slow.example>\r\nRCPT TO:<u@example.com>\r\n");
      await c.reply();
      await c.reply();
      assert.equal(
        await c.reply(10000),
        "450 4.1.8 <a@slow.example>: Sender address rejected: Domain not found\r\n",
      );
    } finally {
      c.close();
      await d.stop();
      hole.stop();
    }
  },
});

Deno.test({
  name: "smtpd explain prints the deciding rule and the reply; --json gives the same",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("explain");
    const { configFile } = await writeConfig(
      work,
      'smtpd_peername_lookup = false\nsmtpd_client_restrictions = ["check_client_access", "inline:{ 192.0.2.66=REJECT go away }"]',
    );
    const args = [
      "explain",
      "-c",
      configFile,
      "--client",
      "192.0.2.1",
      "--helo",
      "x",
      "--from",
      "a@b.example",
      "--to",
      "c@other.example",
    ];
    const text = await run(Deno.execPath(), await smtpdArgs(args));
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /try check_client_access inline:\{ 192\.0\.2\.66=REJECT go away \}/);
    assert.match(text.stdout, /lookup inline:.* key "192\.0\.2\.1": not found/);
    assert.match(text.stdout, /reply: 454 4\.7\.1 <c@other\.example>: Relay access denied/);
    assert.match(
      text.stdout,
      /decided by: smtpd_relay_restrictions: defer_unauth_destination/,
    );
    const json = await run(Deno.execPath(), await smtpdArgs([...args, "--json"]));
    const parsed = JSON.parse(json.stdout);
    const rcpt = parsed.stages.find((s: { command: string }) => s.command === "RCPT");
    assert.equal(rcpt.decision.kind, "defer");
    assert.equal(rcpt.decision.reply, "454 4.7.1 <c@other.example>: Relay access denied");
    assert.equal(rcpt.decision.by, "smtpd_relay_restrictions: defer_unauth_destination");
    const blocked = await run(
      Deno.execPath(),
      await smtpdArgs([
        "explain",
        "-c",
        configFile,
        "--client",
        "192.0.2.66",
        "--to",
        "c@example.com",
        "--json",
      ]),
    );
    const b = JSON.parse(blocked.stdout).stages.find((s: { command: string }) =>
      s.command === "RCPT"
    );
    assert.equal(
      b.decision.reply,
      "554 5.7.1 <unknown[192.0.2.66]>: Client host rejected: go away",
    );
  },
});

Deno.test({
  name: "a misspelled restriction name stops the start with file and line",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("badrule");
    const file = join(work, "smtpd.toml");
    await Deno.writeTextFile(
      file,
      `queue_directory = "${
        join(work, "spool").slice(ROOT.length)
      }"\nsmtpd_listen = ["127.0.0.1:0"]\n\nsmtpd_recipient_restrictions = [\n  "permit_mynetworks",\n  "reject_unauth_destinaton",\n]\n`,
    );
    const r = await run(Deno.execPath(), await smtpdArgs(["serve", "-c", file.slice(ROOT.length)]));
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /smtpd\.toml:6: smtpd_recipient_restrictions: unknown restriction "reject_unauth_destinaton" \(did you mean "reject_unauth_destination"\?\)/,
    );
  },
});

Deno.test({
  name: "config --check warns about an open relay and unreachable rules",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("audit");
    const { configFile } = await writeConfig(
      work,
      'smtpd_recipient_restrictions = ["permit", "reject_unauth_destination"]',
    );
    const r = await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", configFile]));
    assert.equal(r.code, 0);
    assert.match(r.stderr, /untrusted clients may relay to any domain/);
    assert.match(r.stderr, /"reject_unauth_destination" can never be reached after "permit"/);
  },
});
