/**
 * CHUNKING end to end through a real Postfix behind us: Debian's Exim
 * sends with BDAT to `smtpd serve`, whose queue_directory is a private
 * Postfix's queue; Postfix's qmgr delivers the message through a pipe into
 * a mailbox file, intact. Needs root, Postfix and Exim (tests/_exim.ts);
 * ignored otherwise, with the reason in the name.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { eximSend, prepareExim } from "./_exim.ts";
import { makeWorkDir, ROOT, run, startDaemon } from "./_harness.ts";
import { postfixMainCf, postfixMasterCf } from "./_postfix.ts";

const EXIM = await prepareExim();
const hasPostfix = await run("sh", ["-c", "command -v postfix && id -u postfix"]).then((r) =>
  r.code === 0
);
const why = typeof EXIM === "string" ? EXIM : hasPostfix ? "" : "no Postfix here";

async function sh(cmd: string): Promise<string> {
  const r = await run("sh", ["-c", cmd]);
  if (r.code !== 0) throw new Error(`${cmd}: ${r.stdout}${r.stderr}`);
  return r.stdout.trim();
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 20000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const read = (p: string) => Deno.readTextFile(p).catch(() => "");

Deno.test({
  name: "Exim → BDAT → smtpd serve → Postfix's qmgr delivers the message intact" +
    (why ? ` (skipped: ${why})` : ""),
  ignore: why !== "",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    if (typeof EXIM === "string") throw new Error(EXIM);
    const dir = await makeWorkDir("bdat-postfix");
    await sh(`chmod 755 ${ROOT}var ${ROOT}var/tests ${dir}`);
    await sh(`mkdir -p ${dir}/conf ${dir}/queue ${dir}/data ${dir}/log ${dir}/mbox`);
    await sh(`chown postfix ${dir}/data && chmod 700 ${dir}/data && chmod 777 ${dir}/mbox`);
    await Deno.writeTextFile(
      join(dir, "deliver.sh"),
      `#!/bin/sh\ncat >> ${dir}/mbox/mailbox\nexit 0\n`,
    );
    await sh(`chmod 755 ${dir}/deliver.sh`);
    await Deno.writeTextFile(join(dir, "conf", "main.cf"), postfixMainCf(dir, "bdat"));
    await Deno.writeTextFile(join(dir, "conf", "master.cf"), postfixMasterCf(dir));
    const conf = join(dir, "conf");
    await sh(`postfix -c ${conf} check 2>&1`);
    await sh(`postfix -c ${conf} start 2>&1`);
    const maillog = join(dir, "log", "maillog");
    const mailbox = join(dir, "mbox", "mailbox");
    const owner = `${await sh("id -u postfix")}:${await sh("id -g postfix")}`;
    const extra = [
      `queue_directory = "${join(dir, "queue").slice(ROOT.length)}"`,
      `mail_owner = "${owner}"`,
      "smtpd_peername_lookup = false",
    ].join("\n");
    let daemon;
    try {
      await waitFor("postfix master", async () => (await read(maillog)).includes("daemon started"));
      daemon = await startDaemon(extra, { dir });
      const lines = Array.from({ length: 300 }, (_, i) => `body ${i} ${"z".repeat(70)}`);
      const message = [
        "Subject: bdat through postfix",
        "",
        ".one leading dot",
        ...lines,
        "",
      ].join("\n");
      const r = await eximSend(EXIM, daemon.port, "chunk@example.com", message);
      assert.equal(r.code, 0, r.transcript);
      assert.match(r.transcript, /SMTP\+> BDAT \d+ LAST\n/);
      const id = /250 2\.0\.0 Ok: \d+ bytes queued as (\w+)/.exec(r.transcript)?.[1];
      assert.ok(id, r.transcript);
      const sent = new RegExp(`${id}: to=<chunk@example\\.com>, relay=mbox.*status=sent`);
      await waitFor("Postfix's delivery", async () => sent.test(await read(maillog)));
      const box = await read(mailbox);
      assert.match(box, /^Subject: bdat through postfix$/m);
      assert.match(box, /^\.one leading dot$/m);
      for (const l of lines) assert.ok(box.includes(`\n${l}\n`), `missing: ${l}`);
      assert.match(box, new RegExp(`with ESMTP id ${id}`));
    } finally {
      await daemon?.stop();
      await run("postfix", ["-c", conf, "stop"]);
    }
  },
});
