/**
 * IPv4 address literals with leading zeros (`[01.2.3.4]`), side by side
 * with a real Postfix 3.7 smtpd: its valid_ipv4_hostaddr takes them as
 * valid syntax in MAIL, RCPT, ETRN and HELO, so the same bytes must get the
 * same replies from our daemon. Where Postfix then reads such a literal as
 * an address (its own-address check goes through the C library, which
 * reads `0177` as octal), we read none (README, "One IP syntax
 * everywhere"): `[0177.0.0.1]` and `[127.0.0.01]` are not our 127.0.0.1,
 * so they are relaying, refused. Needs root and Postfix.
 */

import assert from "node:assert/strict";
import { freePort, makeWorkDir, RawClient, startDaemon } from "./_harness.ts";
import { havePostfix, startPostfix } from "./_postfix.ts";

const isRoot = Deno.uid() === 0;
const hasPostfix = await havePostfix();

/** One session: each line sent alone, its reply read; the greeting replies made alike. */
async function play(port: number, lines: string[]): Promise<string[]> {
  const c = await RawClient.connect(port);
  try {
    await c.reply();
    const replies: string[] = [];
    for (const line of lines) {
      await c.send(new TextEncoder().encode(`${line}\r\n`));
      const reply = (await c.reply()).trimEnd();
      replies.push(/^(HELO|EHLO) /.test(line) && reply.startsWith("250") ? "250 host" : reply);
    }
    return replies;
  } finally {
    c.close();
  }
}

const LITERALS = [
  "EHLO client.example",
  "MAIL FROM:<a@[01.2.3.4]>",
  "RCPT TO:<u@[01.2.3.4]>",
  "RCPT TO:<u@[192.0.2.010]>",
  "RCPT TO:<u@[00.1.2.3]>",
  "RCPT TO:<u@[0.1.2.3]>",
  "RCPT TO:<u@[1.2.3.0256]>",
  "RCPT TO:<u@[010.0.0.1]>",
  "RCPT TO:<u@[10.0.0.1]>",
  "RCPT TO:<u@[8.0.0.1]>",
  "QUIT",
];

const HELO_ETRN = [
  "HELO [01.2.3.4]",
  "ETRN [01.2.3.4]",
  "MAIL FROM:<a@x.example>",
  "RCPT TO:<u@x.example>",
  "QUIT",
];

Deno.test({
  name:
    "address literals with leading zeros, side by side with Postfix 3.7: valid in MAIL, RCPT, ETRN and HELO, never read as our own address",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("literal0");
    // [010.0.0.1] must not match 10.0.0.0/8 (read as decimal) nor
    // 8.0.0.0/8 (read as octal): in Postfix's cidr tables it matches neither.
    const cidr = `${dir}/nets.cidr`;
    await Deno.writeTextFile(cidr, "10.0.0.0/8 REJECT ten\n8.0.0.0/8 REJECT eight\n");
    await Deno.chmod(cidr, 0o644);
    const pfPort = freePort();
    const pf = await startPostfix(dir, {
      name: "literal0",
      smtpdPort: pfPort,
      mainCfExtra: [
        "mynetworks = 192.0.2.0/24",
        "mydestination = x.example",
        "smtpd_peername_lookup = no",
        "smtpd_error_sleep_time = 0",
        "smtpd_helo_restrictions = reject_invalid_helo_hostname",
        "smtpd_recipient_restrictions = reject_non_fqdn_recipient, reject_unauth_destination",
        "smtpd_etrn_restrictions = reject",
        `smtpd_relay_restrictions = permit_mynetworks, check_recipient_mx_access cidr:${cidr}, reject_unauth_destination`,
        "",
      ].join("\n"),
    });
    const d = await startDaemon(
      [
        'mynetworks = ["192.0.2.0/24"]',
        'mydestination = ["x.example"]',
        "smtpd_peername_lookup = false",
        'smtpd_helo_restrictions = ["reject_invalid_helo_hostname"]',
        'smtpd_recipient_restrictions = ["reject_non_fqdn_recipient", "reject_unauth_destination"]',
        'smtpd_etrn_restrictions = ["reject"]',
        `smtpd_relay_restrictions = ["permit_mynetworks", "check_recipient_mx_access cidr:${cidr}", "reject_unauth_destination"]`,
      ].join("\n"),
    );
    try {
      const want = await play(pfPort, LITERALS);
      assert.deepEqual(want.slice(1), [
        "250 2.1.0 Ok",
        "554 5.7.1 <u@[01.2.3.4]>: Relay access denied",
        "554 5.7.1 <u@[192.0.2.010]>: Relay access denied",
        "501 5.1.3 Bad recipient address syntax",
        "501 5.1.3 Bad recipient address syntax",
        "501 5.1.3 Bad recipient address syntax",
        "554 5.7.1 <u@[010.0.0.1]>: Relay access denied",
        "554 5.7.1 <u@[10.0.0.1]>: Recipient address rejected: ten",
        "554 5.7.1 <u@[8.0.0.1]>: Recipient address rejected: eight",
        "221 2.0.0 Bye",
      ]);
      assert.deepEqual(await play(d.port, LITERALS), want);

      const heloWant = await play(pfPort, HELO_ETRN);
      assert.deepEqual(heloWant.slice(1, 4), [
        "554 5.7.1 <[01.2.3.4]>: Etrn command rejected: Access denied",
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
      ]);
      assert.deepEqual(await play(d.port, HELO_ETRN), heloWant);

      // Where we differ on purpose: Postfix reads these as its own 127.0.0.1
      // (octal, and a leading zero dropped) and takes them; we read them as
      // no address, so they are relaying. [127.0.0.1] itself is ours in both.
      const own = [
        "EHLO client.example",
        "MAIL FROM:<a@x.example>",
        "RCPT TO:<u@[0177.0.0.1]>",
        "RCPT TO:<u@[127.0.0.01]>",
        "RCPT TO:<u@[127.0.0.1]>",
        "QUIT",
      ];
      assert.deepEqual((await play(pfPort, own)).slice(2, 5), [
        "250 2.1.5 Ok",
        "250 2.1.5 Ok",
        "250 2.1.5 Ok",
      ]);
      assert.deepEqual((await play(d.port, own)).slice(2, 5), [
        "554 5.7.1 <u@[0177.0.0.1]>: Relay access denied",
        "554 5.7.1 <u@[127.0.0.01]>: Relay access denied",
        "250 2.1.5 Ok",
      ]);
    } finally {
      await d.stop();
      await pf.stop();
    }
  },
});
