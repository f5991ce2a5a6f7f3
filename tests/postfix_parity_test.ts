/**
 * Postfix parity end to end (issue 19): the real server, Python's smtplib
 * from loopback addresses, DNS from a real dnsmasq. A null MX sender domain
 * gets 550 5.7.27, a bare IP HELO passes reject_invalid_helo_hostname, an
 * address literal without the IPv6: tag gets 501, a bare texthash: table in
 * smtpd_client_restrictions is the client access table, and an unqualified
 * postmaster is accepted before any restriction.
 */

import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { startDns } from "./_dns.ts";
import { makeWorkDir, ROOT, run, startDaemon } from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

// One session: EHLO, MAIL, RCPT; prints the RCPT reply (or the first refusal).
const SMTPLIB = `
import smtplib, sys
port, src, helo, sender, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
s = smtplib.SMTP("127.0.0.1", port, source_address=(src, 0))
s.ehlo(helo)
code, msg = s.mail(sender)
if code == 250:
    code, msg = s.rcpt(rcpt)
print(code, msg.decode())
s.quit()
`;

async function session(
  port: number,
  o: { src?: string; helo?: string; from?: string; to?: string },
): Promise<string> {
  const r = await run("python3", [
    "-c",
    SMTPLIB,
    String(port),
    o.src ?? "127.0.0.1",
    o.helo ?? "client.good.example",
    o.from ?? "a@good.example",
    o.to ?? "u@example.com",
  ]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

Deno.test({
  name:
    "Postfix parity end to end: null MX sender, bare IP HELO, [::], bare texthash: table, postmaster",
  ...opts,
  fn: async () => {
    const dns = await startDns({
      a: [["mx.good.example", "192.0.2.25"]],
      mx: [["good.example", "mx.good.example", 10], ["nullmx.example", ".", 0]],
    });
    const dir = await makeWorkDir("parity");
    const table = join(dir, "client_access");
    await Deno.writeTextFile(table, "127.0.0.3\tREJECT listed in a bare table\n");
    const d = await startDaemon(
      [
        `dns_server = "127.0.0.1:${dns.port}"`,
        'mynetworks = ["127.0.0.0/8"]',
        'mydestination = ["example.com"]',
        "smtpd_peername_lookup = false",
        `smtpd_client_restrictions = ["texthash:${relative(ROOT, table)}"]`,
        'smtpd_helo_restrictions = ["reject_invalid_helo_hostname"]',
        'smtpd_sender_restrictions = ["reject_unknown_sender_domain"]',
      ].join("\n"),
      { dir },
    );
    try {
      // Item 6: the sender's domain has a null MX (RFC 7505).
      assert.equal(
        await session(d.port, { from: "a@nullmx.example" }),
        "550 5.7.27 <a@nullmx.example>: Sender address rejected: Domain nullmx.example does not accept mail (nullMX)",
      );
      await d.waitForLog(
        /NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 550 5\.7\.27 <a@nullmx\.example>/,
      );
      // A sender domain with a real MX passes.
      assert.equal(await session(d.port, {}), "250 2.1.5 Ok");
      // Item 1: a bare IP address passes reject_invalid_helo_hostname.
      assert.equal(await session(d.port, { helo: "192.0.2.1" }), "250 2.1.5 Ok");
      // Item 2: [::] has no IPv6: tag, so it is no address literal.
      assert.equal(
        await session(d.port, { helo: "[::]" }),
        "501 5.5.2 <[::]>: Helo command rejected: invalid ip address",
      );
      // Item 7: the bare table is the client access table.
      assert.equal(
        await session(d.port, { src: "127.0.0.3" }),
        "554 5.7.1 <unknown[127.0.0.3]>: Client host rejected: listed in a bare table",
      );
      // Item 11: an unqualified postmaster is accepted before any restriction.
      assert.equal(await session(d.port, { src: "127.0.0.3", to: "postmaster" }), "250 2.1.5 Ok");
    } finally {
      await d.stop();
      await dns.stop();
    }
  },
});
