/**
 * Session edges side by side with a real Postfix 3.7 smtpd: the same client
 * bytes go to Debian's Postfix and to our daemon, one session after the
 * other, and the replies, the smtpd log lines that matter and the queued
 * envelope records must be the same. Covered: RFC 822 forms inside the
 * brackets (comments, white space) with what is queued for them; the
 * replies of commands that take no argument and DATA's order of checks; the
 * reject_unauth_pipelining text; the log of a client lost or timed out in
 * the middle of DATA or BDAT and the disconnect line's command statistics; Postfix 3.7's
 * "improper command pipelining" log line; SIZE= values; AUTH= on MAIL with AUTH off.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  freePort,
  makeWorkDir,
  postcat,
  queueFiles,
  RawClient,
  startDaemon,
  waitFor,
} from "./_harness.ts";
import { havePostfix, startPostfix } from "./_postfix.ts";

const isRoot = Deno.uid() === 0;
const hasPostfix = await havePostfix();

/** One write of a session and how many replies it gets. */
type Step = [bytes: string, replies: number];

/** A session: its writes (the client closes after the last one). */
interface Script {
  steps: Step[];
}

/** The replies of one session, host names and queue IDs made alike. */
async function play(port: number, script: Script): Promise<string[]> {
  const c = await RawClient.connect(port);
  try {
    const replies = [normalize(await c.reply())];
    for (const [bytes, count] of script.steps) {
      await c.send(bytes);
      for (let i = 0; i < count; i++) {
        // A reply that does not come is a difference to show, not a crash.
        // Waited for long enough for a loaded host: every script's replies
        // come (the 421 of TIMEOUT_IN_DATA after smtpd_timeout, 2 s).
        const reply = await c.reply(20000).catch(() => "(no reply)");
        replies.push(normalize(reply));
        if (reply === "(no reply)") return replies;
      }
    }
    return replies;
  } finally {
    c.close();
  }
}

function normalize(reply: string): string {
  return reply
    .replace(/^220 .*/, "220 greeting")
    .replace(/^250-[^\r\n]*/, "250-host")
    .replace(/queued as \S+/, "queued as ID")
    .replace(/^421 4\.4\.2 \S+ /, "421 4.4.2 host ")
    .trimEnd();
}

/** The smtpd lines of a log (Postfix's or ours), without time, host and PID. */
function smtpdLines(log: string): string[] {
  return log.split("\n")
    .filter((l) => /\/smtpd\[\d+\]: /.test(l))
    .map((l) => l.replace(/^.*?\/smtpd\[\d+\]: /, ""));
}

/** The lines of one session: from its connect to its disconnect. */
function lastSession(lines: string[]): string[] {
  const start = lines.findLastIndex((l) => l.startsWith("connect from "));
  return lines.slice(start).filter((l) =>
    /^(improper command pipelining|lost connection|timeout after|disconnect from|warning: Illegal)/
      .test(l)
  );
}

/** Envelope records of a queue file that the address forms decide. */
async function envelope(file: string): Promise<string[]> {
  return (await postcat(file)).split("\n")
    .filter((l) => /^(sender|original_recipient|recipient): /.test(l));
}

const ADDRESS_FORMS: Script = {
  steps: [
    ["EHLO client.example\r\n", 1],
    ["MAIL FROM:<a(comment)@x.example>\r\n", 1],
    ["RCPT TO:< u@x.example >\r\n", 1],
    ["RCPT TO:<u(c)@x.example>\r\n", 1],
    ["RCPT TO:<u . v @ x . example>\r\n", 1],
    ['RCPT TO:<"a b" (c) @x.example>\r\n', 1],
    ["RCPT TO:<u@x.example (c)>\r\n", 1],
    // Without brackets: a quoted string with a blank is one word for Postfix.
    ['RCPT TO:"q r"@x.example NOTIFY=NEVER\r\n', 1],
    // ORCPT=utf-8: a backslash that starts no \x{ is itself, \x{} takes any number of digits.
    ["RCPT TO:<o@x.example> ORCPT=utf-8;o\\b\\x{00000E9}@x.example\r\n", 1],
    ["RCPT TO:<a b@x.example>\r\n", 1],
    ["RCPT TO:< @r.example,@s.example:u@x.example>\r\n", 1],
    ["DATA\r\n", 1],
    ["Subject: forms\r\n\r\nbody\r\n.\r\n", 1],
    ["QUIT\r\n", 1],
  ],
};

const NO_ARGUMENTS: Script = {
  steps: [
    ["RSET x\r\n", 1],
    // Blanks are SP and HT: U+3000 and U+00A0 are arguments.
    ["RSET \u3000\r\n", 1],
    ["STARTTLS \u00a0\r\n", 1],
    ["DATA x\r\n", 1],
    ["NOOP x\r\n", 1],
    ["STARTTLS x\r\n", 1],
    ["VRFY\r\n", 1],
    // Without brackets the address ends at SP or HT: U+00A0 is part of it.
    ["VRFY u\u00a0v@x.example SMTPUTF8\r\n", 1],
    ["EHLO client.example\r\n", 1],
    ["MAIL FROM:<a@x.example>\r\n", 1],
    ["DATA x\r\n", 1],
    ["RCPT TO:<u@x.example>\r\n", 1],
    ["DATA x\r\n", 1],
    ["QUIT x\r\n", 1],
  ],
};

const LOST_IN_DATA: Script = {
  steps: [
    ["EHLO client.example\r\n", 1],
    ["MAIL FROM:<a@x.example>\r\n", 1],
    ["RCPT TO:<u@x.example>\r\n", 1],
    ["DATA\r\n", 1],
    ["ab\r\n..dot\r\nhalf a li", 0],
  ],
};

// A message past message_size_limit (100000 for both): the reply to its dot.
const DATA_TOO_BIG: Script = {
  steps: [
    ["EHLO client.example\r\n", 1],
    ["MAIL FROM:<a@x.example>\r\n", 1],
    ["RCPT TO:<u@x.example>\r\n", 1],
    ["DATA\r\n", 1],
    [`Subject: big\r\n\r\n${`${"x".repeat(998)}\r\n`.repeat(150)}.\r\n`, 1],
    ["QUIT\r\n", 1],
  ],
};

// Both servers wait smtpd_timeout = 2 seconds.
const TIMEOUT_IN_DATA: Script = {
  steps: [
    ["EHLO client.example\r\n", 1],
    ["MAIL FROM:<a@x.example>\r\n", 1],
    ["RCPT TO:<u@x.example>\r\n", 1],
    ["DATA\r\n", 1],
    ["ab\r\n..dot\r\nhalf a li", 1],
  ],
};

const LOST_IN_BDAT: Script = {
  steps: [
    ["EHLO client.example\r\n", 1],
    ["MAIL FROM:<a@x.example>\r\n", 1],
    ["RCPT TO:<u@x.example>\r\n", 1],
    ["BDAT 5\r\nabcde", 1],
    ["BDAT 10\r\nabc", 0],
  ],
};

const PIPELINED: Script = {
  steps: [
    ["EHLO client.example\r\nMAIL FROM:<a@x.example>\r\n", 2],
    ["RCPT TO:<u@x.example>\r\n", 1],
    ["DATA\r\n", 1],
    ["QUIT\r\n", 1],
  ],
};

// AUTH does not end a group for Postfix (no SMTPD_CMD_FLAG_LAST); NOOP does.
const PIPELINED_AFTER_AUTH: Script = {
  steps: [
    ["EHLO client.example\r\n", 1],
    ["AUTH PLAIN AGFsaWNl\r\nNOOP x\r\n", 2],
    ["NOOP\r\nQUIT\r\n", 2],
  ],
};

// SIZE= values: past message_size_limit (552), past 2^63 - 1 (552, another
// text), not all digits (501), with leading zeros; a bare SIZE (555).
const SIZE_VALUES: Script = {
  steps: [
    ["EHLO client.example\r\n", 1],
    ["MAIL FROM:<a@x.example> SIZE=1234567890123456\r\n", 1],
    ["MAIL FROM:<a@x.example> SIZE=9223372036854775807\r\n", 1],
    ["MAIL FROM:<a@x.example> SIZE=9223372036854775808\r\n", 1],
    ["MAIL FROM:<a@x.example> SIZE=99999999999999999999999\r\n", 1],
    ["MAIL FROM:<a@x.example> SIZE=12a\r\n", 1],
    ["MAIL FROM:<a@x.example> SIZE=\r\n", 1],
    ["MAIL FROM:<a@x.example> SIZE=+12\r\n", 1],
    ["MAIL FROM:<a@x.example> SIZE\r\n", 1],
    ["MAIL FROM:<a@x.example> SIZE=0000000000000000000001024\r\n", 1],
    // A parameter ends at SP or HT only: "SMTPUTF8\u00a0" is no SMTPUTF8.
    ["RSET\r\n", 1],
    ["MAIL FROM:<a@x.example> SMTPUTF8\u00a0\r\n", 1],
    ["MAIL FROM:<a@x.example> SIZE=10\u3000\r\n", 1],
    ["RSET\r\n", 1],
    ["MAIL FROM:<a@x.example> SIZE=0\r\n", 1],
    ["QUIT\r\n", 1],
  ],
};

// AUTH= on MAIL with AUTH off (smtpd_sasl_auth_enable = no for both): taken,
// as Postfix built with SASL takes it; <> names no sender, so only an AUTH=
// after one that named a sender is refused. RSET after each MAIL: Postfix
// 3.7 keeps the AUTH= sender of a refused MAIL until a reset, so a MAIL
// with AUTH= right after one would get its 503 (we do not copy that).
const AUTH_PARAMETER: Script = {
  steps: [
    ["EHLO client.example\r\n", 1],
    ["MAIL FROM:<a@x.example> AUTH=<> AUTH=<>\r\n", 1],
    ["RSET\r\n", 1],
    ["MAIL FROM:<a@x.example> AUTH=<> AUTH=a+40x.example\r\n", 1],
    ["RSET\r\n", 1],
    ["MAIL FROM:<a@x.example> AUTH=a+40x.example AUTH=<>\r\n", 1],
    ["RSET\r\n", 1],
    ["QUIT\r\n", 1],
  ],
};

Deno.test({
  name:
    "session edges side by side with Postfix 3.7: RFC 822 address forms and their queue records, no-argument commands, DATA's order, lost in DATA, improper pipelining",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("edges");
    const holdTable = join(dir, "hold_all");
    await Deno.writeTextFile(holdTable, "/^Subject:/ HOLD\n");
    const pfPort = freePort();
    const pf = await startPostfix(dir, {
      name: "edges",
      smtpdPort: pfPort,
      mainCfExtra: [
        "mynetworks = 127.0.0.0/8",
        "smtpd_peername_lookup = no",
        "smtpd_error_sleep_time = 0",
        "smtpd_timeout = 2s",
        "message_size_limit = 100000",
        "smtpd_data_restrictions = reject_unauth_pipelining",
        // Held, so its queue file stays for postcat.
        `header_checks = regexp:${holdTable}`,
        "",
      ].join("\n"),
    });
    const d = await startDaemon(
      [
        'mynetworks = ["127.0.0.0/8"]',
        "smtpd_peername_lookup = false",
        "smtpd_timeout = 2",
        "message_size_limit = 100000",
        'smtpd_data_restrictions = ["reject_unauth_pipelining"]',
      ].join("\n"),
    );
    try {
      const disconnects = (log: string) =>
        smtpdLines(log).filter((l) => l.startsWith("disconnect from")).length;
      const sessions = async (script: Script) => {
        const pfBefore = disconnects(await pf.logText());
        const ourBefore = disconnects(d.log());
        const theirs = await play(pfPort, script);
        const ours = await play(d.port, script);
        assert.deepEqual(ours, theirs, "replies");
        // Both sessions are over once each logged its disconnect line.
        await waitFor(
          "Postfix's disconnect line",
          async () => disconnects(await pf.logText()) > pfBefore,
        );
        await waitFor(
          "our disconnect line",
          () => Promise.resolve(disconnects(d.log()) > ourBefore),
        );
        return {
          theirs: lastSession(smtpdLines(await pf.logText())),
          ours: lastSession(smtpdLines(d.log())),
          replies: ours,
        };
      };

      // 1. RFC 822 forms: the same replies, log lines and queued records.
      const forms = await sessions(ADDRESS_FORMS);
      // The greeting, EHLO, then MAIL and seven RCPTs accepted.
      assert.deepEqual(forms.replies.slice(2, 10), [
        "250 2.1.0 Ok",
        ...Array(7).fill("250 2.1.5 Ok"),
      ]);
      assert.deepEqual(forms.ours, forms.theirs);
      const held = await waitFor("Postfix's held queue file", async () => {
        const files = await queueFiles(pf.queueDir, "hold").catch(() => []);
        return files.length === 1;
      }).then(() => queueFiles(pf.queueDir, "hold"));
      const [ourFile] = await queueFiles(d.queueDir, "incoming");
      assert.ok(ourFile && held[0]);
      const want = await envelope(held[0]);
      assert.ok(want.includes("original_recipient: u.v@x.example"), want.join("\n"));
      assert.deepEqual(await envelope(ourFile), want);
      const dsn = (file: string) =>
        postcat(file).then((t) => t.split("\n").filter((l) => l.includes("dsn_orig_rcpt=")));
      const theirDsn = await dsn(held[0]);
      assert.ok(
        theirDsn.some((l) => l.includes("dsn_orig_rcpt=utf-8;o\\b\u00e9@x.example")),
        theirDsn.join("\n"),
      );
      assert.deepEqual(await dsn(ourFile), theirDsn);

      // 2. Commands without arguments, DATA's order of checks.
      const noArgs = await sessions(NO_ARGUMENTS);
      assert.ok(noArgs.replies.includes("501 5.5.4 Syntax: RSET"), noArgs.replies.join("\n"));
      assert.deepEqual(noArgs.ours, noArgs.theirs);

      // 3. Lost in the middle of DATA: the bytes received, data=0/1.
      const lost = await sessions(LOST_IN_DATA);
      assert.ok(
        lost.theirs.includes("lost connection after DATA (10 bytes) from unknown[127.0.0.1]"),
        lost.theirs.join("\n"),
      );
      assert.deepEqual(lost.ours, lost.theirs);
      const big = await sessions(DATA_TOO_BIG);
      assert.equal(big.replies.at(-2), "552 5.3.4 Error: message file too big");
      const timedOut = await sessions(TIMEOUT_IN_DATA);
      assert.equal(timedOut.replies.at(-1), "421 4.4.2 host Error: timeout exceeded");
      assert.ok(
        timedOut.theirs.includes("timeout after DATA (10 bytes) from unknown[127.0.0.1]"),
        timedOut.theirs.join("\n"),
      );
      assert.deepEqual(timedOut.ours, timedOut.theirs);
      const lostBdat = await sessions(LOST_IN_BDAT);
      assert.ok(
        lostBdat.theirs.includes("lost connection after BDAT (8 bytes) from unknown[127.0.0.1]"),
        lostBdat.theirs.join("\n"),
      );
      assert.deepEqual(lostBdat.ours, lostBdat.theirs);

      // 4. Pipelined past EHLO: the log line, and the DATA refusal's text.
      const piped = await sessions(PIPELINED);
      assert.equal(
        piped.replies.at(-2),
        "503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining",
      );
      assert.deepEqual(piped.ours, piped.theirs);
      const afterAuth = await sessions(PIPELINED_AFTER_AUTH);
      assert.ok(
        afterAuth.theirs.includes(
          "improper command pipelining after NOOP from unknown[127.0.0.1]: QUIT\\r\\n",
        ),
        afterAuth.theirs.join("\n"),
      );
      assert.deepEqual(afterAuth.ours, afterAuth.theirs);

      // 5. SIZE= values: 552 past the limit or past 2^63 - 1, 501 not all digits, 555 bare.
      const sizes = await sessions(SIZE_VALUES);
      assert.equal(
        sizes.replies[2],
        "552 5.3.4 Message size exceeds fixed limit",
        sizes.replies.join("\n"),
      );
      assert.deepEqual(sizes.ours, sizes.theirs);
      // The size past message_size_limit is logged as a NOQUEUE reject, as Postfix logs it.
      const sizeRejects = (lines: string[]) =>
        lines.slice(lines.findLastIndex((l) => l.startsWith("connect from ")))
          .filter((l) => l.startsWith("NOQUEUE: reject: MAIL"));
      const theirRejects = sizeRejects(smtpdLines(await pf.logText()));
      assert.ok(
        theirRejects.some((l) => l.includes("552 5.3.4 Message size exceeds fixed limit")),
        theirRejects.join("\n"),
      );
      assert.deepEqual(sizeRejects(smtpdLines(d.log())), theirRejects);

      // 6. AUTH= on MAIL without AUTH offered: taken; a second one after a sender refused.
      const authParam = await sessions(AUTH_PARAMETER);
      assert.deepEqual(authParam.replies.slice(2, 7), [
        "250 2.1.0 Ok",
        "250 2.0.0 Ok",
        "250 2.1.0 Ok",
        "250 2.0.0 Ok",
        "503 5.5.4 Error: multiple AUTH= options",
      ]);
      assert.deepEqual(authParam.ours, authParam.theirs);
    } finally {
      await d.stop();
      await pf.stop();
    }
  },
});
