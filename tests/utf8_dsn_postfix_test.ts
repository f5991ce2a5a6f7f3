/**
 * SMTPUTF8 and DSN end to end, with clients and servers nobody here wrote:
 * Python's smtplib sends to our daemon with `MAIL FROM:<...> SMTPUTF8
 * RET=HDRS ENVID=...` and `RCPT TO:<...> NOTIFY=... ORCPT=...`; Postfix's
 * postcat shows the queue file's records; a private Postfix instance
 * (Debian's postfix package, our queue_directory is its queue) delivers the
 * messages through a pipe(8) transport into a mailbox file:
 *   1. a message to a UTF-8 address (local part and domain) with a UTF-8
 *      Subject arrives with the address intact (Delivered-To:, the log);
 *   2. NOTIFY=SUCCESS brings a success DSN (Postfix's bounce daemon) to the
 *      sender's mailbox, with our ENVID and ORCPT in it;
 *   3. NOTIFY=NEVER brings none;
 *   4. the same through `smtpd stdin` (maildrop/, Postfix's pickup and
 *      cleanup read our records): UTF-8 address intact, a success DSN.
 * The Postfix part needs root (Postfix's queue belongs to the postfix
 * user) and is skipped otherwise; the postcat and refusal parts run always.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  freePort,
  makeWorkDir,
  postcat,
  RawClient,
  run,
  runStdin,
  startDaemon,
  writeConfig,
} from "./_harness.ts";
import { havePostfix, relayDomainTo, SMTP_CLIENT_SERVICE, startPostfix } from "./_postfix.ts";
import { eximSend, prepareExim } from "./_exim.ts";

const isRoot = Deno.uid() === 0;
const hasPostfix = await havePostfix();
const EXIM = await prepareExim();

/** smtplib: one message; prints the protocol dialog (debug level 1) on stderr. */
const SEND = `
import smtplib, sys
port, sender, rcpt, subject, mopts, ropts = sys.argv[1:7]
msg = ("From: <%s>\\r\\nTo: <%s>\\r\\nSubject: %s\\r\\n\\r\\nbody\\r\\n" % (sender, rcpt, subject)).encode("utf-8")
s = smtplib.SMTP("127.0.0.1", int(port))
s.set_debuglevel(1)
s.ehlo("client.example")
print("esmtp:", " ".join(sorted(s.esmtp_features)))
s.sendmail(sender, [rcpt], msg, mail_options=mopts.split(), rcpt_options=ropts.split())
s.quit()
`;

async function send(port: number, args: string[]): Promise<{ id: string; dialog: string }> {
  const r = await run("python3", ["-c", SEND, String(port), ...args]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const id = /queued as (\w+)/.exec(r.stderr)?.[1];
  assert.ok(id, r.stderr);
  return { id, dialog: r.stdout + r.stderr };
}

Deno.test({
  name:
    "Postfix delivers an SMTPUTF8 message from smtplib intact and sends a DSN for NOTIFY=SUCCESS only",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("utf8dsn");
    // D: Delivered-To: with the recipient, as the pipe delivered it.
    const pf = await startPostfix(dir, { name: "utf8dsn", pipeFlags: "DF" });
    const extra = pf.smtpdConfig;
    let daemon;
    try {
      daemon = await startDaemon(extra, { dir });

      // 1 and 2: SMTPUTF8, UTF-8 recipient, NOTIFY=SUCCESS with ORCPT, RET and ENVID.
      const utf8Rcpt = "δοκιμή@παράδειγμα.example";
      const one = await send(daemon.port, [
        "sender@sender.example",
        utf8Rcpt,
        "Grüße aus Köln",
        "SMTPUTF8 RET=HDRS ENVID=QQ314159",
        "NOTIFY=SUCCESS ORCPT=rfc822;first+2Brcpt@example.org",
      ]);
      // deno-lint-ignore no-console
      console.log(`smtplib, message 1:\n${one.dialog}`);
      assert.match(one.dialog, /esmtp: .*\bdsn\b.*\bsmtputf8\b/);
      assert.match(
        one.dialog,
        /mail FROM:<sender@sender\.example> size=\d+ SMTPUTF8 RET=HDRS ENVID=QQ314159/,
      );
      await pf.waitForMailbox("the UTF-8 message in the mailbox", "Grüße aus Köln");
      await pf.waitForMailbox("the success DSN in the mailbox", "Successful Mail Delivery Report");
      const box = await pf.mailboxText();
      // deno-lint-ignore no-console
      console.log(`mailbox after message 1:\n${box}`);
      assert.match(box, new RegExp(`^Delivered-To: ${utf8Rcpt}$`, "m"));
      assert.match(box, new RegExp(`^To: <${utf8Rcpt}>$`, "m"));
      assert.match(box, /^Subject: Grüße aus Köln$/m);
      assert.match(box, new RegExp(`with UTF8SMTP id ${one.id}`));
      // The DSN (RFC 3464) from Postfix's bounce daemon: to the sender, with ENVID and ORCPT.
      assert.match(box, /^Subject: Successful Mail Delivery Report$/m);
      assert.match(box, /^To: sender@sender\.example$/m);
      assert.match(box, /^Original-Envelope-Id: QQ314159$/m);
      assert.match(box, /^Original-Recipient: rfc822;first\+rcpt@example\.org$/m);
      // pipe(8) reports "relayed"; the SMTPUTF8 flag makes it a message/global report (RFC 6533).
      assert.match(box, /^Action: relayed$/m);
      assert.match(box, /^Content-Type: message\/global-delivery-status$/m);
      assert.match(box, new RegExp(`^Final-Recipient: utf-8; ${utf8Rcpt}$`, "m"));
      assert.match(box, /^Status: 2\.0\.0$/m);
      // postlogd writes the log asynchronously: its lines may come after the
      // deliveries they tell of.
      await pf.waitForLog(
        "message 1's delivery",
        new RegExp(`${one.id}: to=<${utf8Rcpt}>, relay=mbox.*status=sent`),
      );
      await pf.waitForLog(
        "message 1's success DSN",
        new RegExp(`${one.id}: sender delivery status notification: \\w+`),
      );

      // 3: NOTIFY=NEVER: delivered, no report.
      const two = await send(daemon.port, [
        "sender@sender.example",
        "never@example.com",
        "no report please",
        "ENVID=QQ2",
        "NOTIFY=NEVER",
      ]);
      const removed = new RegExp(`${two.id}: removed`);
      await pf.waitForLog("message 2 delivered and removed", removed);
      const after = await pf.mailboxText();
      assert.match(after, /^Subject: no report please$/m);
      assert.equal(after.match(/^Subject: Successful Mail Delivery Report$/gm)?.length, 1);
      assert.doesNotMatch(
        await pf.logText(),
        new RegExp(`${two.id}: sender delivery status notification`),
      );
      // 4: stand-alone mode, maildrop/ -> pickup -> cleanup -> qmgr.
      const { configFile } = await writeConfig(dir, extra);
      const stdin = await runStdin(
        configFile,
        "EHLO local\r\nMAIL FROM:<local@sender.example> SMTPUTF8 ENVID=LOCAL1\r\n" +
          "RCPT TO:<ünïcödé@example.com> NOTIFY=SUCCESS\r\nDATA\r\nSubject: über pickup\r\n\r\nx\r\n.\r\nQUIT\r\n",
      );
      assert.match(stdin.stdout, /250 2\.0\.0 Ok: queued as/, stdin.stdout + stdin.stderr);
      await pf.waitForMailbox("the DSN for the maildrop message", "Original-Envelope-Id: LOCAL1");
      const box4 = await pf.mailboxText();
      assert.match(box4, /^Delivered-To: ünïcödé@example\.com$/m);
      assert.match(box4, /^Subject: über pickup$/m);
      assert.match(box4, /^Final-Recipient: utf-8; ünïcödé@example\.com$/m);
      assert.match(box4, /^Original-Recipient: rfc822;ünïcödé@example\.com$/m);
      const lines = (await pf.logText()).split("\n").filter((l) =>
        l.includes(one.id) || l.includes(two.id)
      );
      // deno-lint-ignore no-console
      console.log(lines.join("\n"));
    } finally {
      await daemon?.stop();
      await pf.stop();
    }
  },
});

Deno.test({
  name:
    "Postfix relays what its smtp client encodes: ENVID and ORCPT past 100 and 500 characters as xtext (RFC 3461 counts them decoded), a space in a utf-8 ORCPT as \\x{20}: taken",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    // Postfix's smtp client writes every ENVID and ORCPT as xtext ("+" and
    // "=" as +2B and +3D, each byte of a UTF-8 character as +HH), and
    // always sends an ORCPT (rfc822; and the address as its smtpd got it).
    // RFC 3461 limits them before that encoding (ENVID 100, ORCPT's
    // address 500 characters): these are within the limits, encoded past them.
    const dir = await makeWorkDir("dsn-limits");
    const daemon = await startDaemon(`mynetworks = ["127.0.0.0/8"]`, { dir });
    const pfPort = freePort();
    let pf;
    try {
      pf = await startPostfix(dir, {
        name: "dsnlimits",
        smtpdPort: pfPort,
        mainCfExtra: await relayDomainTo(dir, "example.net", daemon.port),
        masterCfExtra: SMTP_CLIENT_SERVICE,
      });
      // 96 characters (a base64 ID has "+" and "="), 192 as xtext.
      const envid = "a+b=".repeat(24);
      // 72 characters; Postfix's ORCPT has 552 (3 bytes of each of 60, as +HH).
      const utf8Rcpt = `${"\u7528".repeat(60)}@example.net`;
      // Each message: its MAIL and RCPT options, and the record we must queue.
      const cases = [
        {
          rcpt: "envid@example.net",
          mail: `ENVID=${envid.replace(/[+=]/g, xtextByte)}`,
          rcptOptions: "NOTIFY=FAILURE",
          record: `envelope_id=${envid}`,
        },
        {
          rcpt: utf8Rcpt,
          mail: "SMTPUTF8",
          rcptOptions: "NOTIFY=FAILURE",
          record: `dsn_orig_rcpt=rfc822;${utf8Rcpt}`,
        },
        // RFC 6533's unitext has \x{20} for a space (its HEXPOINT lists
        // "20"); Postfix sends a utf-8 ORCPT so.
        {
          rcpt: '"j\u00f6rg m\u00fcller"@example.net',
          mail: "SMTPUTF8",
          rcptOptions: 'NOTIFY=FAILURE ORCPT=utf-8;"j\\x{F6}rg\\x{20}m\\x{FC}ller"@example.net',
          record: 'dsn_orig_rcpt=utf-8;"j\u00f6rg m\u00fcller"@example.net',
        },
      ];
      for (const { rcpt, mail, rcptOptions, record } of cases) {
        const theirs = await send(pfPort, ["s@sender.example", rcpt, "long", mail, rcptOptions]);
        const delivery = new RegExp(
          `${theirs.id}: to=<${
            rcpt.replace(/[.\\]/g, "\\$&")
          }>, relay=127\\.0\\.0\\.1.*status=\\w+.*`,
        );
        await pf.waitForLog(`${theirs.id}'s relay to us`, delivery);
        const line = delivery.exec(await pf.logText())?.[0] ?? "";
        const ours = /status=sent \(250 2\.0\.0 Ok: queued as (\w+)\)/.exec(line)?.[1];
        assert.ok(ours, line);
        const text = await postcat(join(daemon.queueDir, "incoming", ours));
        assert.ok(text.includes(`\nnamed_attribute: ${record}\n`), text);
      }
    } finally {
      await pf?.stop();
      await daemon.stop();
    }
  },
});

/** xtext's +HH for one ASCII character (RFC 3461 §4). */
function xtextByte(ch: string): string {
  return `+${ch.charCodeAt(0).toString(16).toUpperCase()}`;
}

Deno.test({
  name: "smtplib's SMTPUTF8 and DSN options reach the queue file as Postfix's records (postcat)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const daemon = await startDaemon("smtpd_peername_lookup = false");
    try {
      const one = await send(daemon.port, [
        "χρήστης@αποστολέας.example",
        "élève@école.example",
        "Grüße",
        "SMTPUTF8 RET=FULL ENVID=E+2B1",
        "NOTIFY=SUCCESS,DELAY ORCPT=utf-8;\\x{E9}l\u00e8ve@\u00e9cole.example",
      ]);
      const file = join(daemon.queueDir, "incoming", one.id);
      const text = await postcat(file);
      // deno-lint-ignore no-console
      console.log(text);
      // The size record's fields: qmgr flags = (SUCCESS|DELAY) << 1 = 20;
      // sendopts = SMTPUTF8 requested (1) | header (2) | sender (4) = 7.
      assert.match(text, /^message_size: +\d+ +\d+ +1 +20 +\d+ +7$/m);
      assert.match(text, /^named_attribute: ret_flags=1$|^dsn_ret: 1$/m);
      assert.match(text, /envelope_id=E\+1$|^dsn_envid: E\+1$/m);
      assert.match(text, /notify_flags=10$|^dsn_notify: 10$/m);
      assert.match(
        text,
        /dsn_orig_rcpt=utf-8;élève@école\.example$|^dsn_orig_rcpt: utf-8;élève@école\.example$/m,
      );
      assert.match(text, /^sender: χρήστης@αποστολέας\.example$/m);
      assert.match(text, /^recipient: élève@école\.example$/m);

      // Without SMTPUTF8 the same UTF-8 addresses are refused as before;
      // bytes that are not UTF-8 are refused with it.
      const c = await RawClient.connect(daemon.port);
      await c.reply();
      const enc = new TextEncoder();
      await c.send(enc.encode("EHLO client.example\r\n"));
      await c.reply();
      await c.send(enc.encode("MAIL FROM:<χρήστης@example.org>\r\n"));
      assert.equal(await c.reply(), "501 5.1.7 Bad sender address syntax\r\n");
      await c.send(enc.encode("MAIL FROM:<a@αποστολέας.example>\r\n"));
      assert.equal(await c.reply(), "501 5.1.7 Bad sender address syntax\r\n");
      await c.send(enc.encode("MAIL FROM:<a@example.org>\r\n"));
      assert.equal(await c.reply(), "250 2.1.0 Ok\r\n");
      await c.send(enc.encode("RCPT TO:<élève@example.com>\r\n"));
      assert.equal(await c.reply(), "501 5.1.3 Bad recipient address syntax\r\n");
      await c.send(enc.encode("RSET\r\n"));
      await c.reply();
      await c.send(
        new Uint8Array([
          ...enc.encode("MAIL FROM:<a"),
          0xff,
          ...enc.encode("@example.org> SMTPUTF8\r\n"),
        ]),
      );
      assert.equal(await c.reply(), "500 5.5.2 Error: bad UTF-8 syntax\r\n");
      await c.send(
        new Uint8Array([
          ...enc.encode("MAIL FROM:<a"),
          0xc3,
          0x28,
          ...enc.encode("@example.org> SMTPUTF8\r\n"),
        ]),
      );
      assert.equal(await c.reply(), "500 5.5.2 Error: bad UTF-8 syntax\r\n");
      await c.send(enc.encode("MAIL FROM:<χρήστης@αποστολέας.example> SMTPUTF8\r\n"));
      assert.equal(await c.reply(), "250 2.1.0 Ok\r\n");
      await c.send(enc.encode("RCPT TO:<élève@école.example>\r\n"));
      assert.equal(await c.reply(), "250 2.1.5 Ok\r\n");
      c.close();
    } finally {
      await daemon.stop();
    }
  },
});

Deno.test({
  name:
    "Exim relays an SMTPUTF8 recipient's ORCPT as it got it (rfc822; and the address in UTF-8): taken as Postfix takes it" +
    (typeof EXIM === "string" ? ` (skipped: ${EXIM})` : ""),
  ignore: typeof EXIM === "string",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    if (typeof EXIM === "string") throw new Error(EXIM);
    const daemon = await startDaemon("smtpd_peername_lookup = false");
    try {
      // A local client gives Exim the ORCPT unencoded; Exim passes it on as
      // it is. Postfix's smtpd decodes it with xtext_unquote, which keeps
      // non-ASCII bytes: 250, and the address in dsn_orig_rcpt.
      const r = await eximSend(EXIM, daemon.port, "", "", {
        smtpIn: [
          "EHLO local",
          "MAIL FROM:<alice@example.org> SMTPUTF8",
          "RCPT TO:<j\u00f6rg@b\u00fccher.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;j\u00f6rg@b\u00fccher.example",
          "DATA",
          "Subject: Gr\u00fc\u00dfe",
          "",
          "body",
          ".",
          "QUIT",
          "",
        ].join("\r\n"),
      });
      assert.match(
        r.transcript,
        /RCPT TO:<jörg@bücher\.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;jörg@bücher\.example/,
      );
      const id = /250 2\.0\.0 Ok: (?:\d+ bytes )?queued as (\w+)/.exec(r.transcript)?.[1];
      assert.ok(id, r.transcript);
      const text = await postcat(join(daemon.queueDir, "incoming", id));
      assert.match(
        text,
        /dsn_orig_rcpt=rfc822;jörg@bücher\.example$|^dsn_orig_rcpt: rfc822;jörg@bücher\.example$/m,
      );
      assert.match(text, /^recipient: jörg@bücher\.example$/m);
    } finally {
      await daemon.stop();
    }
  },
});

Deno.test({
  name:
    "a byte order mark is a character like another: kept at the start of ORCPT, refused in ENVID, part of the verb (as Postfix)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const daemon = await startDaemon("smtpd_peername_lookup = false");
    try {
      const c = await RawClient.connect(daemon.port);
      await c.reply();
      await c.send("EHLO client.example\r\n");
      await c.reply();
      // Postfix: all_isprint_tab() fails on the mark's bytes, escaped or raw.
      await c.send("MAIL FROM:<a@example.org> ENVID=+EF+BB+BFabc\r\n");
      assert.equal(await c.reply(), "501 5.5.4 Bad ENVID parameter syntax\r\n");
      await c.send("MAIL FROM:<a@example.org> SMTPUTF8 ENVID=\ufeffabc\r\n");
      assert.equal(await c.reply(), "501 5.5.4 Bad ENVID parameter syntax\r\n");
      // Postfix's xtext_unquote keeps the bytes: the DSN's Original-Recipient
      // is the address as the client gave it, mark and all.
      await c.send("MAIL FROM:<a@example.org> SMTPUTF8\r\n");
      assert.equal(await c.reply(), "250 2.1.0 Ok\r\n");
      await c.send("RCPT TO:<b@example.com> ORCPT=rfc822;+EF+BB+BFb@example.com\r\n");
      assert.equal(await c.reply(), "250 2.1.5 Ok\r\n");
      await c.send("RCPT TO:<c@example.com> ORCPT=rfc822;\ufeffc@example.com\r\n");
      assert.equal(await c.reply(), "250 2.1.5 Ok\r\n");
      await c.send("DATA\r\n");
      assert.match(await c.reply(), /^354 /);
      await c.send("Subject: bom\r\n\r\nbody\r\n.\r\n");
      const id = /^250 2\.0\.0 Ok: queued as (\w+)/.exec(await c.reply())?.[1];
      assert.ok(id);
      const text = await postcat(join(daemon.queueDir, "incoming", id));
      assert.match(text, /dsn_orig_rcpt=rfc822;\ufeffb@example\.com$/m);
      assert.match(text, /dsn_orig_rcpt=rfc822;\ufeffc@example\.com$/m);
      // "\ufeffRCPT" is no RCPT: a first word that does not start with a
      // letter ends the session, as Postfix's smtpd_forbidden_commands does.
      await c.send("MAIL FROM:<a@example.org>\r\n");
      assert.equal(await c.reply(), "250 2.1.0 Ok\r\n");
      await c.send("\ufeffRCPT TO:<b@example.com>\r\n");
      assert.match(await c.reply(), /^221 2\.7\.0 /);
      assert.equal(await c.reply(), "");
      c.close();
    } finally {
      await daemon.stop();
    }
  },
});
