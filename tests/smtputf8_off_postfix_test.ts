/**
 * Commands holding 8-bit bytes that are not UTF-8, with smtputf8_enable
 * off, side by side with a real Postfix 3.7 smtpd (smtputf8_enable = no):
 * the same client bytes go to Debian's Postfix and to our daemon, and the
 * replies, the disconnect line's command counts and the HELO name written
 * into Received: must be the same. Postfix checks a line for valid UTF-8
 * only with SMTPUTF8 on; off, each command reads the line as it comes
 * (NOOP and QUIT take anything, RSET refuses an argument, an unknown word
 * is unknown) and the HELO name keeps "?" for each byte outside printable
 * ASCII. Needs root and Postfix.
 */

import assert from "node:assert/strict";
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

/** Bytes as written: each character below U+0100 one byte ("\xff" is 0xff). */
function raw(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** One session: each line sent alone, its reply read. The replies, names made alike. */
async function play(port: number, lines: string[]): Promise<string[]> {
  const c = await RawClient.connect(port);
  try {
    await c.reply();
    const replies: string[] = [];
    for (const line of lines) {
      await c.send(raw(`${line}\r\n`));
      const reply = (await c.reply()).trimEnd();
      // HELO and EHLO answer with each server's own name and keywords.
      replies.push(
        /^(HELO|EHLO) /.test(line) && reply.startsWith("250")
          ? "250 host"
          : reply.replace(/queued as \S+/, "queued as ID"),
      );
    }
    return replies;
  } finally {
    c.close();
  }
}

/** The smtpd disconnect lines of a log, without time, host, PID and client. */
function disconnects(log: string): string[] {
  return log.split("\n")
    .filter((l) => /\/smtpd\[\d+\]: disconnect from /.test(l))
    .map((l) => l.replace(/^.*?disconnect from \S+ /, ""));
}

const COMMANDS = [
  "EHLO b\xffr",
  "HELO b\xc3\xb6r",
  "EHLO client.example",
  "NOOP \xff",
  "RSET \xff",
  "X\xff",
  "QUIT \xff",
];

const MESSAGE = [
  "EHLO b\xffr\xc3\xb6",
  "MAIL FROM:<a@x.example>",
  "RCPT TO:<u@x.example>",
  "DATA",
  "Subject: s\r\n\r\nbody\r\n.",
  "QUIT",
];

Deno.test({
  name:
    "8-bit bytes that are not UTF-8 in commands, smtputf8_enable off, side by side with Postfix 3.7: replies, counts, the HELO name kept",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("utf8off");
    const pfPort = freePort();
    const pf = await startPostfix(dir, {
      name: "utf8off",
      smtpdPort: pfPort,
      mainCfExtra: [
        "mynetworks = 127.0.0.0/8",
        "smtpd_peername_lookup = no",
        "smtpd_error_sleep_time = 0",
        "smtputf8_enable = no",
        // Held, so its queue file stays for postcat.
        "header_checks = static:HOLD",
        "",
      ].join("\n"),
    });
    const d = await startDaemon(
      ['mynetworks = ["127.0.0.0/8"]', "smtpd_peername_lookup = false", "smtputf8_enable = false"]
        .join("\n"),
    );
    try {
      const want = await play(pfPort, COMMANDS);
      assert.deepEqual(want.slice(3), [
        "250 2.0.0 Ok",
        "501 5.5.4 Syntax: RSET",
        "500 5.5.2 Error: command not recognized",
        "221 2.0.0 Bye",
      ]);
      assert.deepEqual(await play(d.port, COMMANDS), want);
      await waitFor(
        "Postfix's disconnect line",
        async () => disconnects(await pf.logText()).length === 1,
      );
      await waitFor(
        "our disconnect line",
        () => Promise.resolve(disconnects(d.log()).length === 1),
      );
      assert.deepEqual(disconnects(d.log()), disconnects(await pf.logText()));

      // Where we differ on purpose (README): an 8-bit local part without
      // SMTPUTF8 is refused (Postfix with smtputf8_enable = no takes it, 250).
      assert.deepEqual(
        await play(d.port, ["EHLO client.example", "MAIL FROM:<j\xffe@x.example>"]),
        ["250 host", "501 5.1.7 Bad sender address syntax"],
      );

      // The HELO name in Received: "?" for each byte outside printable ASCII.
      const queued = await play(pfPort, MESSAGE);
      assert.match(queued[4] ?? "", /^250 2\.0\.0 Ok: queued as ID$/);
      assert.deepEqual(await play(d.port, MESSAGE), queued);
      await waitFor("Postfix's held queue file", async () => {
        const files = await queueFiles(pf.queueDir, "hold").catch(() => []);
        return files.length === 1;
      });
      const [held] = await queueFiles(pf.queueDir, "hold");
      const [ours] = await queueFiles(d.queueDir, "incoming");
      assert.ok(held && ours);
      const from = async (file: string) =>
        (await postcat(file)).split("\n").find((l) => l.startsWith("Received: from "));
      assert.equal(await from(held), "Received: from b?r?? (unknown [127.0.0.1])");
      assert.equal(await from(ours), await from(held));
    } finally {
      await d.stop();
      await pf.stop();
    }
  },
});

/** The text after "in VRFY command: " or "in RCPT command: " in our warnings. */
function illegalSyntax(log: string): string[] {
  return [...log.matchAll(/Illegal address syntax from \S+ in (\w+) command: (.*)/g)]
    .map((m) => `${m[1]} ${m[2]}`);
}

Deno.test({
  name:
    "smtputf8_enable off, side by side with Postfix 3.7: the log holds printable ASCII only, a '?' for each other byte",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("utf8off-log");
    const pfPort = freePort();
    const pf = await startPostfix(dir, {
      name: "utf8offlog",
      smtpdPort: pfPort,
      mainCfExtra: [
        "mynetworks = 127.0.0.0/8",
        "smtpd_peername_lookup = no",
        "smtpd_error_sleep_time = 0",
        "smtputf8_enable = no",
        "smtpd_recipient_restrictions = reject_unauth_destination",
        "",
      ].join("\n"),
    });
    const d = await startDaemon(
      [
        'mynetworks = ["127.0.0.0/8"]',
        "smtpd_peername_lookup = false",
        "smtputf8_enable = false",
        'smtpd_recipient_restrictions = ["reject_unauth_destination"]',
      ].join("\n"),
    );
    const session = [
      "EHLO client.example",
      "VRFY \xff\x80",
      "VRFY <j\xc3\xb6@x\xff.example>",
      "VRFY j\xe2\x82x",
      "MAIL FROM:<a@x.example>",
      "RCPT TO:<j\xc3\xb6@other.example>",
      "QUIT",
    ];
    try {
      await play(pfPort, session);
      await play(d.port, session);
      await waitFor(
        "Postfix's disconnect line",
        async () => disconnects(await pf.logText()).length === 1,
      );
      await waitFor(
        "our disconnect line",
        () => Promise.resolve(disconnects(d.log()).length === 1),
      );
      // Postfix takes the 8-bit addresses (refused as relaying); we refuse
      // their syntax (README). Each logs the address with a "?" a byte.
      const pfLog = await pf.logText();
      const logged = [...pfLog.matchAll(/reject: (\w+) from .*? to=<([^>]*)>/g)]
        .map((m) => `${m[1]} ${m[2]}`);
      assert.deepEqual(logged, ["VRFY ??", "VRFY j??x", "RCPT j??@other.example"]);
      assert.deepEqual(illegalSyntax(pfLog), ["VRFY <j??@x?.example>"]);
      assert.deepEqual(illegalSyntax(d.log()), [
        "VRFY ??",
        "VRFY <j??@x?.example>",
        "VRFY j??x",
        "RCPT <j??@other.example>",
      ]);
      assert.doesNotMatch(d.log(), /[\u0080-\u{10ffff}]/u);
    } finally {
      await d.stop();
      await pf.stop();
    }
  },
});
