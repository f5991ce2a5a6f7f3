/**
 * The notify_classes transcript carries what the client sent, UTF-8
 * included (SMTPUTF8 addresses, any command text). Postfix's own notice
 * makes no encoding claim; ours claimed "encoding=7bit" for 8-bit content,
 * which tells Postfix's delivery agents that no 8BITMIME is needed.
 */

import assert from "node:assert/strict";
import { freePort, postcat, queueFiles, RawClient, startDaemon } from "./_harness.ts";

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

/**
 * Runs one RCPT refused by a restriction that cannot get its answer, under
 * notify_classes without and with the class Postfix files it under, and
 * checks which notice goes to the postmaster.
 * @param restrictions smtpd_recipient_restrictions (TOML) and more lines
 * @param refusal the RCPT's reply
 * @param want the class Postfix files it under
 */
async function noticeClassOf(restrictions: string, refusal: RegExp, want: string): Promise<void> {
  for (const [classes, expect] of [[`["resource", "software"]`, ""], [`["${want}"]`, want]]) {
    const d = await startDaemon(`notify_classes = ${classes}
${restrictions}`);
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("HELO x\r\n");
      await c.reply();
      await c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nQUIT\r\n");
      assert.match(await c.reply(), /^250 /);
      assert.match(await c.reply(), refusal);
      await c.reply();
      await d.waitForLog(/disconnect from /);
      if (expect) await d.waitForLog(`notice of ${expect} problems sent to postmaster`);
      // A notice is queued after the disconnect line, and the session keeps
      // its slot until it is: a stop waits for it, and the log is complete
      // once the daemon has exited (not after a guessed 300 ms).
      else await d.stop();
      assert.equal(
        d.log().match(/notice of (\w+(, )?)+ problems/)?.[0],
        expect ? `notice of ${expect} problems` : undefined,
        d.log(),
      );
    } finally {
      c.close();
      await d.stop();
    }
  }
}

// A policy server that cannot be asked gets its default action, 451 4.3.5
// "Server configuration problem": a policy refusal, as in Postfix (a table
// result), not a software problem. Filed by its code, it mailed the
// postmaster a "software problems" notice for every session while the
// server was down, under the default notify_classes.
Deno.test({
  name: "notify_classes: a policy server that cannot be asked is a policy problem, not software",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const down = freePort(); // nothing listens there
    await noticeClassOf(
      `smtpd_recipient_restrictions = ["check_policy_service", "inet:127.0.0.1:${down}"]\n` +
        "smtpd_policy_service_try_limit = 1",
      /^451 4\.3\.5 <b@example\.com>: Recipient address rejected: Server configuration problem/,
      "policy",
    );
  },
});

// A table that cannot answer (451 4.3.0 Temporary lookup failure) is a data
// problem for Postfix's smtpd (its reject_dict_retry), not a resource one.
Deno.test({
  name: "notify_classes: a table that cannot answer is a data problem",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const down = freePort();
    await noticeClassOf(
      `smtpd_recipient_restrictions = ["check_sender_access", "socketmap:inet:127.0.0.1:${down}:access"]`,
      /^451 4\.3\.0 .*Temporary lookup failure/,
      "data",
    );
  },
});
