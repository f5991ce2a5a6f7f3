/**
 * UTF-8 in the headers of MIME parts and attached messages (an attachment's
 * `filename="été.pdf"`, a forwarded message's Subject:), from Python's
 * smtplib: Postfix's cleanup sets the SMTPUTF8 header bit of the queue
 * file's sendopts for any header it writes, not only the primary ones, and
 * so must we. With SMTPUTF8 on MAIL FROM and an all-ASCII envelope, that
 * bit is what makes Postfix's smtp client refuse a next hop without
 * SMTPUTF8 (5.6.7, a bounce to the sender) rather than send it raw UTF-8
 * headers: the second test lets a private Postfix relay the same message,
 * received once by its own smtpd and once by ours, to smtp-sink (which
 * offers no SMTPUTF8) and sees both bounced. That part needs root, Postfix
 * and smtp-sink and is skipped otherwise.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  freePort,
  makeWorkDir,
  postcat,
  run,
  sh,
  spawnLogged,
  startDaemon,
  waitFor,
} from "./_harness.ts";
import { havePostfix, relayDomainTo, SMTP_CLIENT_SERVICE, startPostfix } from "./_postfix.ts";

const isRoot = Deno.uid() === 0;
const hasPostfix = await havePostfix();
const hasSink = (await run("sh", ["-c", "command -v smtp-sink"])).code === 0;

/** A message whose only UTF-8 is an attachment's file name. */
const ATTACHMENT = [
  "Subject: report",
  "MIME-Version: 1.0",
  'Content-Type: multipart/mixed; boundary="=-b1"',
  "",
  "--=-b1",
  "Content-Type: text/plain",
  "",
  "see attached",
  "--=-b1",
  "Content-Type: application/pdf",
  'Content-Disposition: attachment; filename="été.pdf"',
  "Content-Transfer-Encoding: base64",
  "",
  "JVBERi0=",
  "--=-b1--",
  "",
].join("\r\n");

/** A forwarded message whose Subject: is UTF-8. */
const FORWARDED = [
  "Subject: fwd",
  "MIME-Version: 1.0",
  "Content-Type: message/rfc822",
  "",
  "From: <a@example.org>",
  "Subject: Grüße",
  "",
  "inner",
  "",
].join("\r\n");

/** The same words in a part's body only: no header bit. */
const BODY_ONLY = ATTACHMENT.replace('filename="été.pdf"', 'filename="ete.pdf"')
  .replace("see attached", "voilà");

/** smtplib: one message with SMTPUTF8; prints the reply to the end of data. */
const SEND = `
import smtplib, sys
port, sender, rcpt, msg = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
with smtplib.SMTP("127.0.0.1", port) as s:
    s.ehlo("client.example")
    s.mail(sender, ["SMTPUTF8"])
    s.rcpt(rcpt)
    code, text = s.data(msg.encode("utf-8"))
    print(code, text.decode())
`;

async function send(port: number, sender: string, rcpt: string, msg: string): Promise<string> {
  const r = await run("python3", ["-c", SEND, String(port), sender, rcpt, msg]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const id = /^250 .*queued as (\w+)/m.exec(r.stdout)?.[1];
  assert.ok(id, r.stdout);
  return id;
}

/** The size record's last field: the SMTPUTF8 sendopts bits. */
function sendOpts(pc: string): string | undefined {
  return /^message_size:(?: +\d+){5} +(\d+)$/m.exec(pc)?.[1];
}

Deno.test({
  name:
    "UTF-8 in a MIME part's or an attached message's header sets the SMTPUTF8 header bit (postcat), as Postfix's cleanup does",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const d = await startDaemon('mynetworks = ["127.0.0.0/8"]');
    try {
      const cases: [string, string, string][] = [
        ["attachment file name", ATTACHMENT, "3"],
        ["attached message's Subject:", FORWARDED, "3"],
        ["UTF-8 in a part's body only", BODY_ONLY, "1"],
      ];
      for (const [what, msg, want] of cases) {
        const id = await send(d.port, "s@example.org", "r@example.net", msg);
        const pc = await postcat(join(d.queueDir, "incoming", id));
        // 1: SMTPUTF8 requested; 2: a header holds UTF-8 (Postfix's sendopts.h).
        assert.equal(sendOpts(pc), want, `${what}:\n${pc}`);
      }
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "Postfix bounces an SMTPUTF8 message with a UTF-8 attachment name to a next hop without SMTPUTF8, received by its smtpd or by ours",
  ignore: !isRoot || !hasPostfix || !hasSink,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("utf8-mime");
    const sinkPort = freePort();
    await sh(`mkdir -p ${dir}/sink && chown nobody ${dir}/sink`);
    const sink = spawnLogged("smtp-sink", [
      "-u",
      "nobody",
      "-D",
      join(dir, "sink", "dump"),
      `127.0.0.1:${sinkPort}`,
      "10",
    ]);
    const pfPort = freePort();
    let pf;
    let d;
    try {
      pf = await startPostfix(dir, {
        name: "utf8mime",
        smtpdPort: pfPort,
        mainCfExtra: await relayDomainTo(dir, "example.net", sinkPort),
        masterCfExtra: SMTP_CLIENT_SERVICE,
      });
      d = await startDaemon(`${pf.smtpdConfig}\nmynetworks = ["127.0.0.0/8"]`, { dir });
      const theirs = await send(pfPort, "s1@sender.example", "r@example.net", ATTACHMENT);
      const ours = await send(d.port, "s2@sender.example", "r@example.net", ATTACHMENT);
      for (const id of [theirs, ours]) {
        await pf.waitForLog(
          `${id} bounced for want of SMTPUTF8`,
          new RegExp(`${id}: to=<r@example\\.net>.* dsn=5\\.6\\.7, status=bounced .*SMTPUTF8`),
        );
      }
      // Each sender gets Postfix's bounce (through the mbox pipe): two
      // messages, delivered in either order.
      const instance = pf;
      const bounced = (box: string) =>
        /^To: s1@sender\.example$/m.test(box) && /^To: s2@sender\.example$/m.test(box);
      await waitFor(
        "both bounces in the mailbox",
        async () => bounced(await instance.mailboxText()),
      ).catch(() => {});
      const box = await pf.mailboxText();
      assert.match(box, /^To: s1@sender\.example$/m);
      assert.match(box, /^To: s2@sender\.example$/m);
    } finally {
      await d?.stop();
      await pf?.stop();
      await sink.stop();
    }
  },
});
