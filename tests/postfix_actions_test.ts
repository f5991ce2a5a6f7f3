/**
 * Access actions with a real Postfix behind us: a message PREPENDed by an
 * access table is delivered by Postfix's qmgr with the header on top; a
 * HOLDed message stays in hold/ (Postfix's postqueue lists it as held)
 * until `postsuper -H` releases it, then it is delivered. Needs root
 * (Postfix's queue belongs to the postfix user); skipped otherwise.
 */

import assert from "node:assert/strict";
import { makeWorkDir, sh, sleep, startDaemon, swaks } from "./_harness.ts";
import { havePostfix, startPostfix } from "./_postfix.ts";

const isRoot = Deno.uid() === 0;
const hasPostfix = await havePostfix();

Deno.test({
  name: "a stock Postfix delivers a PREPENDed message, and a HOLDed one only after postsuper -H",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("postfix-actions");
    const pf = await startPostfix(dir, { name: "actions" });
    const conf = pf.conf;
    const actions = "{ p@s.example = PREPEND X-Policy: prepended by deno-smtpd }, " +
      "{ h@s.example = HOLD for review }";
    const extra = [
      pf.smtpdConfig,
      `smtpd_sender_restrictions = ["check_sender_access", "inline:{ ${actions} }"]`,
    ].join("\n");
    let daemon;
    try {
      daemon = await startDaemon(extra, { dir });
      const send = (from: string, subject: string) =>
        swaks(daemon!.port, [
          "--from",
          from,
          "--to",
          "rcpt@example.com",
          "--header",
          `Subject: ${subject}`,
        ]);
      const p = await send("p@s.example", "actions prepend");
      assert.match(p.stdout, /queued as \w+/, p.stdout);
      await pf.waitForMailbox("the PREPENDed message", "actions prepend");
      const box = await pf.mailboxText();
      const at = box.indexOf("X-Policy: prepended by deno-smtpd");
      assert.ok(at >= 0 && at < box.indexOf("with ESMTP id"), box);

      const h = await send("h@s.example", "actions hold");
      const id = /queued as (\w+)/.exec(h.stdout)?.[1] as string;
      assert.ok(id, h.stdout);
      const listing = await sh(`postqueue -c ${conf} -p`);
      assert.match(listing, new RegExp(`^${id}!`, "m"), listing);
      await sleep(1500);
      assert.doesNotMatch(await pf.mailboxText(), /actions hold/);
      // postsuper -H moves it to deferred/; a flush makes qmgr take it now.
      await sh(`postsuper -c ${conf} -H ${id} 2>&1`);
      await sh(`postqueue -c ${conf} -f 2>&1`);
      await pf.waitForMailbox("the released message", "actions hold");
    } finally {
      await daemon?.stop();
      await pf.stop();
    }
  },
});
