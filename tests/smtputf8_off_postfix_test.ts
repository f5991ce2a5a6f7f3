/**
 * Commands holding 8-bit bytes that are not UTF-8, with smtputf8_enable
 * off, side by side with a real Postfix 3.7 smtpd (smtputf8_enable = no):
 * the same client bytes go to Debian's Postfix and to our daemon, and the
 * replies, the disconnect line's command counts and the HELO name written
 * into Received: must be the same. Postfix checks a line for valid UTF-8
 * only with SMTPUTF8 on; off, each command reads the line as it comes
 * (NOOP and QUIT take anything, RSET refuses an argument, an unknown word
 * is unknown) and the HELO name keeps "?" for each byte outside printable
 * ASCII. An 8-bit local part is taken and its bytes, and those of an
 * ORCPT, reach the queue file as they came (compared with postcat, byte
 * for byte), as do those a 555 reply echoes; a refusal's text has a space
 * for each; the log a "?". Needs root and Postfix.
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

      // An 8-bit local part is taken (Postfix: "historically, Postfix does
      // not forbid 8-bit envelope localparts"), an 8-bit domain is not.
      const addresses = [
        "EHLO client.example",
        "MAIL FROM:<j\xffe@x.example>",
        "RSET",
        "MAIL FROM:<j@x\xff.example>",
      ];
      const taken = await play(pfPort, addresses);
      assert.deepEqual(taken.slice(1), [
        "250 2.1.0 Ok",
        "250 2.0.0 Ok",
        "501 5.1.7 Bad sender address syntax",
      ]);
      assert.deepEqual(await play(d.port, addresses), taken);

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
        // As the private Postfix: nothing local.
        "mydestination = []",
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
      // A refusal's text keeps printable ASCII, a space for each other byte
      // (Postfix's smtpd_check_reject), also in the log.
      const want = await playBytes(pfPort, session);
      assert.equal(want[5], "554 5.7.1 <j  @other.example>: Relay access denied");
      assert.deepEqual(await playBytes(d.port, session), want);
      await waitFor(
        "Postfix's disconnect line",
        async () => disconnects(await pf.logText()).length === 1,
      );
      await waitFor(
        "our disconnect line",
        () => Promise.resolve(disconnects(d.log()).length === 1),
      );
      // Both take the 8-bit local parts (refused as relaying) and refuse
      // the 8-bit domain's syntax. Each logs the address with a "?" a byte.
      const rejects = (log: string) =>
        [...log.matchAll(/reject: (\w+) from .*? to=<([^>]*)>/g)].map((m) => `${m[1]} ${m[2]}`);
      const pfLog = await pf.logText();
      assert.deepEqual(rejects(pfLog), ["VRFY ??", "VRFY j??x", "RCPT j??@other.example"]);
      assert.deepEqual(rejects(d.log()), rejects(pfLog));
      const texts = (log: string) => [...log.matchAll(/reject: (.*)/g)].map((m) => m[1]);
      assert.deepEqual(texts(d.log()), texts(pfLog));
      assert.deepEqual(illegalSyntax(pfLog), ["VRFY <j??@x?.example>"]);
      assert.deepEqual(illegalSyntax(d.log()), illegalSyntax(pfLog));
      assert.doesNotMatch(d.log(), /[\u0080-\u{10ffff}]/u);
    } finally {
      await d.stop();
      await pf.stop();
    }
  },
});

/** One session, as {@linkcode play}, the replies read as bytes (one character each). */
async function playBytes(port: number, lines: string[]): Promise<string[]> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let buf = "";
  const reply = async (): Promise<string> => {
    const end = Date.now() + 10_000;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r\n/.exec(buf);
      if (m) {
        buf = buf.slice(m[0].length);
        return m[0].trimEnd();
      }
      if (Date.now() > end) throw new Error(`no reply; have ${JSON.stringify(buf)}`);
      const chunk = new Uint8Array(4096);
      const n = await conn.read(chunk);
      if (n === null) throw new Error(`connection closed; have ${JSON.stringify(buf)}`);
      // Each byte one character (TextDecoder's "latin1" is windows-1252).
      buf += String.fromCharCode(...chunk.subarray(0, n));
    }
  };
  try {
    await reply();
    const replies: string[] = [];
    for (const line of lines) {
      await conn.write(raw(`${line}\r\n`));
      const r = await reply();
      replies.push(
        /^(HELO|EHLO) /.test(line) && r.startsWith("250")
          ? "250 host"
          : r.replace(/queued as \S+/, "queued as ID"),
      );
    }
    return replies;
  } finally {
    conn.close();
  }
}

/** postcat's lines for a queue file, each byte one character. */
async function postcatBytes(file: string): Promise<string[]> {
  await postcat(file); // its checks, and the configuration it writes first
  const conf = await Deno.makeTempDir({ prefix: "postcat-" });
  await Deno.writeTextFile(`${conf}/main.cf`, "");
  const out = await new Deno.Command("postcat", {
    args: ["-c", conf, file],
    stdout: "piped",
    stderr: "null",
  }).output();
  await Deno.remove(conf, { recursive: true });
  return String.fromCharCode(...out.stdout).split("\n");
}

/** The envelope and Received: lines of a queue file, as postcat shows them. */
async function envelope(file: string): Promise<string[]> {
  return (await postcatBytes(file)).filter((l) =>
    /^(sender|recipient|original_recipient): |^named_attribute: dsn_orig_rcpt=|^Received: |^\tfor /
      .test(l)
  );
}

// Bytes that are not UTF-8 (\xf6 \xff \xe9 alone) and UTF-8 (\xc3\xb6) mixed.
const RAW_MESSAGES = [[
  "EHLO client.example",
  "MAIL FROM:<a@x.example> FOO=\xe9\xff",
  "MAIL FROM:<j\xf6\xc3\xb6@x.example>",
  "RCPT TO:<u@x.example> BAR=\xff",
  "RCPT TO:<k\xf6\xff@x.example> ORCPT=rfc822;k\xf6\xff@x.example",
  "RCPT TO:<u@x.example> ORCPT=rfc822;\xc3\xa9\xff+E9@y.example",
  "RCPT TO:<v@x.example> ORCPT=utf-8;w\xf6@y.example",
  "DATA",
  "Subject: s\r\n\r\nbody\r\n.",
  "QUIT",
], [
  "EHLO client.example",
  'MAIL FROM:<"q\xf6 r"@x.example>',
  'RCPT TO:<"s\xff\\\xe9t"(\xf6 comment)@x.example>',
  "DATA",
  "Subject: t\r\n\r\nbody\r\n.",
  "QUIT",
]];

Deno.test({
  name:
    "smtputf8_enable off, side by side with Postfix 3.7: 8-bit addresses taken, their bytes kept raw in replies and the queue file, the log ASCII",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("utf8off-raw");
    const pfPort = freePort();
    const pf = await startPostfix(dir, {
      name: "utf8offraw",
      smtpdPort: pfPort,
      mainCfExtra: [
        "mynetworks = 127.0.0.0/8",
        "smtpd_peername_lookup = no",
        "smtpd_error_sleep_time = 0",
        "smtputf8_enable = no",
        // Held, so its queue files stay for postcat.
        "header_checks = static:HOLD",
        "",
      ].join("\n"),
    });
    const d = await startDaemon(
      ['mynetworks = ["127.0.0.0/8"]', "smtpd_peername_lookup = false", "smtputf8_enable = false"]
        .join("\n"),
    );
    try {
      for (const session of RAW_MESSAGES) {
        const want = await playBytes(pfPort, session);
        assert.equal(want.filter((r) => r.startsWith("250 2.0.0 Ok: queued")).length, 1);
        assert.deepEqual(await playBytes(d.port, session), want);
      }
      // The 555 echo as Postfix sends it, each byte as it came; VRFY's
      // address too (Postfix echoes it with its brackets: README).
      assert.deepEqual(
        await playBytes(d.port, [...RAW_MESSAGES[0]!.slice(0, 2), "VRFY <j\xf6@x.example>"]),
        [
          "250 host",
          "555 5.5.4 Unsupported option: FOO=\xe9\xff",
          "252 2.0.0 j\xf6@x.example",
        ],
      );
      await waitFor("Postfix's held queue files", async () => {
        const files = await queueFiles(pf.queueDir, "hold").catch(() => []);
        return files.length === 2;
      });
      const byFile = async (files: string[]) =>
        (await Promise.all(files.map(envelope))).map((lines) =>
          // Each Received: names its own server and writes its own date.
          lines.map((l) =>
            l.replace(/^Received: .*/, "Received: ...").replace(/^(\tfor <.*>;).*/, "$1")
          )
            .join("\n")
        ).sort();
      const held = await byFile(await queueFiles(pf.queueDir, "hold"));
      assert.ok(held.some((f) => f.includes("sender: j\xf6\xc3\xb6@x.example")), held.join("\n"));
      assert.ok(held.some((f) => f.includes("\tfor <s\xff\xe9t@x.example>;")), held.join("\n"));
      assert.deepEqual(await byFile(await queueFiles(d.queueDir, "incoming")), held);

      // The log: a "?" for each byte outside printable ASCII.
      await waitFor(
        "our disconnect lines",
        () => Promise.resolve(disconnects(d.log()).length === 3),
      );
      assert.doesNotMatch(d.log(), /[^\n\x20-\x7e]/);
      assert.match(d.log(), /from=<j\?\?\?@x\.example>/);
      assert.match(d.log(), /from=<"q\? r"@x\.example>/);
    } finally {
      await d.stop();
      await pf.stop();
    }
  },
});

Deno.test({
  name:
    "smtputf8_enable off, side by side with Postfix 3.7: where we differ on purpose, a C1 byte echoed and an ORCPT with a control character",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("utf8off-differ");
    const pfPort = freePort();
    const pf = await startPostfix(dir, {
      name: "utf8offdiffer",
      smtpdPort: pfPort,
      mainCfExtra: [
        "mynetworks = 127.0.0.0/8",
        "smtpd_peername_lookup = no",
        "smtpd_error_sleep_time = 0",
        "smtputf8_enable = no",
        "",
      ].join("\n"),
    });
    const d = await startDaemon(
      ['mynetworks = ["127.0.0.0/8"]', "smtpd_peername_lookup = false", "smtputf8_enable = false"]
        .join("\n"),
    );
    const session = [
      "EHLO client.example",
      "MAIL FROM:<a@x.example> FOO=\x9b\xe9",
      "MAIL FROM:<a@x.example>",
      "RCPT TO:<v@x.example> ORCPT=rfc822;a+00b@y.example",
      "RCPT TO:<v@x.example> ORCPT=rfc822;a+0D+0Ab@y.example",
      "QUIT",
    ];
    try {
      // README: Postfix echoes 0x9b (CSI in an 8-bit character set) as it
      // came, and writes a NUL (cutting the address there) or a CR LF into
      // the dsn_orig_rcpt record, which a DSN then shows.
      assert.deepEqual(await playBytes(pfPort, session), [
        "250 host",
        "555 5.5.4 Unsupported option: FOO=\x9b\xe9",
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        "250 2.1.5 Ok",
        "221 2.0.0 Bye",
      ]);
      assert.deepEqual(await playBytes(d.port, session), [
        "250 host",
        "555 5.5.4 Unsupported option: FOO=?\xe9",
        "250 2.1.0 Ok",
        "501 5.5.4 Error: Bad ORCPT parameter syntax",
        "501 5.5.4 Error: Bad ORCPT parameter syntax",
        "221 2.0.0 Bye",
      ]);
    } finally {
      await d.stop();
      await pf.stop();
    }
  },
});
