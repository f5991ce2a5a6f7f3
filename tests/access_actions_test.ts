/**
 * Access actions and the DATA/end-of-data lists end to end: the real
 * daemon, swaks and Python smtplib, queue files read back with Postfix's
 * postcat. HOLD puts the file in hold/, DISCARD answers 250 and keeps
 * nothing, PREPEND adds a header above Received:, smtpd_data_restrictions
 * refuse DATA before 354, smtpd_end_of_data_restrictions refuse after the
 * dot and leave no file.
 */

import assert from "node:assert/strict";
import { basename, join } from "node:path";
import {
  allEntries,
  greeted,
  makeWorkDir,
  postcat,
  queueFiles,
  run,
  runStdin,
  smtpdArgs,
  startDaemon,
  swaks,
  writeConfig,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const SENDER_ACTIONS = [
  "{ hold@s.example = HOLD held for review }",
  "{ discard@s.example = DISCARD spam }",
  "{ prepend@s.example = PREPEND X-Checked: by the access table }",
  "{ info@s.example = INFO looked at }",
].join(", ");

const CONFIG = [
  `smtpd_sender_restrictions = ["check_sender_access", "inline:{ ${SENDER_ACTIONS} }"]`,
  `smtpd_data_restrictions = ["check_sender_access", "inline:{ { nodata@s.example = REJECT no data from you } }"]`,
  `smtpd_end_of_data_restrictions = ["check_sender_access", "inline:{ { noeod@s.example = 550 5.7.1 not after the dot }, { eodhold@s.example = HOLD } }"]`,
].join("\n");

function sendFrom(
  port: number,
  from: string,
  extra: string[] = [],
): Promise<{ stdout: string }> {
  return swaks(port, [
    "--from",
    from,
    "--to",
    "user@example.com",
    "--body",
    "Hello actions",
    ...extra,
  ]);
}

Deno.test({
  name:
    "HOLD: 250, the queue file is in hold/ (not incoming/), postcat reads it, 'hold:' is logged",
  ...opts,
  fn: async () => {
    const d = await startDaemon(CONFIG);
    try {
      const r = await sendFrom(d.port, "hold@s.example");
      const m = /250 2\.0\.0 Ok: queued as (\w+)/.exec(r.stdout);
      assert.ok(m, r.stdout);
      const held = await queueFiles(d.queueDir, "hold");
      assert.deepEqual(held.map((f) => basename(f)), [m[1]]);
      assert.deepEqual(await allEntries(d.queueDir, "incoming"), []);
      const st = await Deno.stat(held[0] as string);
      assert.equal((st.mode ?? 0) & 0o777, 0o700);
      const pc = await postcat(held[0] as string);
      assert.match(pc, /^sender: hold@s\.example$/m);
      assert.match(pc, /^Hello actions$/m);
      await d.waitForLog(
        "NOQUEUE: hold: RCPT from unknown[127.0.0.1]: <hold@s.example>: Sender address held for review; from=<hold@s.example> to=<user@example.com> proto=ESMTP",
      );
      // No "(queue active)" line: Postfix's qmgr logs it when a file enters
      // its active queue, which a held file does not (log tools count it).
      await d.waitForLog("disconnect from");
      assert.match(d.log(), new RegExp(`${m[1]}: message-id=`));
      assert.doesNotMatch(d.log(), /queue active/);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "DISCARD: the client gets 250 queued as, no file is kept anywhere, 'discard:' is logged",
  ...opts,
  fn: async () => {
    const d = await startDaemon(CONFIG);
    try {
      const r = await sendFrom(d.port, "discard@s.example");
      assert.match(r.stdout, /250 2\.0\.0 Ok: queued as \w+/);
      assert.deepEqual(await allEntries(d.queueDir, "incoming"), []);
      assert.deepEqual(await queueFiles(d.queueDir, "hold"), []);
      await d.waitForLog(
        "NOQUEUE: discard: RCPT from unknown[127.0.0.1]: <discard@s.example>: Sender address spam; from=<discard@s.example>",
      );
      // That line is the RCPT's; a queued line would come at the end of the
      // data: read the log once the session's last line is there.
      await d.waitForLog("disconnect from");
      assert.doesNotMatch(d.log(), /: from=<discard@s\.example>, size=/);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "PREPEND: the header is in the queue file above our Received:; INFO only logs",
  ...opts,
  fn: async () => {
    const d = await startDaemon(CONFIG);
    try {
      const r = await sendFrom(d.port, "prepend@s.example");
      const m = /250 2\.0\.0 Ok: queued as (\w+)/.exec(r.stdout);
      assert.ok(m, r.stdout);
      const pc = await postcat(join(d.queueDir, "incoming", m[1] as string));
      const at = pc.indexOf("X-Checked: by the access table");
      assert.ok(at > 0, pc);
      assert.ok(at < pc.indexOf("Received: from"), pc);
      const i = await sendFrom(d.port, "info@s.example");
      const n = /250 2\.0\.0 Ok: queued as (\w+)/.exec(i.stdout);
      assert.ok(n, i.stdout);
      await d.waitForLog(
        "NOQUEUE: info: RCPT from unknown[127.0.0.1]: looked at; from=<info@s.example>",
      );
      const plain = await postcat(join(d.queueDir, "incoming", n[1] as string));
      assert.doesNotMatch(plain, /X-Checked/);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "smtpd_data_restrictions refuse DATA before 354; nothing is queued",
  ...opts,
  fn: async () => {
    const d = await startDaemon(CONFIG);
    try {
      const r = await sendFrom(d.port, "nodata@s.example");
      // check_sender_access names the sender, as in Postfix, in any list.
      assert.match(
        r.stdout,
        /\*\* 554 5\.7\.1 <nodata@s\.example>: Sender address rejected: no data from you/,
      );
      // A reply line, not any "354" (a port number in "Trying 127.0.0.1:35412" is one).
      assert.doesNotMatch(r.stdout, /^<[-~*]+ +354/m);
      assert.deepEqual(await allEntries(d.queueDir, "incoming"), []);
      await d.waitForLog(
        "NOQUEUE: reject: DATA from unknown[127.0.0.1]: 554 5.7.1 <nodata@s.example>: Sender address rejected: no data from you; from=<nodata@s.example> to=<user@example.com>",
      );
    } finally {
      await d.stop();
    }
  },
});

const SMTPLIB = `
import smtplib, sys
port, sender = int(sys.argv[1]), sys.argv[2]
with smtplib.SMTP("127.0.0.1", port) as s:
    s.ehlo("py.example")
    try:
        s.sendmail(sender, ["a@example.com", "b@example.com"], b"Subject: eod\\r\\n\\r\\nbody\\r\\n")
        print("accepted")
    except smtplib.SMTPDataError as e:
        print(e.smtp_code, e.smtp_error.decode())
`;

Deno.test({
  name: "smtpd_end_of_data_restrictions: a refusal after the dot leaves no file; HOLD there holds",
  ...opts,
  fn: async () => {
    const d = await startDaemon(CONFIG);
    try {
      const r = await run("python3", ["-c", SMTPLIB, String(d.port), "noeod@s.example"]);
      assert.equal(
        r.stdout.trim(),
        "550 5.7.1 <noeod@s.example>: Sender address rejected: not after the dot",
        r.stderr,
      );
      assert.deepEqual(await allEntries(d.queueDir, "incoming"), []);
      await d.waitForLog(
        /\w+: reject: END-OF-MESSAGE from unknown\[127\.0\.0\.1\]: 550 5\.7\.1 <noeod@s\.example>: Sender address rejected: not after the dot; from=<noeod@s\.example> proto=ESMTP/,
      );
      const h = await run("python3", ["-c", SMTPLIB, String(d.port), "eodhold@s.example"]);
      assert.equal(h.stdout.trim(), "accepted", h.stderr);
      assert.equal((await queueFiles(d.queueDir, "hold")).length, 1);
      await d.waitForLog(
        /\w+: hold: END-OF-MESSAGE from unknown\[127\.0\.0\.1\]: <eodhold@s\.example>: Sender address triggers HOLD action; from=<eodhold@s\.example>/,
      );
    } finally {
      await d.stop();
    }
  },
});

/** `smtpd explain` of a message from `from` to user@example.com, from 127.0.0.1. */
async function explainFrom(configFile: string, from: string) {
  return await run(
    Deno.execPath(),
    await smtpdArgs([
      "explain",
      "-c",
      configFile,
      "--client",
      "127.0.0.1",
      "--from",
      from,
      "--to",
      "user@example.com",
    ]),
  );
}

Deno.test({
  name: "smtpd explain shows the relay, DATA and end-of-data lists and the actions met",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("explain-actions");
    const { configFile } = await writeConfig(dir, CONFIG);
    const r = await explainFrom(configFile, "eodhold@s.example");
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination/,
    );
    assert.match(r.stdout, /^DATA$/m);
    assert.match(r.stdout, /smtpd_data_restrictions = check_sender_access/);
    assert.match(r.stdout, /^END-OF-MESSAGE$/m);
    assert.match(
      r.stdout,
      /action hold: <eodhold@s\.example>: Sender address triggers HOLD action/,
    );
  },
});

Deno.test({
  name:
    "a texthash: entry whose value, or the rest of its quoted key, is on a continuation line is read as Postfix reads it",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("texthash-continued");
    const table = join(dir, "senders");
    // postmap -q finds REJECT for lonely@s.example and 550 for "john smith"@s.example.
    await Deno.writeTextFile(
      table,
      [
        "lonely@s.example",
        "    REJECT go away",
        '"john',
        '  smith"@s.example',
        "  550 5.7.1 not john",
        "",
      ].join("\n"),
    );
    // Was: the start stopped ('missing value for key "lonely@s.example"').
    const d = await startDaemon(
      `smtpd_sender_restrictions = ["check_sender_access", "texthash:${table}"]`,
      { dir },
    );
    try {
      const lonely = await sendFrom(d.port, "lonely@s.example");
      assert.match(
        lonely.stdout,
        /554 5\.7\.1 <lonely@s\.example>: Sender address rejected: go away/,
      );
      const c = await greeted(d.port);
      try {
        await c.send('MAIL FROM:<"john smith"@s.example>\r\nRCPT TO:<user@example.com>\r\n');
        assert.match(await c.reply(), /^250 2\.1\.0 Ok/);
        assert.match(await c.reply(), /^550 5\.7\.1 <john smith@s\.example>: .*: not john/);
      } finally {
        c.close();
      }
      assert.match((await sendFrom(d.port, "other@s.example")).stdout, /250 2\.0\.0 Ok: queued/);
    } finally {
      await d.stop();
    }
  },
});

/** Sender table (texthash:) with the actions Postfix's smtpd hands to its cleanup. */
const DELEGATED_TABLE = [
  "filter@s.example    FILTER smtp:[127.0.0.1]:10025",
  "redirect@s.example  REDIRECT other@example.net",
  "bcc@s.example       BCC copy@example.net",
  "held@s.example      HOLD",
  "",
].join("\n");

/** The same from a texthash: file, and more on recipients (last FILTER wins, BCCs add up). */
async function delegatedDaemon() {
  const dir = await makeWorkDir("delegated");
  const table = join(dir, "senders");
  await Deno.writeTextFile(table, DELEGATED_TABLE);
  const recipients = [
    "{ last@example.com = FILTER relay:[127.0.0.1]:10099 }",
    "{ watched@example.com = BCC audit@example.net }",
    "{ gone@example.com = DISCARD }",
  ].join(", ");
  return await startDaemon(
    [
      `smtpd_sender_restrictions = ["check_sender_access", "texthash:${table}"]`,
      `smtpd_recipient_restrictions = ["check_recipient_access", "inline:{ ${recipients} }"]`,
    ].join("\n"),
    { dir },
  );
}

/** postcat's lines after "*** HEADER EXTRACTED", up to the end marker. */
function extracted(pc: string): string[] {
  const from = pc.indexOf("*** HEADER EXTRACTED");
  const to = pc.indexOf("*** MESSAGE FILE END");
  assert.ok(from > 0 && to > from, pc);
  return pc.slice(from, to).split("\n").slice(1).filter((l) => l !== "");
}

function queuedId(stdout: string): string {
  const m = /250 2\.0\.0 Ok: queued as (\w+)/.exec(stdout);
  assert.ok(m, stdout);
  return m[1] as string;
}

Deno.test({
  name:
    "FILTER, REDIRECT and BCC from a texthash: table: postcat shows content_filter, redirect_to and the copy's recipient after the content; each is logged",
  ...opts,
  fn: async () => {
    const d = await delegatedDaemon();
    try {
      const file = async (from: string) =>
        await postcat(
          join(d.queueDir, "incoming", queuedId((await sendFrom(d.port, from)).stdout)),
        );
      const f = await file("filter@s.example");
      assert.deepEqual(extracted(f), ["content_filter: smtp:[127.0.0.1]:10025"]);
      assert.match(f, /^recipient: user@example\.com$/m);
      const r = await file("redirect@s.example");
      assert.deepEqual(extracted(r), ["redirect_to: other@example.net"]);
      const b = await file("bcc@s.example");
      assert.deepEqual(extracted(b), [
        "named_attribute: notify_flags=1",
        "named_attribute: dsn_orig_rcpt=rfc822;copy@example.net",
        "original_recipient: copy@example.net",
        "recipient: copy@example.net",
      ]);
      // The copy is not in the message the recipients see.
      assert.doesNotMatch(b.slice(0, b.indexOf("*** HEADER EXTRACTED")), /copy@example\.net/);
      await d.waitForLog(
        "NOQUEUE: filter: RCPT from unknown[127.0.0.1]: <filter@s.example>: Sender address triggers FILTER smtp:[127.0.0.1]:10025; from=<filter@s.example> to=<user@example.com> proto=ESMTP",
      );
      await d.waitForLog(
        "NOQUEUE: redirect: RCPT from unknown[127.0.0.1]: <redirect@s.example>: Sender address triggers REDIRECT other@example.net; from=<redirect@s.example>",
      );
      await d.waitForLog(
        "NOQUEUE: bcc: RCPT from unknown[127.0.0.1]: <bcc@s.example>: Sender address triggers BCC copy@example.net; from=<bcc@s.example>",
      );
      await d.waitForLog(/: from=<bcc@s\.example>, size=\d+, nrcpt=2 /);
    } finally {
      await d.stop();
    }
  },
});

const RSET_SESSION = `
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as s:
    s.ehlo("py.example")
    s.mail("filter@s.example"); s.rcpt("user@example.com"); s.rset()
    s.sendmail("plain@s.example", ["user@example.com"], b"Subject: after rset\\r\\n\\r\\nbody\\r\\n")
    print("sent")
`;

Deno.test({
  name:
    "FILTER, REDIRECT and BCC together: the last FILTER wins, BCCs add up, HOLD holds, DISCARD wins, RSET forgets",
  ...opts,
  fn: async () => {
    const d = await delegatedDaemon();
    try {
      // With smtpd_delay_reject the sender list runs again at each RCPT, as
      // in Postfix: its FILTER comes first each time, the second RCPT's wins.
      const both = await sendFrom(d.port, "filter@s.example", [
        "--to",
        "watched@example.com,last@example.com",
      ]);
      const pc = await postcat(join(d.queueDir, "incoming", queuedId(both.stdout)));
      assert.deepEqual(extracted(pc), [
        "content_filter: relay:[127.0.0.1]:10099",
        "named_attribute: notify_flags=1",
        "named_attribute: dsn_orig_rcpt=rfc822;audit@example.net",
        "original_recipient: audit@example.net",
        "recipient: audit@example.net",
      ]);
      // The sender's BCC is met at each RCPT; one address is written once.
      const two = await sendFrom(d.port, "bcc@s.example", [
        "--to",
        "watched@example.com,user@example.com",
      ]);
      const copies = await postcat(join(d.queueDir, "incoming", queuedId(two.stdout)));
      assert.deepEqual(
        extracted(copies).filter((l) => l.startsWith("recipient:")),
        ["recipient: copy@example.net", "recipient: audit@example.net"],
      );

      const held = await sendFrom(d.port, "held@s.example", ["--to", "last@example.com"]);
      const id = queuedId(held.stdout);
      const inHold = await postcat(join(d.queueDir, "hold", id));
      assert.deepEqual(extracted(inHold), ["content_filter: relay:[127.0.0.1]:10099"]);

      const before = await allEntries(d.queueDir, "incoming");
      const gone = await sendFrom(d.port, "filter@s.example", ["--to", "gone@example.com"]);
      assert.match(gone.stdout, /250 2\.0\.0 Ok: queued as \w+/);
      assert.deepEqual(await allEntries(d.queueDir, "incoming"), before);

      const py = await run("python3", ["-c", RSET_SESSION, String(d.port)]);
      assert.equal(py.stdout.trim(), "sent", py.stderr);
      await d.waitForLog(/(\w+): from=<plain@s\.example>, size=/);
      const after = /(\w+): from=<plain@s\.example>, size=/.exec(d.log())?.[1] as string;
      const plain = await postcat(join(d.queueDir, "incoming", after));
      assert.deepEqual(extracted(plain), []);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "a FILTER without transport:destination in a texthash: table stops config --check and serve with file:line",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("delegated-bad");
    const table = join(dir, "senders");
    await Deno.writeTextFile(table, "ok@s.example OK\nbad@s.example FILTER amavis\n");
    const { configFile } = await writeConfig(
      dir,
      `\nsmtpd_sender_restrictions = ["check_sender_access", "texthash:${table}"]`,
    );
    const want = new RegExp(
      `smtpd\\.toml:\\d+: smtpd_sender_restrictions: ${table}:2: action "FILTER amavis" requires transport:destination`,
    );
    const check = await run(
      Deno.execPath(),
      await smtpdArgs(["config", "--check", "-c", configFile]),
    );
    assert.notEqual(check.code, 0);
    assert.match(check.stderr, want);
    const serve = await run(Deno.execPath(), await smtpdArgs(["serve", "-c", configFile]), {
      timeoutMs: 20000,
    });
    assert.notEqual(serve.code, 0);
    assert.match(serve.stderr, want);
  },
});

Deno.test({
  name: "smtpd explain shows FILTER, REDIRECT and BCC as actions met",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("explain-delegated");
    const table = join(dir, "senders");
    await Deno.writeTextFile(table, DELEGATED_TABLE);
    const { configFile } = await writeConfig(
      dir,
      `smtpd_sender_restrictions = ["check_sender_access", "texthash:${table}"]`,
    );
    for (
      const [from, shown] of [
        [
          "filter@s.example",
          "filter: <filter@s.example>: Sender address triggers FILTER smtp:[127.0.0.1]:10025",
        ],
        [
          "redirect@s.example",
          "redirect: <redirect@s.example>: Sender address triggers REDIRECT other@example.net",
        ],
        ["bcc@s.example", "bcc: <bcc@s.example>: Sender address triggers BCC copy@example.net"],
      ]
    ) {
      const r = await explainFrom(configFile, from as string);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.includes(`action ${shown}`), r.stdout);
    }
  },
});

Deno.test({
  name:
    "stand-alone mode (maildrop/): FILTER or REDIRECT defers the message (Postfix's pickup would drop them and deliver it unfiltered), BCC is kept",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("delegated-stdin");
    const table = join(dir, "senders");
    await Deno.writeTextFile(table, DELEGATED_TABLE);
    const { configFile, queueDir } = await writeConfig(
      dir,
      [
        `smtpd_sender_restrictions = ["check_sender_access", "texthash:${table}"]`,
        `smtpd_recipient_restrictions = ["check_recipient_access", "inline:{ { user@example.com = BCC audit@example.net } }"]`,
      ].join("\n"),
    );
    const session = (from: string) =>
      runStdin(
        configFile,
        `HELO py.example\r\nMAIL FROM:<${from}>\r\nRCPT TO:<user@example.com>\r\n` +
          "DATA\r\nSubject: local\r\n\r\nbody\r\n.\r\nQUIT\r\n",
      );
    for (
      const [from, lost] of [
        ["filter@s.example", "FILTER smtp:\\[127\\.0\\.0\\.1\\]:10025"],
        ["redirect@s.example", "REDIRECT other@example\\.net"],
      ]
    ) {
      const r = await session(from as string);
      assert.match(r.stdout, /\r\n451 4\.3\.5 Server configuration error\r\n221 /, r.stdout);
      assert.match(
        r.stderr,
        new RegExp(
          `warning: \\w+: ${lost} cannot be kept: Postfix's pickup drops such records from maildrop files`,
        ),
      );
    }
    // Nothing of theirs is queued; the postmaster gets each session's
    // transcript (notify_classes "software", as Postfix's 4.3.5).
    const left = await queueFiles(queueDir, "maildrop");
    assert.equal(left.length, 2);
    for (const file of left) {
      assert.match(await postcat(file), /^sender: $\n[^]*^recipient: postmaster@/m);
    }
    const r = await session("bcc@s.example");
    const pc = await postcat(join(queueDir, "maildrop", queuedId(r.stdout)));
    assert.deepEqual(extracted(pc), [
      "named_attribute: notify_flags=1",
      "named_attribute: dsn_orig_rcpt=rfc822;copy@example.net",
      "original_recipient: copy@example.net",
      "recipient: copy@example.net",
      "named_attribute: notify_flags=1",
      "named_attribute: dsn_orig_rcpt=rfc822;audit@example.net",
      "original_recipient: audit@example.net",
      "recipient: audit@example.net",
    ]);
  },
});

Deno.test({
  name:
    "a regexp: result with $n (BCC archive+$1, FILTER $1): the server starts, and the argument is judged once filled in, as Postfix does",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("delegated-template");
    const table = join(dir, "recipients.re");
    // "archive+$1" has no "@" as written; $1 is the recipient, so it has one
    // when used. "FILTER $1" with $1 = "x@example.com" has no colon: skipped.
    await Deno.writeTextFile(
      table,
      "/^f(.*)$/ FILTER $1\n/^(.+)$/ BCC archive+$1\n",
    );
    const d = await startDaemon(
      `smtpd_recipient_restrictions = ["check_recipient_access", "regexp:${table}"]`,
      { dir },
    );
    try {
      const copy = await postcat(
        join(d.queueDir, "incoming", queuedId((await sendFrom(d.port, "a@s.example")).stdout)),
      );
      assert.deepEqual(extracted(copy), [
        "named_attribute: notify_flags=1",
        "named_attribute: dsn_orig_rcpt=rfc822;archive+user@example.com",
        "original_recipient: archive+user@example.com",
        "recipient: archive+user@example.com",
      ]);
      const skipped = await sendFrom(d.port, "a@s.example", ["--to", "fx@example.com"]);
      const pc = await postcat(join(d.queueDir, "incoming", queuedId(skipped.stdout)));
      assert.deepEqual(extracted(pc), []);
      await d.waitForLog(
        `warning: access table check_recipient_access regexp:${table} fx@example.com: entry "FILTER x@example.com" requires transport:destination`,
      );
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "smtpd_delay_reject = false: the actions the sender list meets at MAIL stay with the transaction it opens (FILTER, BCC, HOLD), as in Postfix",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("delegated-at-mail");
    const table = join(dir, "senders");
    await Deno.writeTextFile(table, DELEGATED_TABLE);
    const d = await startDaemon(
      [
        "smtpd_delay_reject = false",
        `smtpd_sender_restrictions = ["check_sender_access", "texthash:${table}"]`,
      ].join("\n"),
      { dir },
    );
    try {
      const file = async (from: string, queue = "incoming") =>
        await postcat(join(d.queueDir, queue, queuedId((await sendFrom(d.port, from)).stdout)));
      assert.deepEqual(extracted(await file("filter@s.example")), [
        "content_filter: smtp:[127.0.0.1]:10025",
      ]);
      assert.deepEqual(extracted(await file("bcc@s.example")), [
        "named_attribute: notify_flags=1",
        "named_attribute: dsn_orig_rcpt=rfc822;copy@example.net",
        "original_recipient: copy@example.net",
        "recipient: copy@example.net",
      ]);
      assert.match(await file("held@s.example", "hold"), /^sender: held@s\.example$/m);
      assert.doesNotMatch(d.log(), /is always skipped/);
    } finally {
      await d.stop();
    }
  },
});
