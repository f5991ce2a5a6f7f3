/**
 * Access actions with a real Postfix behind us: a message PREPENDed by an
 * access table is delivered by Postfix's qmgr with the header on top; a
 * HOLDed message stays in hold/ (Postfix's postqueue lists it as held)
 * until `postsuper -H` releases it, then it is delivered. Needs root
 * (Postfix's queue belongs to the postfix user); skipped otherwise.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { makeWorkDir, ROOT, run, startDaemon } from "./_harness.ts";
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
  name: "a stock Postfix delivers a PREPENDed message, and a HOLDed one only after postsuper -H",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("postfix-actions");
    await sh(`chmod 755 ${ROOT}var ${ROOT}var/tests ${dir}`);
    await sh(`mkdir -p ${dir}/conf ${dir}/queue ${dir}/data ${dir}/log ${dir}/mbox`);
    await sh(`chown postfix ${dir}/data && chmod 700 ${dir}/data && chmod 777 ${dir}/mbox`);
    await Deno.writeTextFile(join(dir, "deliver.sh"), `#!/bin/sh\ncat >> ${dir}/mbox/mailbox\n`);
    await sh(`chmod 755 ${dir}/deliver.sh`);
    await Deno.writeTextFile(join(dir, "conf", "main.cf"), postfixMainCf(dir, "actions"));
    await Deno.writeTextFile(join(dir, "conf", "master.cf"), postfixMasterCf(dir));
    const conf = join(dir, "conf");
    await sh(`postfix -c ${conf} check 2>&1`);
    await sh(`postfix -c ${conf} start 2>&1`);
    const maillog = join(dir, "log", "maillog");
    const mailbox = join(dir, "mbox", "mailbox");
    const owner = `${await sh("id -u postfix")}:${await sh("id -g postfix")}`;
    const queueDir = join(dir, "queue");
    const actions = "{ p@s.example = PREPEND X-Policy: prepended by deno-smtpd }, " +
      "{ h@s.example = HOLD for review }";
    const extra = [
      `queue_directory = "${queueDir.slice(ROOT.length)}"`,
      `mail_owner = "${owner}"`,
      "smtpd_peername_lookup = false",
      `smtpd_sender_restrictions = ["check_sender_access", "inline:{ ${actions} }"]`,
    ].join("\n");
    let daemon;
    try {
      await waitFor("postfix master", async () => (await read(maillog)).includes("daemon started"));
      daemon = await startDaemon(extra, { dir });
      const send = (from: string, subject: string) =>
        run("swaks", [
          "--server",
          `127.0.0.1:${daemon!.port}`,
          "--from",
          from,
          "--to",
          "rcpt@example.com",
          "--header",
          `Subject: ${subject}`,
        ]);
      const p = await send("p@s.example", "actions prepend");
      assert.match(p.stdout, /queued as \w+/, p.stdout);
      await waitFor(
        "the PREPENDed message",
        async () => (await read(mailbox)).includes("actions prepend"),
      );
      const box = await read(mailbox);
      const at = box.indexOf("X-Policy: prepended by deno-smtpd");
      assert.ok(at >= 0 && at < box.indexOf("with ESMTP id"), box);

      const h = await send("h@s.example", "actions hold");
      const id = /queued as (\w+)/.exec(h.stdout)?.[1] as string;
      assert.ok(id, h.stdout);
      const listing = await sh(`postqueue -c ${conf} -p`);
      assert.match(listing, new RegExp(`^${id}!`, "m"), listing);
      await new Promise((r) => setTimeout(r, 1500));
      assert.doesNotMatch(await read(mailbox), /actions hold/);
      // postsuper -H moves it to deferred/; a flush makes qmgr take it now.
      await sh(`postsuper -c ${conf} -H ${id} 2>&1`);
      await sh(`postqueue -c ${conf} -f 2>&1`);
      await waitFor(
        "the released message",
        async () => (await read(mailbox)).includes("actions hold"),
      );
    } finally {
      await daemon?.stop();
      await run("postfix", ["-c", conf, "stop"]);
    }
  },
});
