/**
 * Recipient validation against the real daemon with swaks: a relay for
 * relay_domains refuses an unknown recipient at RCPT time (550 5.1.1), not
 * after accepting the message; local_recipient_maps alone takes effect
 * (smtpd_reject_unlisted_recipient defaults to yes); relay_domains from a
 * /file and mydestination from a table.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  makeWorkDir,
  postcat,
  queueFiles,
  startDaemon,
  swaks,
  swaksRcptReply,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** One swaks session: its transcript, RCPT reply and exit code. */
async function session(port: number, to: string) {
  const r = await swaks(port, [
    "--helo",
    "client.example.org",
    "--from",
    "sender@example.org",
    "--to",
    to,
    "--body",
    "recipient validation test",
  ], { timeoutMs: 30000 });
  return { out: r.stdout, rcpt: swaksRcptReply(r.stdout), code: r.code };
}

Deno.test({
  name:
    "relay_recipient_maps: swaks to an unknown relay recipient gets 550 5.1.1 at RCPT, a known one is queued",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("rcptval");
    const users = join(dir, "relay_recipients");
    await Deno.writeTextFile(users, "alice@relay.example OK\n");
    const d = await startDaemon(
      [
        `relay_domains = ["relay.example"]`,
        `relay_recipient_maps = ["texthash:${users}"]`,
        // Not trusted: 127.0.0.1 may only send to our destinations.
        `mynetworks = []`,
      ].join("\n"),
      { dir },
    );
    try {
      const bad = await session(d.port, "bob@relay.example");
      // deno-lint-ignore no-console
      console.log(bad.out.split("\n").filter((l) => /RCPT TO|<\*\* /.test(l)).join("\n"));
      assert.equal(
        bad.rcpt,
        "<** 550 5.1.1 <bob@relay.example>: Recipient address rejected: User unknown in relay recipient table",
      );
      assert.equal(bad.code, 24, "swaks: every recipient refused");
      assert.deepEqual(await queueFiles(d.queueDir), [], "nothing queued for the unknown user");
      await d.waitForLog(
        /NOQUEUE: reject: RCPT from [^:]+: 550 5\.1\.1 <bob@relay\.example>: Recipient address rejected: User unknown in relay recipient table; from=<sender@example\.org> to=<bob@relay\.example>/,
      );
      const good = await session(d.port, "alice@relay.example");
      assert.equal(good.rcpt, "<-  250 2.1.5 Ok");
      assert.equal(good.code, 0);
      const files = await queueFiles(d.queueDir);
      assert.equal(files.length, 1);
      assert.match(await postcat(files[0] as string), /recipient: alice@relay\.example/);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "local_recipient_maps alone refuses an unknown local user at RCPT (smtpd_reject_unlisted_recipient = yes)",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("rcptval");
    const users = join(dir, "local_users");
    await Deno.writeTextFile(users, "postmaster x\nalice x\n");
    const d = await startDaemon(`local_recipient_maps = ["texthash:${users}"]`, { dir });
    try {
      const bad = await session(d.port, "nobody@mx.test.example");
      assert.equal(
        bad.rcpt,
        "<** 550 5.1.1 <nobody@mx.test.example>: Recipient address rejected: User unknown in local recipient table",
      );
      const good = await session(d.port, "alice@mx.test.example");
      assert.equal(good.code, 0, good.out);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "relay_domains from a /file and mydestination from a table decide what is ours",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("rcptval");
    const relayFile = join(dir, "relay_domains");
    await Deno.writeTextFile(relayFile, "# domains we relay for\nfiled.example\n");
    const local = join(dir, "mydestination");
    await Deno.writeTextFile(local, "tabled.example OK\n");
    const d = await startDaemon(
      [
        `relay_domains = ["${relayFile}"]`,
        `mydestination = ["texthash:${local}"]`,
        `mynetworks = []`,
      ].join("\n"),
      { dir },
    );
    try {
      assert.equal((await session(d.port, "a@filed.example")).code, 0);
      assert.equal((await session(d.port, "a@tabled.example")).code, 0);
      const other = await session(d.port, "a@elsewhere.example");
      assert.equal(other.rcpt, "<** 454 4.7.1 <a@elsewhere.example>: Relay access denied");
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    'recipient_delimiter = "+": swaks to user+tag is validated and access-checked as user, and queued as sent; postmaster of a local domain always passes',
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("rcptval");
    const relayUsers = join(dir, "relay_recipients");
    await Deno.writeTextFile(relayUsers, "alice@relay.example OK\ncarol@relay.example OK\n");
    const localUsers = join(dir, "local_users");
    await Deno.writeTextFile(localUsers, "dave x\n");
    const access = join(dir, "recipient_access");
    await Deno.writeTextFile(access, "carol@relay.example REJECT Carol takes no mail\n");
    const d = await startDaemon(
      [
        `recipient_delimiter = "+"`,
        `relay_domains = ["relay.example"]`,
        `relay_recipient_maps = ["texthash:${relayUsers}"]`,
        `local_recipient_maps = ["texthash:${localUsers}"]`,
        `smtpd_recipient_restrictions = ["check_recipient_access texthash:${access}"]`,
        `mynetworks = []`,
      ].join("\n"),
      { dir },
    );
    try {
      const tagged = await session(d.port, "alice+news@relay.example");
      assert.equal(tagged.rcpt, "<-  250 2.1.5 Ok", tagged.out);
      assert.equal(tagged.code, 0);
      const files = await queueFiles(d.queueDir);
      assert.equal(files.length, 1);
      // The recipient is queued as the client wrote it, extension included.
      assert.match(await postcat(files[0] as string), /recipient: alice\+news@relay\.example/);
      const unknown = await session(d.port, "bob+news@relay.example");
      assert.equal(
        unknown.rcpt,
        "<** 550 5.1.1 <bob+news@relay.example>: Recipient address rejected: User unknown in relay recipient table",
      );
      const refused = await session(d.port, "carol+x@relay.example");
      assert.equal(
        refused.rcpt,
        "<** 554 5.7.1 <carol+x@relay.example>: Recipient address rejected: Carol takes no mail",
      );
      const local = await session(d.port, "dave+x@mx.test.example");
      assert.equal(local.code, 0, local.out);
      // Not in local_recipient_maps, yet accepted, as Postfix's check_rcpt_maps does.
      const postmaster = await session(d.port, "Postmaster@mx.test.example");
      assert.equal(postmaster.code, 0, postmaster.out);
      assert.equal((await queueFiles(d.queueDir)).length, 3);
    } finally {
      await d.stop();
    }
  },
});
