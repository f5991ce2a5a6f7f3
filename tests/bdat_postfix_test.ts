/**
 * CHUNKING end to end through a real Postfix behind us: Debian's Exim
 * sends with BDAT to `smtpd serve`, whose queue_directory is a private
 * Postfix's queue; Postfix's qmgr delivers the message through a pipe into
 * a mailbox file, intact. Needs root, Postfix and Exim (tests/_exim.ts);
 * ignored otherwise, with the reason in the name.
 */

import assert from "node:assert/strict";
import { eximSend, prepareExim } from "./_exim.ts";
import { makeWorkDir, startDaemon } from "./_harness.ts";
import { havePostfix, startPostfix } from "./_postfix.ts";

const EXIM = await prepareExim();
const hasPostfix = await havePostfix();
const why = typeof EXIM === "string" ? EXIM : hasPostfix ? "" : "no Postfix here";

Deno.test({
  name: "Exim → BDAT → smtpd serve → Postfix's qmgr delivers the message intact" +
    (why ? ` (skipped: ${why})` : ""),
  ignore: why !== "",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    if (typeof EXIM === "string") throw new Error(EXIM);
    const dir = await makeWorkDir("bdat-postfix");
    const pf = await startPostfix(dir, { name: "bdat" });
    let daemon;
    try {
      daemon = await startDaemon(pf.smtpdConfig, { dir });
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
      // deno-lint-ignore no-console
      console.log(`Exim's side of the session (-d+transport):\n${r.transcript}`);
      assert.match(r.transcript, /SMTP\+> BDAT \d+ LAST\n/);
      const id = /250 2\.0\.0 Ok: \d+ bytes queued as (\w+)/.exec(r.transcript)?.[1];
      assert.ok(id, r.transcript);
      const sent = new RegExp(`${id}: to=<chunk@example\\.com>, relay=mbox.*status=sent`);
      // Postfix's qmgr and pipe on a loaded host: more than the default 20 s.
      await pf.waitForLog("Postfix's delivery", sent, 60_000);
      const box = await pf.mailboxText();
      assert.match(box, /^Subject: bdat through postfix$/m);
      assert.match(box, /^\.one leading dot$/m);
      for (const l of lines) assert.ok(box.includes(`\n${l}\n`), `missing: ${l}`);
      assert.match(box, new RegExp(`with ESMTP id ${id}`));
      // deno-lint-ignore no-console
      console.log(
        `Postfix delivered it:\n${
          (await pf.logText()).split("\n").filter((l) => l.includes(id)).join("\n")
        }`,
      );
    } finally {
      await daemon?.stop();
      await pf.stop();
    }
  },
});
