/**
 * A real Postfix consumes our output. A private Postfix instance (Debian's
 * postfix package) runs under a temporary directory, listening on nothing,
 * delivering through a pipe(8) transport into a mailbox file, and our
 * queue_directory is its queue:
 *   1. `smtpd stdin` deposits into maildrop/, Postfix's pickup takes it;
 *   2. `smtpd serve` accepts into incoming/, Postfix's qmgr takes it;
 *   3. a message deferred by a temporarily failing transport is retried at
 *      once after ETRN to our server (FADI on public/qmgr).
 * Needs root (Postfix's queue belongs to the postfix user); skipped otherwise.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  makeWorkDir,
  RawClient,
  runStdin,
  sh,
  startDaemon,
  swaks,
  waitFor,
  writeConfig,
} from "./_harness.ts";
import { havePostfix, startPostfix } from "./_postfix.ts";

const isRoot = Deno.uid() === 0;
const hasPostfix = await havePostfix();

/** Whether a file of that name is in Postfix's deferred/ queue (in its hashed subdirectories). */
async function inDeferred(queueDir: string, id: string): Promise<boolean> {
  const holds = async (dir: string): Promise<boolean> => {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory ? await holds(join(dir, e.name)) : e.name === id) return true;
    }
    return false;
  };
  return await holds(join(queueDir, "deferred")).catch(() => false);
}

Deno.test({
  name:
    "a stock Postfix delivers what smtpd stdin and smtpd serve queue, and ETRN makes qmgr retry",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("postfix");
    const pf = await startPostfix(dir, {
      name: "interop",
      // While <dir>/down exists the transport fails temporarily (EX_TEMPFAIL).
      deliver: `[ -e ${dir}/down ] && exit 75\ncat >> ${dir}/mbox/mailbox\nexit 0\n`,
    });
    const extra = pf.smtpdConfig;
    let daemon;
    try {
      // 1. stand-alone: maildrop/ -> pickup -> qmgr -> mailbox.
      const { configFile } = await writeConfig(join(dir), extra);
      const stdin = await runStdin(
        configFile,
        "HELO local\r\nMAIL FROM:<one@sender.example>\r\nRCPT TO:<one@example.com>\r\nDATA\r\n" +
          "Subject: interop one\r\nX-Test: maildrop\r\n\r\nfirst body line\r\n..dot line\r\n.\r\nQUIT\r\n",
      );
      const id1 = /queued as (\w+)/.exec(stdin.stdout)?.[1];
      assert.ok(id1, stdin.stdout + stdin.stderr);
      await pf.waitForMailbox("maildrop message in the mailbox", "interop one");
      let box = await pf.mailboxText();
      assert.match(box, /^Subject: interop one$/m);
      assert.match(box, /^X-Test: maildrop$/m);
      assert.match(box, /^first body line$/m);
      assert.match(box, /^\.dot line$/m);
      assert.match(
        box,
        new RegExp(`by mx\\.test\\.example \\(deno-smtpd, from userid local\\)\\n\\s+id ${id1}`),
      );

      // 2. daemon: incoming/ -> qmgr -> mailbox. Without mail_owner, root's
      // files there (mode 0700) would make Postfix's qmgr exit on each one
      // ("fatal: open active ...: Permission denied"): refused at start.
      await assert.rejects(
        startDaemon(extra.replace(/^mail_owner = .*$/m, ""), { dir }),
        /cannot prepare queue directory .*Postfix queue whose incoming\/ belongs to uid \d+.*set mail_owner/,
      );
      // A mail_owner other than Postfix's is no better: qmgr cannot open
      // nobody's files either.
      const nobody = (await sh("id -u nobody")).trim();
      await assert.rejects(
        startDaemon(extra.replace(/^mail_owner = .*$/m, `mail_owner = "${nobody}:${nobody}"`), {
          dir,
        }),
        new RegExp(
          `cannot prepare queue directory .*Postfix queue whose incoming/ belongs to uid \\d+, ` +
            `and the files this process writes there would belong to uid ${nobody} .*set mail_owner`,
        ),
      );
      daemon = await startDaemon(extra, { dir });
      const sent2 = await swaks(daemon.port, [
        "--from",
        "two@sender.example",
        "--to",
        "two@example.com",
        "--header",
        "Subject: interop two",
        "--body",
        "second body line",
      ]);
      const id2 = /queued as (\w+)/.exec(sent2.stdout)?.[1];
      assert.ok(id2, sent2.stdout);
      await pf.waitForMailbox("incoming message in the mailbox", "interop two");
      box = await pf.mailboxText();
      assert.match(box, /^second body line$/m);
      assert.match(box, new RegExp(`with ESMTP id ${id2}`));

      // 3. deferred, then ETRN.
      await Deno.writeTextFile(join(dir, "down"), "");
      const swaks3 = await swaks(daemon.port, [
        "--from",
        "three@sender.example",
        "--to",
        "three@example.com",
        "--header",
        "Subject: interop three",
      ]);
      const id3 = /queued as (\w+)/.exec(swaks3.stdout)?.[1] as string;
      assert.ok(id3, swaks3.stdout);
      await pf.waitForLog("the deferral", /status=deferred/);
      // The delivery agent logs the deferral before qmgr has moved the file
      // to deferred/: an ETRN before that finds nothing there to flush, and
      // the message waits for its next retry (minutes away).
      await waitFor("the message in Postfix's deferred queue", () => inDeferred(pf.queueDir, id3));
      await Deno.remove(join(dir, "down"));
      const c = await RawClient.connect(daemon.port);
      await c.reply();
      await c.send("EHLO etrn.example\r\nETRN example.com\r\nQUIT\r\n");
      await c.reply();
      assert.equal(await c.reply(), "250 2.0.0 Queuing started\r\n");
      c.close();
      // Without the ETRN its retry would come after minimal_backoff_time (300 s).
      await pf.waitForMailbox("delivery after ETRN", "interop three", 60000);

      // 4. a recipient given twice: one R record, one delivery.
      const swaks4 = await swaks(daemon.port, [
        "--from",
        "four@sender.example",
        "--to",
        "four@example.com,four@example.com",
        "--header",
        "Subject: interop four",
      ]);
      const id4 = /queued as (\w+)/.exec(swaks4.stdout)?.[1] as string;
      assert.ok(id4, swaks4.stdout);
      assert.equal(swaks4.stdout.match(/RCPT TO:<four@example\.com>/g)?.length, 2, swaks4.stdout);
      const sent4 = new RegExp(`${id4}: to=<four@example\\.com>, relay=mbox.*status=sent`);
      await pf.waitForLog("the delivery of the doubled recipient", sent4);
      assert.equal((await pf.mailboxText()).match(/^Subject: interop four$/gm)?.length, 1);
      assert.match(
        await pf.logText(),
        new RegExp(`${id4}: from=<four@sender\\.example>, size=\\d+, nrcpt=1 `),
      );

      // postlogd writes asynchronously: wait for the last delivery's line.
      const sent3 = new RegExp(`${id3}: to=<three@example\\.com>, relay=mbox.*status=sent`);
      await pf.waitForLog("the log line of the delivery after ETRN", sent3);
      const log = await pf.logText();
      const lines = log.split("\n").filter((l) => /pickup|qmgr|pipe/.test(l));
      // deno-lint-ignore no-console
      console.log(lines.join("\n"));
      // pickup hands the file to Postfix's cleanup, which gives it a new queue ID.
      assert.match(log, /postfix-interop\/pickup\[\d+\]: \w+: uid=\d+ from=<one@sender\.example>/);
      assert.match(
        log,
        new RegExp(
          `postfix-interop/qmgr\\[\\d+\\]: ${id2}: from=<two@sender\\.example>, size=\\d+, nrcpt=1 \\(queue active\\)`,
        ),
      );
      // Our line for the message gives the size Postfix's qmgr gives (the
      // size record's, with the headers we added), not the bytes received.
      const sizeIn = (text: string) =>
        new RegExp(`${id2}: from=<two@sender\\.example>, size=(\\d+), nrcpt=1 `).exec(text)?.[1];
      assert.equal(sizeIn(daemon.log()), sizeIn(log));
      assert.match(
        log,
        new RegExp(
          `postfix-interop/pipe\\[\\d+\\]: ${id2}: to=<two@example\\.com>, relay=mbox.*status=sent`,
        ),
      );
      assert.match(
        log,
        new RegExp(`${id3}: to=<three@example\\.com>, relay=mbox.*status=deferred`),
      );
      assert.match(log, new RegExp(`${id3}: to=<three@example\\.com>, relay=mbox.*status=sent`));
    } finally {
      await daemon?.stop();
      await pf.stop();
    }
  },
});
