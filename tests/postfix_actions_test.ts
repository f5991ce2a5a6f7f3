/**
 * Access actions with a real Postfix behind us: a message PREPENDed by an
 * access table is delivered by Postfix's qmgr with the header on top; a
 * HOLDed message stays in hold/ (Postfix's postqueue lists it as held)
 * until `postsuper -H` releases it, then it is delivered. FILTER sends a
 * message to a content filter (Postfix's smtp-sink), REDIRECT to another
 * address instead of its recipient, BCC a copy to one more. Needs root
 * (Postfix's queue belongs to the postfix user); skipped otherwise.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  freePort,
  makeWorkDir,
  readOrEmpty,
  run,
  sh,
  sleep,
  spawnLogged,
  startDaemon,
  swaks,
  waitFor,
} from "./_harness.ts";
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

const hasSink = (await run("sh", ["-c", "command -v smtp-sink"])).code === 0;

/** The messages in a mailbox the `mbox` pipe (flag F) appends to, one per From_ line. */
function messages(box: string): string[] {
  return box.split(/^(?=From )/m).filter((m) => m.startsWith("From "));
}

Deno.test({
  name:
    "a stock Postfix acts on FILTER, REDIRECT and BCC: smtp-sink gets the filtered message, the REDIRECT address gets the redirected one instead, the BCC address a copy",
  ignore: !isRoot || !hasPostfix || !hasSink,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("postfix-delegated");
    // The content filter: Postfix's smtp-sink on loopback, each message dumped to a file.
    const sinkPort = freePort();
    const dump = join(dir, "sink", "dump");
    await sh(`mkdir -p ${dir}/sink && chown nobody ${dir}/sink`);
    const sink = spawnLogged("smtp-sink", [
      "-u",
      "nobody",
      "-D",
      dump,
      `127.0.0.1:${sinkPort}`,
      "10",
    ]);
    let pf;
    let daemon;
    try {
      pf = await startPostfix(dir, {
        name: "delegated",
        // D and O: Delivered-To: (the recipient delivered to) and X-Original-To:.
        pipeFlags: "FDO",
        mainCfExtra: "mbox_destination_recipient_limit = 1\nsmtp_tls_security_level = none\n",
        masterCfExtra: "smtp      unix  -       -       n       -       -       smtp\n",
      });
      const table = join(dir, "senders");
      await Deno.writeTextFile(
        table,
        [
          `f@s.example FILTER smtp:[127.0.0.1]:${sinkPort}`,
          "r@s.example REDIRECT other@example.net",
          "b@s.example BCC copy@example.net",
          "",
        ].join("\n"),
      );
      daemon = await startDaemon(
        `${pf.smtpdConfig}\nsmtpd_sender_restrictions = ["check_sender_access", "texthash:${table}"]`,
        { dir },
      );
      const send = async (from: string, subject: string) => {
        const r = await swaks(daemon!.port, [
          "--from",
          from,
          "--to",
          "rcpt@example.com",
          "--header",
          `Subject: ${subject}`,
        ]);
        assert.match(r.stdout, /queued as \w+/, r.stdout);
      };
      const box = pf;

      await send("f@s.example", "delegated filter");
      await waitFor(
        "the filtered message at smtp-sink",
        async () => (await readOrEmpty(dump)).includes("Subject: delegated filter"),
      );
      const sunk = await readOrEmpty(dump);
      assert.match(sunk, /^X-Rcpt-Args: <rcpt@example\.com>/m, sunk);
      await box.waitForLog(
        "the filter delivery",
        /to=<rcpt@example\.com>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent/,
      );

      await send("r@s.example", "delegated redirect");
      await box.waitForMailbox("the redirected message", "delegated redirect");
      await send("b@s.example", "delegated bcc");
      await waitFor(
        "both copies of the BCC message",
        async () =>
          messages(await box.mailboxText()).filter((m) => m.includes("delegated bcc")).length === 2,
      );

      const all = messages(await box.mailboxText());
      const redirected = all.filter((m) => m.includes("Subject: delegated redirect"));
      assert.equal(redirected.length, 1, all.join("\n----\n"));
      assert.match(redirected[0] as string, /^Delivered-To: other@example\.net$/m);
      assert.match(redirected[0] as string, /^X-Original-To: rcpt@example\.com$/m);
      const copies = all.filter((m) => m.includes("Subject: delegated bcc"))
        .map((m) => /^Delivered-To: (.*)$/m.exec(m)?.[1]).sort();
      assert.deepEqual(copies, ["copy@example.net", "rcpt@example.com"]);
      // The filtered message went to the filter only.
      assert.ok(!all.some((m) => m.includes("delegated filter")));
    } finally {
      await daemon?.stop();
      await pf?.stop();
      await sink.stop();
    }
  },
});
