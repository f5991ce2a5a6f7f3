/**
 * The notify_classes transcript carries what the client sent, UTF-8
 * included (SMTPUTF8 addresses, any command text). Postfix's own notice
 * makes no encoding claim; ours claimed "encoding=7bit" for 8-bit content,
 * which tells Postfix's delivery agents that no 8BITMIME is needed.
 */

import assert from "node:assert/strict";
import { postcat, queueFiles, RawClient, startDaemon } from "./_harness.ts";

Deno.test({
  name: "notify_classes transcript with UTF-8 commands: kept in the body, no encoding=7bit claim",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const d = await startDaemon('notify_classes = ["protocol"]\nsmtputf8_enable = true');
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("EHLO x\r\n");
      await c.reply();
      await c.send("MAIL FROM:<\u00fc@example.org> SMTPUTF8\r\nBOGUS\r\nQUIT\r\n");
      assert.match(await c.reply(), /^250 /);
      assert.match(await c.reply(), /^500 /);
      await c.reply();
      await d.waitForLog(/notice of protocol problems sent to postmaster/);
      const [file] = await queueFiles(d.queueDir);
      assert.ok(file);
      const notice = await postcat(file);
      assert.match(notice, /^ In: {2}MAIL FROM:<\u00fc@example\.org> SMTPUTF8$/m);
      assert.doesNotMatch(notice, /encoding=7bit/, notice);
    } finally {
      c.close();
      await d.stop();
    }
  },
});
