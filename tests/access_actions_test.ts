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
  makeWorkDir,
  postcat,
  queueFiles,
  run,
  smtpdArgs,
  startDaemon,
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

function swaks(port: number, from: string, extra: string[] = []): Promise<{ stdout: string }> {
  return run("swaks", [
    "--server",
    `127.0.0.1:${port}`,
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
      const r = await swaks(d.port, "hold@s.example");
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
      const r = await swaks(d.port, "discard@s.example");
      assert.match(r.stdout, /250 2\.0\.0 Ok: queued as \w+/);
      assert.deepEqual(await allEntries(d.queueDir, "incoming"), []);
      assert.deepEqual(await queueFiles(d.queueDir, "hold"), []);
      await d.waitForLog(
        "NOQUEUE: discard: RCPT from unknown[127.0.0.1]: <discard@s.example>: Sender address spam; from=<discard@s.example>",
      );
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
      const r = await swaks(d.port, "prepend@s.example");
      const m = /250 2\.0\.0 Ok: queued as (\w+)/.exec(r.stdout);
      assert.ok(m, r.stdout);
      const pc = await postcat(join(d.queueDir, "incoming", m[1] as string));
      const at = pc.indexOf("X-Checked: by the access table");
      assert.ok(at > 0, pc);
      assert.ok(at < pc.indexOf("Received: from"), pc);
      const i = await swaks(d.port, "info@s.example");
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
      const r = await swaks(d.port, "nodata@s.example");
      // check_sender_access names the sender, as in Postfix, in any list.
      assert.match(
        r.stdout,
        /\*\* 554 5\.7\.1 <nodata@s\.example>: Sender address rejected: no data from you/,
      );
      assert.doesNotMatch(r.stdout, /354/);
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

Deno.test({
  name: "smtpd explain shows the relay, DATA and end-of-data lists and the actions met",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("explain-actions");
    const { configFile } = await writeConfig(dir, CONFIG);
    const r = await run(
      Deno.execPath(),
      await smtpdArgs([
        "explain",
        "-c",
        configFile,
        "--client",
        "127.0.0.1",
        "--from",
        "eodhold@s.example",
        "--to",
        "user@example.com",
      ]),
    );
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
