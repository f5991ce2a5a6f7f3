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
  ROOT,
  run,
  smtpdArgs,
  startDaemon,
  writeConfig,
} from "./_harness.ts";
import { postfixMainCf, postfixMasterCf } from "./_postfix.ts";

const isRoot = Deno.uid() === 0;
const hasPostfix = await run("sh", ["-c", "command -v postfix && id -u postfix"]).then((r) =>
  r.code === 0
);

async function sh(cmd: string): Promise<string> {
  const r = await run("sh", ["-c", cmd]);
  if (r.code !== 0) throw new Error(`${cmd}: ${r.stdout}${r.stderr}`);
  return r.stdout.trim();
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 20000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const read = (p: string) => Deno.readTextFile(p).catch(() => "");

Deno.test({
  name:
    "a stock Postfix delivers what smtpd stdin and smtpd serve queue, and ETRN makes qmgr retry",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("postfix");
    // Postfix's users must be able to walk to the queue and the mailbox.
    await sh(`chmod 755 ${ROOT}var ${ROOT}var/tests ${dir}`);
    await sh(`mkdir -p ${dir}/conf ${dir}/queue ${dir}/data ${dir}/log ${dir}/mbox`);
    await sh(`chown postfix ${dir}/data && chmod 700 ${dir}/data && chmod 777 ${dir}/mbox`);
    await Deno.writeTextFile(
      join(dir, "deliver.sh"),
      `#!/bin/sh\n[ -e ${dir}/down ] && exit 75\ncat >> ${dir}/mbox/mailbox\nexit 0\n`,
    );
    await sh(`chmod 755 ${dir}/deliver.sh`);
    await Deno.writeTextFile(join(dir, "conf", "main.cf"), postfixMainCf(dir, "interop"));
    await Deno.writeTextFile(join(dir, "conf", "master.cf"), postfixMasterCf(dir));
    const conf = join(dir, "conf");
    await sh(`postfix -c ${conf} check 2>&1`);
    await sh(`postfix -c ${conf} start 2>&1`);
    const maillog = join(dir, "log", "maillog");
    const mailbox = join(dir, "mbox", "mailbox");
    const owner = `${await sh("id -u postfix")}:${await sh("id -g postfix")}`;
    const queueDir = join(dir, "queue");
    const extra = [
      `queue_directory = "${queueDir.slice(ROOT.length)}"`,
      `mail_owner = "${owner}"`,
      "smtpd_peername_lookup = false",
    ].join("\n");
    let daemon;
    try {
      await waitFor("postfix master", async () => (await read(maillog)).includes("daemon started"));

      // 1. stand-alone: maildrop/ -> pickup -> qmgr -> mailbox.
      const { configFile } = await writeConfig(join(dir), extra);
      const stdin = await run(Deno.execPath(), await smtpdArgs(["stdin", "-c", configFile]), {
        stdin:
          "HELO local\r\nMAIL FROM:<one@sender.example>\r\nRCPT TO:<one@example.com>\r\nDATA\r\n" +
          "Subject: interop one\r\nX-Test: maildrop\r\n\r\nfirst body line\r\n..dot line\r\n.\r\nQUIT\r\n",
      });
      const id1 = /queued as (\w+)/.exec(stdin.stdout)?.[1];
      assert.ok(id1, stdin.stdout + stdin.stderr);
      await waitFor(
        "maildrop message in the mailbox",
        async () => (await read(mailbox)).includes("interop one"),
      );
      let box = await read(mailbox);
      assert.match(box, /^Subject: interop one$/m);
      assert.match(box, /^X-Test: maildrop$/m);
      assert.match(box, /^first body line$/m);
      assert.match(box, /^\.dot line$/m);
      assert.match(
        box,
        new RegExp(`by mx\\.test\\.example \\(deno-smtpd, from userid local\\)\\n\\s+id ${id1}`),
      );

      // 2. daemon: incoming/ -> qmgr -> mailbox.
      daemon = await startDaemon(extra, { dir });
      const swaks = await run("swaks", [
        "--server",
        `127.0.0.1:${daemon.port}`,
        "--from",
        "two@sender.example",
        "--to",
        "two@example.com",
        "--header",
        "Subject: interop two",
        "--body",
        "second body line",
      ]);
      const id2 = /queued as (\w+)/.exec(swaks.stdout)?.[1];
      assert.ok(id2, swaks.stdout);
      await waitFor(
        "incoming message in the mailbox",
        async () => (await read(mailbox)).includes("interop two"),
      );
      box = await read(mailbox);
      assert.match(box, /^second body line$/m);
      assert.match(box, new RegExp(`with ESMTP id ${id2}`));

      // 3. deferred, then ETRN.
      await Deno.writeTextFile(join(dir, "down"), "");
      const swaks3 = await run("swaks", [
        "--server",
        `127.0.0.1:${daemon.port}`,
        "--from",
        "three@sender.example",
        "--to",
        "three@example.com",
        "--header",
        "Subject: interop three",
      ]);
      const id3 = /queued as (\w+)/.exec(swaks3.stdout)?.[1] as string;
      assert.ok(id3, swaks3.stdout);
      await waitFor("the deferral", async () => /status=deferred/.test(await read(maillog)));
      await Deno.remove(join(dir, "down"));
      const c = await RawClient.connect(daemon.port);
      await c.reply();
      await c.send("EHLO etrn.example\r\nETRN example.com\r\nQUIT\r\n");
      await c.reply();
      assert.equal(await c.reply(), "250 Queuing started\r\n");
      c.close();
      await waitFor(
        "delivery after ETRN",
        async () => (await read(mailbox)).includes("interop three"),
        10000,
      );

      // 4. a recipient given twice: one R record, one delivery.
      const swaks4 = await run("swaks", [
        "--server",
        `127.0.0.1:${daemon.port}`,
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
      await waitFor(
        "the delivery of the doubled recipient",
        async () => sent4.test(await read(maillog)),
        10000,
      );
      assert.equal((await read(mailbox)).match(/^Subject: interop four$/gm)?.length, 1);
      assert.match(
        await read(maillog),
        new RegExp(`${id4}: from=<four@sender\\.example>, size=\\d+, nrcpt=1 `),
      );

      // postlogd writes asynchronously: wait for the last delivery's line.
      const sent3 = new RegExp(`${id3}: to=<three@example\\.com>, relay=mbox.*status=sent`);
      await waitFor(
        "the log line of the delivery after ETRN",
        async () => sent3.test(await read(maillog)),
        10000,
      );
      const log = await read(maillog);
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
      await run("postfix", ["-c", conf, "stop"]);
    }
  },
});
