/**
 * Long records and a stock Postfix: its pickup reads a maildrop file with
 * records of at most line_length_limit (2048) bytes and throws away a file
 * holding a longer one, after our 250. A client decides how long three
 * records get: our Received: line with its recipient ("for <...>"), a
 * notify_classes transcript line (" In:  " before a command of up to 2048
 * bytes), and the dsn_orig_rcpt record of a long recipient. The first two
 * must be stored as L pieces, as Postfix's cleanup stores a long line; the
 * third cannot be split, so the message gets a 451 instead of a 250 and a
 * silent loss. The same for a BCC copy's dsn_orig_rcpt record, whose
 * address a client can make long through $1 of a regexp: table.
 */

import assert from "node:assert/strict";
import { makeWorkDir, queueFiles, runStdin, waitFor, writeConfig } from "./_harness.ts";
import { havePostfix, startPostfix } from "./_postfix.ts";

const isRoot = Deno.uid() === 0;

/** Waits until Postfix's pickup has removed every file from maildrop/. */
function pickedUp(queueDir: string): Promise<void> {
  return waitFor(
    "pickup to remove the delivered message's maildrop file",
    async () => (await queueFiles(queueDir, "maildrop")).length === 0,
  );
}

/**
 * Checks that a refused message left no file: none under its queue ID (in
 * any state), and, once pickup has taken what else the process queued
 * (the postmaster's notice of a resource problem, which notify_classes
 * sends by default and which may still be in maildrop/ when the process
 * has exited), none that Postfix's pickup found malformed.
 * @param queueDir the queue
 * @param stderr the process's log, which names the refused message's ID
 * @param pf the Postfix behind it
 */
async function leftNothing(
  queueDir: string,
  stderr: string,
  pf: { logText(): Promise<string> },
): Promise<void> {
  const id = stderr.match(/(\S+): reject: END-OF-MESSAGE/)?.[1];
  assert.ok(id, stderr);
  const left = await Deno.lstat(`${queueDir}/maildrop/${id}`).then(() => true, () => false);
  assert.equal(left, false, `maildrop/${id} was left behind`);
  await pickedUp(queueDir);
  const log = await pf.logText();
  assert.doesNotMatch(log, /illegal length|malformed record/, log);
}
const hasPostfix = await havePostfix();

Deno.test({
  name:
    "stand-alone: a Received: line and a transcript line past 2048 bytes reach the mailbox through Postfix's pickup; a dsn_orig_rcpt record past it gets 451",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("longrec");
    const pf = await startPostfix(dir, { name: "longrec" });
    try {
      const { configFile, queueDir } = await writeConfig(
        dir,
        `${pf.smtpdConfig}\nnotify_classes = ["protocol"]`,
      );
      // "\tfor <...>; date" is 2059 bytes; dsn_orig_rcpt=rfc822;<...> is 2041.
      const rcpt = `${"r".repeat(2010)}@example.com`;
      const noop = `NOOP ${"n".repeat(2040)}`;
      const one = await runStdin(
        configFile,
        `HELO local\r\nMAIL FROM:<a@sender.example>\r\nRCPT TO:<${rcpt}>\r\nDATA\r\n` +
          "Subject: long received\r\n\r\nbody one\r\n.\r\n" +
          `${noop}\r\nBOGUS\r\nQUIT\r\n`,
      );
      assert.match(one.stdout, /250 2\.0\.0 Ok: queued as/, one.stdout + one.stderr);
      assert.match(one.stderr, /notice of protocol problems sent to postmaster/, one.stderr);
      await pf.waitForMailbox("the message with the long Received: line", "body one");
      await pf.waitForMailbox("the transcript with the long NOOP line", "Transcript of session");
      const box = await pf.mailboxText();
      assert.ok(box.includes(`\tfor <${rcpt}>;`), "Received: line whole");
      assert.ok(box.includes(` In:  ${noop}\n`), "transcript line whole");

      // Pickup removes a maildrop file after its cleanup answered, which
      // may be after the delivery is logged: wait for that before the
      // refused message, whose file must not be left behind.
      await pickedUp(queueDir);

      // dsn_orig_rcpt=rfc822;<2038 bytes> is 2059 bytes: refused, nothing left.
      const rcpt2 = `${"s".repeat(2026)}@example.com`;
      const two = await runStdin(
        configFile,
        `HELO local\r\nMAIL FROM:<b@sender.example>\r\nRCPT TO:<${rcpt2}>\r\nDATA\r\n` +
          "Subject: long orcpt\r\n\r\nbody two\r\n.\r\nQUIT\r\n",
      );
      assert.match(two.stdout, /451 4\.3\.0 Error: queue file write error/, two.stdout);
      assert.match(two.stderr, /envelope record of 2059 bytes is longer than line_length_limit/);
      await leftNothing(queueDir, two.stderr, pf);
    } finally {
      await pf.stop();
    }
  },
});

Deno.test({
  name:
    "stand-alone: a BCC copy (from $1 of a regexp: table) reaches the mailbox through Postfix's pickup; one whose dsn_orig_rcpt record passes 2048 bytes gets 451",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("longbcc");
    const pf = await startPostfix(dir, { name: "longbcc" });
    try {
      const table = `${dir}/recipients.re`;
      await Deno.writeTextFile(table, "/^(.+)@example\\.com$/ BCC $1$1@copy.example\n");
      const { configFile, queueDir } = await writeConfig(
        dir,
        `${pf.smtpdConfig}\nsmtpd_recipient_restrictions = ["check_recipient_access", "regexp:${table}", "permit"]`,
      );
      const send = (local: string, body: string) =>
        runStdin(
          configFile,
          `HELO local\r\nMAIL FROM:<a@sender.example>\r\nRCPT TO:<${local}@example.com>\r\n` +
            `DATA\r\nSubject: ${body}\r\n\r\n${body}\r\n.\r\nQUIT\r\n`,
        );
      const short = await send("ab", "short copy");
      assert.match(short.stdout, /250 2\.0\.0 Ok: queued as/, short.stdout + short.stderr);
      await pf.waitForLog("the copy delivered", /to=<abab@copy\.example>.*status=sent/);
      await pickedUp(queueDir);

      // The copy's address is 2039 bytes (under 2048); its record
      // "dsn_orig_rcpt=rfc822;" + address is 2060: refused, nothing left.
      const long = await send("l".repeat(1013), "long copy");
      assert.match(long.stdout, /451 4\.3\.0 Error: queue file write error/, long.stdout);
      assert.match(long.stderr, /BCC record of 2060 bytes is longer than line_length_limit/);
      // The process also queued the postmaster's notice (notify_classes'
      // default "resource"): pickup may not have taken it yet.
      assert.match(long.stderr, /notice of resource problems sent to postmaster/);
      await leftNothing(queueDir, long.stderr, pf);
    } finally {
      await pf.stop();
    }
  },
});
