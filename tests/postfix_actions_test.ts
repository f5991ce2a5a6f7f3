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
  postcat,
  readOrEmpty,
  run,
  sh,
  sleep,
  spawnLogged,
  startDaemon,
  swaks,
  waitFor,
} from "./_harness.ts";
import { havePostfix, SMTP_CLIENT_SERVICE, startPostfix } from "./_postfix.ts";

const isRoot = Deno.uid() === 0;
const hasPostfix = await havePostfix();

/** swaks: one message from `from` to rcpt@example.com with a Subject: of its own. */
function sendWithSubject(port: number, from: string, subject: string) {
  return swaks(port, [
    "--from",
    from,
    "--to",
    "rcpt@example.com",
    "--header",
    `Subject: ${subject}`,
  ]);
}

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
      const send = (from: string, subject: string) => sendWithSubject(daemon!.port, from, subject);
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
        masterCfExtra: SMTP_CLIENT_SERVICE,
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
        const r = await sendWithSubject(daemon!.port, from, subject);
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

/** One message through Python's smtplib; prints the queue ID from the 250 reply. */
const SEND = `
import smtplib, sys
port, sender, rcpts, utf8 = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(","), sys.argv[4] == "1"
with smtplib.SMTP("127.0.0.1", port) as s:
    s.ehlo("py.example")
    s.mail(sender, ["SMTPUTF8"] if utf8 else [])
    for r in rcpts:
        s.rcpt(r)
    code, text = s.data(b"Subject: parity\\r\\n\\r\\nbody\\r\\n")
    print(text.decode().split()[-1])
`;

/** postcat's extracted segment, and the size record's recipient count, flags and sendopts. */
function delegatedRecords(pc: string): string[] {
  const size = /^message_size: +(.*)$/m.exec(pc)?.[1]?.split(/ +/) ?? [];
  const from = pc.indexOf("*** HEADER EXTRACTED");
  const to = pc.indexOf("*** MESSAGE FILE END");
  assert.ok(from > 0 && to > from, pc);
  const lines = pc.slice(from, to).split("\n").slice(1).filter((l) => l !== "");
  return [`size: rcpts=${size[2]} flags=${size[3]} sendopts=${size[5]}`, ...lines];
}

Deno.test({
  name:
    "FILTER, REDIRECT and BCC side by side with Postfix's smtpd and cleanup: postcat shows the same records (every BCC with NOTIFY=NEVER, ours only)",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("postfix-delegated-parity");
    await Deno.writeTextFile(join(dir, "senders"), "f@s.example FILTER smtp:[127.0.0.1]:10025\n");
    await Deno.writeTextFile(
      join(dir, "recipients"),
      [
        "/^r@example\\.com$/ REDIRECT other@example.net",
        "/^b@example\\.com$/ BCC copy@example.net",
        "/^u@example\\.com$/ BCC c\u00f6py@example.net",
        "",
      ].join("\n"),
    );
    await sh(`chmod 644 ${dir}/senders ${dir}/recipients`);
    const pfPort = freePort();
    // Both hold the message at the end of data, so that the file stays.
    const pf = await startPostfix(dir, {
      name: "dparity",
      smtpdPort: pfPort,
      mainCfExtra: [
        "smtputf8_enable = yes",
        `smtpd_sender_restrictions = check_sender_access texthash:${dir}/senders`,
        `smtpd_recipient_restrictions = check_recipient_access regexp:${dir}/recipients permit`,
        "smtpd_end_of_data_restrictions = check_client_access inline:{{127.0.0.1=HOLD}}",
        "",
      ].join("\n"),
    });
    let d;
    try {
      d = await startDaemon(
        [
          `smtpd_sender_restrictions = ["check_sender_access", "texthash:${dir}/senders"]`,
          `smtpd_recipient_restrictions = ["check_recipient_access", "regexp:${dir}/recipients", "permit"]`,
          `smtpd_end_of_data_restrictions = ["check_client_access", "inline:{ { 127.0.0.1 = HOLD } }"]`,
        ].join("\n"),
        { dir: await makeWorkDir("delegated-parity-ours") },
      );
      const records = async (port: number, queueDir: string, args: string[]) => {
        const r = await run("python3", ["-c", SEND, String(port), ...args]);
        assert.equal(r.code, 0, r.stderr);
        const file = join(queueDir, "hold", r.stdout.trim());
        await waitFor("the held file", async () => (await readOrEmpty(file)) !== "");
        return delegatedRecords(await postcat(file));
      };
      const cases = [
        ["f@s.example", "r@example.com,b@example.com", "0"],
        ["a@s.example", "u@example.com", "0"],
        ["a@s.example", "u@example.com", "1"],
      ];
      for (const args of cases) {
        const theirs = await records(pfPort, pf.queueDir, args);
        const ours = await records(d.port, d.queueDir, args);
        // Postfix's smtpd sends NOTIFY=NEVER after each BCC address, so its
        // cleanup gives it to the next one: a single BCC address has none.
        assert.deepEqual(
          ours.filter((l) => l !== "named_attribute: notify_flags=1"),
          theirs,
          JSON.stringify(args),
        );
        assert.ok(ours.includes("named_attribute: notify_flags=1"), ours.join("\n"));
      }
    } finally {
      await d?.stop();
      await pf.stop();
    }
  },
});
