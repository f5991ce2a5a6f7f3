/**
 * A recipient given twice in different case, with SMTPUTF8 and DSN
 * NOTIFY=SUCCESS: Postfix's cleanup drops the second one (its duplicate
 * filter compares the DSN facts and the address case folded), so Postfix
 * delivers one copy and reports one success. We write the queue file
 * ourselves, so we must drop it too, or Postfix's qmgr delivers it twice.
 * The same dialogue goes to our daemon and to the private Postfix's own
 * smtpd (the reference); its qmgr delivers both messages through a pipe,
 * one recipient per delivery. Needs root and Postfix.
 */

import assert from "node:assert/strict";
import {
  freePort,
  greeted,
  makeWorkDir,
  queuedThenQuit,
  startDaemon,
  waitFor,
} from "./_harness.ts";
import { havePostfix, startPostfix } from "./_postfix.ts";

const isRoot = Deno.uid() === 0;
const hasPostfix = await havePostfix();

const RCPTS = [
  "a@example.com",
  "A@Example.COM",
  "j\u00f6rg@b\u00fccher.example",
  "J\u00d6RG@B\u00dcCHER.example",
  "stra\u00dfe@example.com",
  "STRASSE@example.com",
];

/** The dialogue: SMTPUTF8, ENVID, every recipient with NOTIFY=SUCCESS, BDAT. */
async function send(port: number, subject: string): Promise<string> {
  const c = await greeted(port);
  try {
    await c.send("MAIL FROM:<s@s.example> SMTPUTF8 ENVID=DUP1\r\n");
    assert.equal(await c.reply(), "250 2.1.0 Ok\r\n");
    for (const r of RCPTS) {
      await c.send(`RCPT TO:<${r}> NOTIFY=SUCCESS\r\n`);
      assert.match(await c.reply(), /^250 2\.1\.5 /);
    }
    const body = new TextEncoder().encode(`From: <s@s.example>\r\nSubject: ${subject}\r\n\r\nx`);
    await c.send(`BDAT ${body.length} LAST\r\n`);
    await c.send(body);
    const last = await c.reply();
    return await queuedThenQuit(c, last);
  } finally {
    c.close();
  }
}

Deno.test({
  name:
    "recipients that differ only in case are delivered once and reported once, as Postfix's own smtpd has it",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("dup-rcpt");
    const pfPort = freePort();
    const pf = await startPostfix(dir, {
      name: "duprcpt",
      smtpdPort: pfPort,
      pipeFlags: "DF",
      mainCfExtra: "mbox_destination_recipient_limit = 1\n",
    });
    let daemon;
    try {
      daemon = await startDaemon(pf.smtpdConfig, { dir });
      const theirs = await send(pfPort, "theirs");
      const ours = await send(daemon.port, "ours");
      for (const id of [theirs, ours]) {
        await pf.waitForLog(`${id} done`, new RegExp(`${id}: removed`));
      }
      // The log line says a report was queued; its delivery to the mailbox comes after.
      const reportsIn = (box: string) => box.split(/^From MAILER-DAEMON /m).slice(1);
      await waitFor(
        "both reports delivered to the mailbox",
        async () => reportsIn(await pf.mailboxText()).length >= 2,
      );
      const log = await pf.logText();
      const sent = (id: string) =>
        log.split("\n").filter((l) => l.includes(`${id}: to=<`) && l.includes("status=sent"))
          .map((l) => /to=<([^>]*)>/.exec(l)?.[1]).sort();
      const want = [RCPTS[0], RCPTS[2], RCPTS[4]].sort();
      assert.deepEqual(sent(theirs), want, log);
      assert.deepEqual(sent(ours), want, log);
      // One success report for each message, three recipients in each.
      const box = await pf.mailboxText();
      const reports = reportsIn(box);
      assert.equal(reports.length, 2, box);
      for (const r of reports) {
        assert.equal(r.match(/^Final-Recipient: /gm)?.length, 3, r);
      }
    } finally {
      await daemon?.stop();
      await pf.stop();
    }
  },
});
