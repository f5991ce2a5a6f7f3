/**
 * The HELO name a client gives reaches Received:, the queue file's
 * helo_name attributes and the log's `helo=<...>` field. As Postfix's smtpd
 * does, the name kept has `<>()\";@` replaced by "?", so a client cannot
 * close the comment of Received: ("from evil(trusted.example[10.0.0.1])"
 * would read as a second host and address to a Received: parser) nor the
 * brackets of a log field.
 */

import assert from "node:assert/strict";
import { postcat, queueFiles, RawClient, startDaemon } from "./_harness.ts";

Deno.test({
  name:
    "HELO name with ( ) < > \" ; @ \\: each becomes ? in Received:, helo_name and the log's helo=<>",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const d = await startDaemon(
      'smtpd_recipient_restrictions = ["check_recipient_access", "inline:{ deny.example=REJECT no }", "permit_mynetworks", "reject_unauth_destination"]',
    );
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send('EHLO evil(trusted.example[10.0.0.1])<a>"b";c@d\\e\r\n');
      assert.match(await c.reply(), /^250-/);
      await c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<u@deny.example>\r\n");
      assert.match(await c.reply(), /^250 /);
      assert.match(await c.reply(), /^554 /);
      await c.send("RCPT TO:<u@example.com>\r\nDATA\r\n");
      assert.match(await c.reply(), /^250 /);
      assert.match(await c.reply(), /^354 /);
      await c.send("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n");
      assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as/);
      await c.reply();
      await d.waitForLog(/disconnect from unknown\[127\.0\.0\.1\]/);
      const kept = "evil?trusted.example[10.0.0.1]??a??b??c?d?e";
      assert.ok(d.log().includes(`proto=ESMTP helo=<${kept}>\n`), d.log());
      const [file] = await queueFiles(d.queueDir);
      assert.ok(file);
      const dump = await postcat(file);
      assert.ok(dump.includes(`Received: from ${kept} (unknown [127.0.0.1])\n`), dump);
      assert.ok(dump.includes(`named_attribute: helo_name=${kept}\n`), dump);
      assert.ok(dump.includes(`named_attribute: log_helo_name=${kept}\n`), dump);
    } finally {
      c.close();
      await d.stop();
    }
  },
});
