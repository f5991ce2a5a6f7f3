/**
 * Log injection end to end: what a client controls (HELO, addresses,
 * Message-ID, the PTR record of its address) reaches the log only through
 * the logger's sanitizer, and a malformed PTR name is "unknown" in the log
 * and in Received:. dnsmasq on loopback serves the PTR record; a PROXY
 * header gives the session a client address outside loopback. Beside the
 * log: a quoted recipient keeps its quotes in Received:, and a parameter
 * echoed in a reply has no control character left.
 */

import assert from "node:assert/strict";
import { startDns } from "./_dns.ts";
import { postcat, queueFiles, RawClient, startDaemon } from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** What must never appear inside a log line. */
// deno-lint-ignore no-control-regex
const UNSAFE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;

function unsafeLines(log: string): string[] {
  return log.split("\n").filter((line) => UNSAFE.test(line));
}

Deno.test({
  name:
    "Log injection: HELO with U+202E and U+0085, a Message-ID with ESC, a quoted local part: safe log lines",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      [
        "smtpd_peername_lookup = false",
        'debug_peer_list = ["127.0.0.1"]',
        'smtpd_recipient_restrictions = ["check_recipient_access", "inline:{ deny.example=REJECT no }", "permit_mynetworks", "reject_unauth_destination"]',
      ].join("\n"),
    );
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      const enc = new TextEncoder();
      // Raw bytes: U+202E (E2 80 AE), U+0085 (C2 85), a bare CR inside the line.
      await c.send(enc.encode("EHLO evil\u202eelpmaxe\u0085x\r\n"));
      await c.reply();
      await c.send('MAIL FROM:<"a> to=<x"@example.org>\r\n');
      assert.match(await c.reply(), /^250 /);
      await c.send("RCPT TO:<u@deny.example>\r\n");
      assert.match(await c.reply(), /^554 /);
      await c.send("RCPT TO:<u@example.com>\r\nDATA\r\n");
      assert.match(await c.reply(), /^250 /);
      assert.match(await c.reply(), /^354 /);
      await c.send(
        new Uint8Array([
          ...enc.encode("Message-ID: <"),
          0x1b,
          ...enc.encode("[2J\u2028evil@example.org>\r\nSubject: x\r\n\r\nbody\r\n.\r\n"),
        ]),
      );
      assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as/);
      await c.send("QUIT\r\n");
      await c.reply();
      await d.waitForLog(/disconnect from unknown\[127\.0\.0\.1\]/);
      const log = d.log();
      assert.deepEqual(unsafeLines(log), [], "no control, C1, bidi or separator characters");
      // The fields are where they belong: the quoted local part cannot pass for to=.
      assert.match(
        log,
        /NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 554 5\.7\.1 <u@deny\.example>: Recipient address rejected: no; from=<"a> to=<x"@example\.org> to=<u@deny\.example> proto=ESMTP helo=<evil\?elpmaxe\?x>/,
      );
      assert.match(log, /: message-id=<\?\[2J.*evil@example\.org>/);
      assert.match(log, /: from=<"a> to=<x"@example\.org>, size=/);
      assert.match(log, /< unknown\[127\.0\.0\.1\]: EHLO evil\?elpmaxe\?x/i);
    } finally {
      c.close();
      await d.stop();
    }
  },
});

Deno.test({
  name: "A PTR name that is not a host name (from dnsmasq) is unknown in the log and in Received:",
  ...opts,
  fn: async () => {
    // ü.example resolves both ways (the resolver maps it to punycode for the
    // A query), so without the check it would pass forward confirmation.
    const dns = await startDns({
      a: [["ü.example", "192.0.2.77"]],
      ptr: [["192.0.2.77", "ü.example"], ["192.0.2.78", "bad[name].example"]],
    });
    const d = await startDaemon(
      [
        'smtpd_upstream_proxy_protocol = "haproxy"',
        "smtpd_peername_lookup = true",
        `dns_server = "127.0.0.1:${dns.port}"`,
        'mynetworks = ["127.0.0.0/8", "192.0.2.0/24"]',
      ].join("\n"),
    );
    try {
      for (const ip of ["192.0.2.77", "192.0.2.78"]) {
        const c = await RawClient.connect(d.port);
        try {
          await c.send(`PROXY TCP4 ${ip} 127.0.0.1 40001 25\r\n`);
          assert.match(await c.reply(), /^220 /);
          await c.send(
            "EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n",
          );
          for (let i = 0; i < 4; i++) await c.reply();
          await c.send(`Subject: from ${ip}\r\n\r\nbody\r\n.\r\nQUIT\r\n`);
          assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as/);
          await c.reply();
        } finally {
          c.close();
        }
        await d.waitForLog(`disconnect from unknown[${ip}]`);
      }
      const log = d.log();
      assert.match(log, /connect from unknown\[192\.0\.2\.77\]/);
      assert.match(log, /warning: malformed hostname in the PTR record of 192\.0\.2\.77: /);
      assert.match(log, /connect from unknown\[192\.0\.2\.78\]/);
      assert.doesNotMatch(log, /(connect from|client=) ?(?!unknown\[)\S+\[192\.0\.2\.7/);
      const texts = await Promise.all((await queueFiles(d.queueDir)).map(postcat));
      assert.equal(texts.length, 2);
      for (const ip of ["192.0.2.77", "192.0.2.78"]) {
        const t = texts.find((x) => x.includes(`Subject: from ${ip}`));
        assert.ok(t, texts.join("\n---\n"));
        assert.match(
          t,
          new RegExp(
            `Received: from client\\.example \\(unknown \\[${ip.replace(/\./g, "\\.")}\\]\\)`,
          ),
        );
      }
    } finally {
      await d.stop();
      await dns.stop();
    }
  },
});

Deno.test({
  name: "HELO with U+0085 and U+202E: Received: and the queue file's helo_name hold ? instead",
  ...opts,
  fn: async () => {
    const d = await startDaemon("smtpd_peername_lookup = false");
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send(new TextEncoder().encode("EHLO ev\u0085il\u202e)x\r\n"));
      assert.match(await c.reply(), /^250/);
      await c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n");
      assert.match(await c.reply(), /^250 /);
      assert.match(await c.reply(), /^250 /);
      assert.match(await c.reply(), /^354 /);
      await c.send("Subject: x\r\n\r\nbody\r\n.\r\n");
      assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as/);
      await c.send("QUIT\r\n");
      await c.reply();
      const [file] = await queueFiles(d.queueDir);
      assert.ok(file, "the message was queued");
      const text = await postcat(file);
      assert.match(text, /^Received: from ev\?il\?\?x \(unknown \[127\.0\.0\.1\]\)$/m);
      assert.match(text, /^named_attribute: helo_name=ev\?il\?\?x$/m);
      assert.doesNotMatch(text, /[\u0085\u202e]/, "no C1 or bidi control in the queue file");
    } finally {
      c.close();
      await d.stop();
    }
  },
});

Deno.test({
  name:
    'A quoted recipient with "; " in it stays quoted in Received: (as Postfix), so it cannot end the address and set the date',
  ...opts,
  fn: async () => {
    const d = await startDaemon('mynetworks = ["127.0.0.0/8"]');
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("EHLO client.example\r\n");
      await c.reply();
      await c.send("MAIL FROM:<a@example.org> SMTPUTF8\r\n");
      assert.match(await c.reply(), /^250 /);
      await c.send(
        'RCPT TO:<"x>; Mon, 1 Jan 2001 00:00:00 +0000 (by forged.example) \u2028"@example.com>\r\n',
      );
      assert.match(await c.reply(), /^250 /);
      await c.send("DATA\r\n");
      assert.match(await c.reply(), /^354 /);
      await c.send("Subject: x\r\n\r\nbody\r\n.\r\n");
      assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as/);
      await c.send("QUIT\r\n");
      await c.reply();
      const [file] = await queueFiles(d.queueDir);
      assert.ok(file, "the message was queued");
      const text = await postcat(file);
      assert.match(
        text,
        /^\tfor <"x>; Mon, 1 Jan 2001 00:00:00 \+0000 \(by forged\.example\) \u2028"@example\.com>; \w{3}, /m,
      );
    } finally {
      c.close();
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "Invisible characters (zero-width, BOM, tags, noncharacters) in a UTF-8 sender and HELO are ? in the log and Received:",
  ...opts,
  fn: async () => {
    const d = await startDaemon('mynetworks = ["127.0.0.0/8"]\ndebug_peer_list = ["127.0.0.1"]');
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("EHLO mx\u200d.client.example\r\n");
      assert.match(await c.reply(), /^250/);
      // What reads as "admin@example.org" in a log that kept them.
      await c.send("MAIL FROM:<a\u200bd\ufeffm\u{e0020}i\u2060n\ufffe@example.org> SMTPUTF8\r\n");
      assert.match(await c.reply(), /^250 /);
      await c.send("RCPT TO:<u@example.com>\r\nDATA\r\n");
      assert.match(await c.reply(), /^250 /);
      assert.match(await c.reply(), /^354 /);
      await c.send("Subject: x\r\n\r\nbody\r\n.\r\n");
      assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as/);
      await c.send("QUIT\r\n");
      await c.reply();
      await d.waitForLog(/disconnect from unknown\[127\.0\.0\.1\]/);
      const log = d.log();
      assert.doesNotMatch(log, /[\u200b\u200d\u2060\ufeff\ufffe\u{e0020}]/u);
      assert.match(log, /: from=<a\?d\?m\?i\?n\?@example\.org>, size=/);
      assert.match(log, /< unknown\[127\.0\.0\.1\]: EHLO mx\?\.client\.example/);
      const [file] = await queueFiles(d.queueDir);
      assert.ok(file, "the message was queued");
      const text = await postcat(file);
      assert.match(text, /^Received: from mx\?\.client\.example \(unknown \[127\.0\.0\.1\]\)$/m);
      // The envelope keeps the address as sent (the log only shows it safely).
      assert.match(text, /^sender: a\u200bd\ufeffm\u{e0020}i\u2060n\ufffe@example\.org$/mu);
    } finally {
      c.close();
      await d.stop();
    }
  },
});

Deno.test({
  name: "555 echoes an unsupported parameter with its C1 CSI, U+2028 and U+202E as ? on the wire",
  ...opts,
  fn: async () => {
    const d = await startDaemon();
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("EHLO client.example\r\n");
      await c.reply();
      // U+009B is a terminal's CSI: "\u009b2J" clears the screen of whoever reads the reply.
      await c.send("MAIL FROM:<a@example.org> SMTPUTF8 X\u009b2J\u2028\u202e=\u00e9\r\n");
      assert.equal(await c.reply(), "555 5.5.4 Unsupported option: X?2J??=\u00e9\r\n");
      await c.send("QUIT\r\n");
      await c.reply();
    } finally {
      c.close();
      await d.stop();
    }
  },
});
