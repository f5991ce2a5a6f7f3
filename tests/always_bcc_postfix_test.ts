/**
 * always_bcc with a real Postfix behind us: Postfix's cleanup adds the
 * copy's recipient with NOTIFY=NEVER, so when the copy cannot be delivered
 * the sender gets no bounce (which would name the archive address). The
 * same message goes to our daemon (always_bcc in our configuration) and to
 * the private Postfix's own smtpd (always_bcc in its main.cf, the
 * reference); the archive address's domain is routed to Postfix's error
 * transport, so both copies bounce, and the sender's mailbox must stay
 * free of reports. Needs root and Postfix.
 */

import assert from "node:assert/strict";
import { freePort, greeted, makeWorkDir, queuedThenQuit, sleep, startDaemon } from "./_harness.ts";
import { havePostfix, startPostfix } from "./_postfix.ts";

const isRoot = Deno.uid() === 0;
const hasPostfix = await havePostfix();

async function send(port: number, sender: string): Promise<string> {
  const c = await greeted(port);
  try {
    for (
      const [cmd, want] of [
        [`MAIL FROM:<${sender}>`, /^250 /],
        ["RCPT TO:<rcpt@example.com>", /^250 /],
        ["DATA", /^354 /],
      ] as const
    ) {
      await c.send(`${cmd}\r\n`);
      assert.match(await c.reply(), want);
    }
    await c.send(`From: <${sender}>\r\nSubject: bcc test\r\n\r\nbody\r\n.\r\n`);
    const last = await c.reply();
    return await queuedThenQuit(c, last);
  } finally {
    c.close();
  }
}

Deno.test({
  name:
    "an always_bcc copy that bounces is not reported to the sender, as with Postfix's own smtpd",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("always-bcc");
    const pfPort = freePort();
    const pf = await startPostfix(dir, {
      name: "alwaysbcc",
      smtpdPort: pfPort,
      mainCfExtra: [
        "always_bcc = archive@bounce.example",
        "transport_maps = inline:{ bounce.example=error:archive-unavailable }",
        "",
      ].join("\n"),
    });
    let daemon;
    try {
      daemon = await startDaemon(`${pf.smtpdConfig}\nalways_bcc = "archive@bounce.example"`, {
        dir,
      });
      const theirs = await send(pfPort, "theirs@s.example");
      const ours = await send(daemon.port, "ours@s.example");
      for (const id of [theirs, ours]) {
        // Postfix's qmgr on a loaded host: more than the default 20 s.
        await pf.waitForLog(
          `${id}: the copy bounced`,
          new RegExp(`${id}: to=<archive@bounce\\.example>.*status=bounced`),
          60_000,
        );
        await pf.waitForLog(`${id}: removed`, new RegExp(`${id}: removed`), 60_000);
      }
      // A report would be written by the bounce daemon after the removal; give it time.
      await sleep(1500);
      const log = await pf.logText();
      assert.doesNotMatch(log, /sender non-delivery notification/, log);
      const box = await pf.mailboxText();
      assert.equal(box.match(/^Subject: bcc test$/gm)?.length, 2, box);
      assert.doesNotMatch(box, /Undelivered Mail Returned to Sender/, box);
    } finally {
      await daemon?.stop();
      await pf.stop();
    }
  },
});
