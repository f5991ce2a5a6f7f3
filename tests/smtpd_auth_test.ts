/**
 * SMTP AUTH end to end: the real daemon with a real Dovecot auth server
 * (tests/_dovecot.ts), driven by swaks and Python's smtplib. Relay is
 * allowed only through permit_sasl_authenticated (mynetworks does not hold
 * 127.0.0.1 here). Checks the EHLO keyword, PLAIN and LOGIN, a wrong
 * password (535 5.7.8, and no credential in the log even for a debug peer),
 * smtpd_tls_auth_only, reject_sender_login_mismatch, and the queue file:
 * Postfix's sasl_* attributes, "(Authenticated sender: ...)" and ESMTPSA in
 * Received:. Skipped without a `dovecot` binary.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { DOVECOT_USERS, hasDovecot, startDovecot, swaksAuth } from "./_dovecot.ts";
import { socketmapServer } from "./_socketmap_server.ts";
import { eximSend, prepareExim } from "./_exim.ts";
import {
  freePort,
  greeted,
  makeWorkDir,
  postcat,
  queueFiles,
  RawClient,
  run,
  smtpdArgs,
  startDaemon,
  swaks,
  tlsCertConfig,
  writeConfig,
} from "./_harness.ts";

const ignore = !hasDovecot();
const opts = { ignore, sanitizeOps: false, sanitizeResources: false };

/** A daemon that relays only for AUTH users, with AUTH against a fresh Dovecot. */
async function authDaemon(
  extra = "",
  tls = true,
  prepare: (dir: string) => Promise<string> = () => Promise.resolve(""),
  dovecotOptions: Parameters<typeof startDovecot>[1] = {},
) {
  const dovecot = await startDovecot(freePort(), dovecotOptions);
  const dir = await makeWorkDir("auth");
  extra += `\n${await prepare(dir)}`;
  const config = [
    `smtpd_sasl_auth_enable = true`,
    `smtpd_sasl_path = "${dovecot.socket}"`,
    `smtpd_sasl_authenticated_header = true`,
    `mynetworks = ["192.0.2.0/24"]`,
    `smtpd_recipient_restrictions = ["permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination"]`,
    tls ? await tlsCertConfig(dir, "may") : "",
    extra,
  ].join("\n");
  const d = await startDaemon(config, { dir });
  return {
    d,
    dir,
    stop: async () => {
      await d.stop();
      await dovecot.dispose();
    },
  };
}

function relayAs(port: number, args: string[]) {
  return swaks(port, [
    "--from",
    "alice@mx.test.example",
    "--to",
    "someone@foreign.example",
    ...args,
  ], { timeoutMs: 30_000 });
}

Deno.test({
  name:
    "swaks AUTH PLAIN over STARTTLS against Dovecot: relay accepted via permit_sasl_authenticated",
  ...opts,
  fn: async () => {
    const s = await authDaemon();
    try {
      const r = await relayAs(s.d.port, [
        "--tls",
        ...swaksAuth("PLAIN", "alice"),
        // The transcript below shows "PROVIDED_BUT_REMOVED" where the password goes.
        "--auth-hide-password",
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      // deno-lint-ignore no-console
      console.log(`swaks AUTH PLAIN over STARTTLS, Dovecot behind us:\n${r.stdout}`);
      // AUTH is offered in EHLO, Dovecot's mechanisms less ANONYMOUS (noanonymous).
      assert.match(r.stdout, /250-AUTH PLAIN LOGIN\r?\n/);
      assert.match(r.stdout, /235 2\.7\.0 Authentication successful/);
      assert.match(r.stdout, /250 2\.1\.5 Ok/);
      assert.match(r.stdout, /250 2\.0\.0 Ok: queued as/);
      const [f] = await queueFiles(s.d.queueDir);
      const pc = await postcat(f as string);
      assert.match(pc, /named_attribute: sasl_method=PLAIN/);
      assert.match(pc, /named_attribute: sasl_username=alice/);
      assert.match(pc, /\(Authenticated sender: alice\)/);
      assert.match(pc, /with ESMTPSA id/);
      await s.d.waitForLog(
        /: client=unknown\[127\.0\.0\.1\], sasl_method=PLAIN, sasl_username=alice/,
      );
      const plainBlob = btoa(`\0alice\0${DOVECOT_USERS.alice}`);
      assert.ok(!s.d.log().includes(plainBlob), "the AUTH PLAIN blob reached the log");
      assert.ok(!s.d.log().includes(DOVECOT_USERS.alice), "the password reached the log");
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "the same relay without AUTH is refused: 554 5.7.1 Relay access denied",
  ...opts,
  fn: async () => {
    const s = await authDaemon();
    try {
      const r = await relayAs(s.d.port, ["--tls"]);
      // deno-lint-ignore no-console
      console.log(`swaks, the same relay without AUTH:\n${r.stdout}`);
      assert.notEqual(r.code, 0);
      assert.match(r.stdout, /554 5\.7\.1 <someone@foreign\.example>: Relay access denied/);
      assert.deepEqual(await queueFiles(s.d.queueDir), []);
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "AUTH LOGIN and a wrong password (535 5.7.8), with a debug peer logging the dialog",
  ...opts,
  fn: async () => {
    const s = await authDaemon(`debug_peer_list = ["127.0.0.1"]\ndebug_peer_level = 1`, false);
    try {
      const bad = await relayAs(s.d.port, [
        ...swaksAuth("LOGIN", "carol", "wrong-guess-42"),
      ]);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stdout, /535 5\.7\.8 Error: authentication failed: /);
      await s.d.waitForLog(/warning: unknown\[127\.0\.0\.1\]: SASL LOGIN authentication failed/);

      const good = await relayAs(s.d.port, [
        ...swaksAuth("LOGIN", "carol"),
      ]);
      assert.equal(good.code, 0, good.stdout + good.stderr);
      assert.match(good.stdout, /235 2\.7\.0 Authentication successful/);
      const [f] = await queueFiles(s.d.queueDir);
      const pc = await postcat(f as string);
      assert.match(pc, /named_attribute: sasl_username=carol/);
      assert.match(pc, /with ESMTPA id/);
      // Credentials sent with no mechanism before them: the word is no
      // mechanism name, and neither the debug dialog nor the warning shows it.
      const forgot = btoa(`\0carol\0${DOVECOT_USERS.carol}`);
      // 15 bytes (an authorization identity before them) are 20 base64
      // characters, letters and digits only: no mechanism name all the
      // same, which RFC 4422 writes in upper case.
      const short = btoa(`c\0carol\0${DOVECOT_USERS.carol}`);
      assert.match(short, /^[A-Za-z0-9]{20}$/);
      // Credentials whose base64 happens to be upper-case letters and
      // digits only (15 bytes: a PLAIN blob for b7eMM), as a name is
      // written: hidden all the same, as only a mechanism offered or
      // registered with IANA is shown.
      const upper = btoa("\0b7eMM\0CROtwdCC");
      assert.match(upper, /^[A-Z0-9]{20}$/);
      const c = await RawClient.connect(s.d.port);
      try {
        await c.reply();
        await c.send("EHLO client.example\r\n");
        assert.match(await c.reply(), /250-AUTH /);
        for (const word of [forgot, short, upper]) {
          await c.send(`AUTH ${word}\r\n`);
          assert.match(await c.reply(), /^504 5\.5\.4 Unsupported authentication mechanism/);
        }
        // A registered mechanism Dovecot does not offer here is shown, in
        // any case, for the operator to see what a client asked for.
        await c.send("AUTH cram-md5\r\n");
        assert.match(await c.reply(), /^504 5\.5\.4 Unsupported authentication mechanism/);
        // A mechanism offered, in lower case, is shown as sent.
        await c.send("AUTH login\r\n");
        assert.match(await c.reply(), /^334 /);
        await c.send("*\r\n");
        assert.match(await c.reply(), /^501 5\.7\.0 Authentication aborted/);
        await c.send("QUIT\r\n");
        await c.reply();
      } finally {
        c.close();
      }
      await s.d.waitForLog(
        new RegExp(
          `SASL \\(not a mechanism name, ${forgot.length} characters\\) authentication failed`,
        ),
      );
      // forgot (14 bytes), short and upper: 20 characters each.
      await s.d.waitForLog(
        /(SASL \(not a mechanism name, 20 characters\) authentication failed[^]*){3}/,
      );
      await s.d.waitForLog(
        /SASL cram-md5 authentication failed: Invalid authentication mechanism, sasl_username=\(unavailable\)/,
      );
      await s.d.waitForLog(/< unknown\[127\.0\.0\.1\]: AUTH cram-md5$/m);
      await s.d.waitForLog(/< unknown\[127\.0\.0\.1\]: AUTH login$/m);
      // The debug peer's dialog shows the commands, never the responses.
      await s.d.waitForLog(/< unknown\[127\.0\.0\.1\]: AUTH LOGIN/);
      await s.d.waitForLog(/< unknown\[127\.0\.0\.1\]: AUTH \*\*\*\*$/m);
      const log = s.d.log();
      const secrets = ["wrong-guess-42", btoa("wrong-guess-42"), DOVECOT_USERS.carol];
      for (const secret of [...secrets, forgot.slice(0, 20), short, upper]) {
        assert.ok(!log.includes(secret), `"${secret}" reached the log`);
      }
      assert.ok(!log.includes(btoa(DOVECOT_USERS.carol)), "the base64 password reached the log");
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name:
    "smtpd_tls_auth_only = yes: no AUTH before STARTTLS (503 5.5.1, as Postfix), offered and working after",
  ...opts,
  fn: async () => {
    const s = await authDaemon(`smtpd_tls_auth_only = true`);
    try {
      const c = await RawClient.connect(s.d.port);
      await c.reply();
      await c.send("EHLO client.example\r\n");
      const ehlo = await c.reply();
      assert.doesNotMatch(ehlo, /AUTH/);
      assert.match(ehlo, /STARTTLS/);
      await c.send(`AUTH PLAIN ${btoa(`\0alice\0${DOVECOT_USERS.alice}`)}\r\n`);
      assert.match(
        await c.reply(),
        /^503 5\.5\.1 Error: authentication not enabled/,
      );
      await c.send("QUIT\r\n");
      await c.reply();
      c.close();
      const r = await relayAs(s.d.port, [
        "--tls",
        ...swaksAuth("PLAIN", "alice"),
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /250-AUTH PLAIN LOGIN/);
    } finally {
      await s.stop();
    }
  },
});

const SMTPLIB = `
import smtplib, ssl, sys
port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.starttls(context=ctx)
    s.ehlo("client.example")
    print("features", sorted(s.esmtp_features))
    print("login", s.login(user, password))
    refused = s.sendmail(user + "@mx.test.example", ["x@foreign.example"],
                         "Subject: smtplib\\r\\n\\r\\nhello\\r\\n")
    print("refused", refused)
`;

Deno.test({
  name: "Python smtplib: starttls(), login() and a relayed message; sender login mismatch refused",
  ...opts,
  fn: async () => {
    const s = await authDaemon("", true, async (dir) => {
      const maps = join(dir, "logins");
      await Deno.writeTextFile(maps, "alice@mx.test.example alice\ncarol@mx.test.example carol\n");
      return `smtpd_sender_login_maps = ["texthash:${maps}"]\n` +
        `smtpd_sender_restrictions = ["reject_sender_login_mismatch"]`;
    });
    const d = s.d;
    try {
      {
        const ok = await run("python3", ["-c", SMTPLIB, String(d.port), "alice", "secret"]);
        assert.equal(ok.code, 0, ok.stdout + ok.stderr);
        assert.match(ok.stdout, /login \(235, b'2\.7\.0 Authentication successful'\)/);
        assert.match(ok.stdout, /refused \{\}/);
        // alice may not send as carol: 553 5.7.1 from reject_sender_login_mismatch.
        const r = await relayAs(d.port, [
          "--tls",
          "--from",
          "carol@mx.test.example",
          ...swaksAuth("PLAIN", "alice"),
        ]);
        assert.match(
          r.stdout,
          /553 5\.7\.1 <carol@mx\.test\.example>: Sender address rejected: not owned by user alice/,
        );
        // Without AUTH an owned address is refused too.
        const anon = await relayAs(d.port, ["--tls", "--to", "postmaster@mx.test.example"]);
        assert.match(
          anon.stdout,
          /553 5\.7\.1 <alice@mx\.test\.example>: Sender address rejected: not logged in/,
        );
        assert.equal((await queueFiles(d.queueDir)).length, 1);
      }
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "smtpd_client_auth_rate_limit: the third AUTH within the time unit gets 450 4.7.1",
  ...opts,
  fn: async () => {
    const s = await authDaemon(`smtpd_client_auth_rate_limit = 2`, false);
    try {
      const c = await RawClient.connect(s.d.port);
      await c.reply();
      await c.send("EHLO client.example\r\n");
      assert.match(await c.reply(), /250-AUTH PLAIN LOGIN/);
      const wrong = btoa("\0alice\0nope");
      for (let i = 0; i < 2; i++) {
        await c.send(`AUTH PLAIN ${wrong}\r\n`);
        assert.match(await c.reply(), /^535 5\.7\.8 /);
      }
      await c.send(`AUTH PLAIN ${btoa(`\0alice\0${DOVECOT_USERS.alice}`)}\r\n`);
      assert.match(await c.reply(), /^450 4\.7\.1 Error: too many AUTH commands from 127\.0\.0\.1/);
      c.close();
      await s.d.waitForLog(
        /warning: AUTH command rate limit exceeded: 3 from unknown\[127\.0\.0\.1\] for service smtp/,
      );
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name:
    "AUTH LOGIN with an empty user name: logged as Postfix logs Dovecot's empty user= (sasl_username=)",
  ...opts,
  fn: async () => {
    const s = await authDaemon("", false);
    try {
      const c = await RawClient.connect(s.d.port);
      try {
        await c.reply();
        await c.send("EHLO client.example\r\n");
        assert.match(await c.reply(), /250-AUTH PLAIN LOGIN/);
        await c.send("AUTH LOGIN\r\n");
        assert.match(await c.reply(), /^334 VXNlcm5hbWU6/);
        // The empty response: Dovecot fails it ("Empty username") with an
        // empty user= field, which Postfix 3.7 logs as it is.
        await c.send("\r\n");
        assert.match(await c.reply(), /^535 5\.7\.8 Error: authentication failed: /);
        await c.send("QUIT\r\n");
        await c.reply();
      } finally {
        c.close();
      }
      await s.d.waitForLog(
        /warning: unknown\[127\.0\.0\.1\]: SASL LOGIN authentication failed: \(reason unavailable\), sasl_username=$/m,
      );
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name:
    "smtpd_client_auth_rate_limit counts refused AUTH commands too (before HELO, before STARTTLS), as Postfix",
  ...opts,
  fn: async () => {
    // Postfix's smtpd_sasl_auth_cmd_wrapper asks anvil before any check of
    // the command: a client cannot probe AUTH before TLS without limit.
    const s = await authDaemon(
      [
        "smtpd_client_auth_rate_limit = 2",
        "smtpd_helo_required = true",
        "smtpd_tls_auth_only = true",
      ].join("\n"),
    );
    try {
      const c = await RawClient.connect(s.d.port);
      try {
        await c.reply();
        await c.send("AUTH PLAIN\r\n");
        assert.match(await c.reply(), /^503 5\.5\.1 Error: send HELO\/EHLO first/);
        await c.send("EHLO client.example\r\n");
        const ehlo = await c.reply();
        assert.match(ehlo, /250-STARTTLS/);
        assert.doesNotMatch(ehlo, /AUTH/);
        await c.send("AUTH PLAIN\r\n");
        assert.match(await c.reply(), /^503 5\.5\.1 Error: authentication not enabled/);
        await c.send("AUTH PLAIN\r\n");
        assert.match(
          await c.reply(),
          /^450 4\.7\.1 Error: too many AUTH commands from 127\.0\.0\.1/,
        );
        await c.send("QUIT\r\n");
        await c.reply();
      } finally {
        c.close();
      }
      await s.d.waitForLog(
        /warning: AUTH command rate limit exceeded: 3 from unknown\[127\.0\.0\.1\] for service smtp/,
      );
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name:
    "smtpd explain --sasl-user: permit_sasl_authenticated and reject_sender_login_mismatch steps",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("auth-explain");
    const maps = join(dir, "logins");
    await Deno.writeTextFile(maps, "alice@example.org alice\n");
    const { configFile } = await writeConfig(
      dir,
      [
        `smtpd_sasl_auth_enable = true`,
        `mynetworks = ["192.0.2.0/24"]`,
        `smtpd_sender_login_maps = ["texthash:${maps}"]`,
        `smtpd_sender_restrictions = ["reject_sender_login_mismatch"]`,
        `smtpd_recipient_restrictions = ["permit_sasl_authenticated", "reject_unauth_destination"]`,
      ].join("\n"),
    );
    // deno run <flags of this configuration> mod.ts explain -c FILE ...
    const base = await smtpdArgs(["explain", "-c", configFile]);
    const explainAs = (extra: string[]) =>
      run(Deno.execPath(), [
        ...base,
        "--client",
        "198.51.100.7",
        "--from",
        "alice@example.org",
        "--to",
        "x@foreign.example",
        ...extra,
      ]);
    const alice = await explainAs(["--sasl-user", "alice"]);
    assert.equal(alice.code, 0, alice.stderr);
    assert.match(alice.stdout, /try reject_sender_login_mismatch/);
    assert.match(alice.stdout, /try permit_sasl_authenticated\n\s+=> permit/);
    const carol = await explainAs(["--sasl-user", "carol"]);
    assert.match(
      carol.stdout,
      /553 5\.7\.1 <alice@example\.org>: Sender address rejected: not owned by user carol/,
    );
    const nobody = await explainAs([]);
    assert.match(
      nobody.stdout,
      /553 5\.7\.1 <alice@example\.org>: Sender address rejected: not logged in/,
    );
  },
});

Deno.test({
  name: "a response longer than Dovecot takes (16 KiB) fails alone: the shared connection stays up",
  ...opts,
  fn: async () => {
    // smtpd_sasl_response_limit raised (as for big Kerberos tokens) past
    // what Dovecot reads in one line: Dovecot drops the whole connection,
    // which every session of the process shares.
    const s = await authDaemon(`smtpd_sasl_response_limit = 65536`, false);
    const victim = await RawClient.connect(s.d.port);
    const attacker = await RawClient.connect(s.d.port);
    try {
      for (const c of [victim, attacker]) {
        await c.reply();
        await c.send("EHLO client.example\r\n");
        assert.match(await c.reply(), /^250-/);
        await c.send("AUTH LOGIN\r\n");
        assert.match(await c.reply(), /^334 VXNlcm5hbWU6\r\n/);
      }
      await attacker.send(`${"QUFB".repeat(5000)}\r\n`);
      assert.match(await attacker.reply(), /^535 5\.7\.8 /);
      // The victim's exchange, begun before, still goes through.
      await victim.send(`${btoa("carol")}\r\n`);
      assert.match(await victim.reply(), /^334 UGFzc3dvcmQ6\r\n/);
      await victim.send(`${btoa(DOVECOT_USERS.carol)}\r\n`);
      assert.match(await victim.reply(), /^235 2\.7\.0 /);
      assert.doesNotMatch(s.d.log(), /connection to Dovecot auth socket .* ended/);
    } finally {
      victim.close();
      attacker.close();
      await s.stop();
    }
  },
});

/** EHLO, then each MAIL FROM with one RCPT; returns the RCPT replies (first line). */
async function rcptRepliesFor(c: RawClient, senders: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const from of senders) {
    await c.send(`MAIL FROM:<${from}>\r\n`);
    assert.match(await c.reply(), /^250 /);
    await c.send("RCPT TO:<x@foreign.example>\r\n");
    out.push((await c.reply()).trimEnd());
    await c.send("RSET\r\n");
    await c.reply();
  }
  return out;
}

Deno.test({
  name:
    'sender login maps see the address as Postfix resolves it: <alice>, <"alice"> and a trailing dot are alice@$myorigin',
  ...opts,
  fn: async () => {
    const s = await authDaemon("", false, async (dir) => {
      const maps = join(dir, "logins");
      await Deno.writeTextFile(maps, "alice@mx.test.example alice\n");
      return `myorigin = "mx.test.example"\n` +
        `smtpd_sender_login_maps = ["texthash:${maps}"]\n` +
        `smtpd_sender_restrictions = ["reject_sender_login_mismatch"]`;
    });
    const c = await greeted(s.d.port);
    try {
      // Not logged in: the owned address, however written, is refused (the
      // queue would hold alice@mx.test.example).
      assert.deepEqual(
        await rcptRepliesFor(c, ["alice", '"alice"', "alice@MX.test.example."]),
        [
          "553 5.7.1 <alice>: Sender address rejected: not logged in",
          "553 5.7.1 <alice>: Sender address rejected: not logged in",
          "553 5.7.1 <alice@MX.test.example.>: Sender address rejected: not logged in",
        ],
      );
      // Logged in as alice, the unqualified form is hers.
      await c.send(`AUTH PLAIN ${btoa(`\0alice\0${DOVECOT_USERS.alice}`)}\r\n`);
      assert.match(await c.reply(), /^235 /);
      assert.deepEqual(await rcptRepliesFor(c, ["alice", "alice@mx.test.example."]), [
        "250 2.1.5 Ok",
        "250 2.1.5 Ok",
      ]);
    } finally {
      c.close();
      await s.stop();
    }
  },
});

Deno.test({
  name:
    'a sender login map key with a space in quotes ("john smith"@...) is one key, as in Postfix\'s texthash: the address has its owner',
  ...opts,
  fn: async () => {
    const s = await authDaemon("", false, async (dir) => {
      const maps = join(dir, "logins");
      await Deno.writeTextFile(maps, '"john smith"@mx.test.example alice\n');
      return `smtpd_sender_login_maps = ["texthash:${maps}"]\n` +
        `smtpd_sender_restrictions = ["reject_sender_login_mismatch"]`;
    });
    const c = await greeted(s.d.port);
    try {
      // The map gives the address an owner: without a login it is refused.
      assert.deepEqual(await rcptRepliesFor(c, ['"john smith"@mx.test.example']), [
        "553 5.7.1 <john smith@mx.test.example>: Sender address rejected: not logged in",
      ]);
      await c.send(`AUTH PLAIN ${btoa(`\0alice\0${DOVECOT_USERS.alice}`)}\r\n`);
      assert.match(await c.reply(), /^235 /);
      // Its owner may use it (the key was cut at the space before: "not owned by user alice").
      assert.deepEqual(await rcptRepliesFor(c, ['"John Smith"@mx.test.example']), [
        "250 2.1.5 Ok",
      ]);
    } finally {
      c.close();
      await s.stop();
    }
  },
});

Deno.test({
  name:
    "a UTF-8 login keeps its name: it owns its address (STRASSE for straße), and the log and Received: show it",
  ...opts,
  fn: async () => {
    // Dovecot takes such a name once auth_username_chars allows it; Postfix
    // (smtputf8_enable = yes) keeps it as Dovecot sends it. It came out as
    // "stra?e", which owned nothing: 553 not owned by user stra?e.
    const s = await authDaemon("", false, async (dir) => {
      const maps = join(dir, "logins");
      await Deno.writeTextFile(maps, "alice@mx.test.example STRASSE\n");
      return `smtpd_sender_login_maps = ["texthash:${maps}"]\n` +
        `smtpd_sender_restrictions = ["reject_sender_login_mismatch"]`;
    }, { users: { "straße": "geheim" }, extraConf: "auth_username_chars =\n" });
    try {
      const r = await relayAs(s.d.port, [
        "--auth",
        "PLAIN",
        "--auth-user",
        "straße",
        "--auth-password",
        "geheim",
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /250 2\.0\.0 Ok: queued as/);
      const [f] = await queueFiles(s.d.queueDir);
      const pc = await postcat(f as string);
      assert.match(pc, /named_attribute: sasl_username=straße\n/);
      assert.match(pc, /\(Authenticated sender: straße\)/);
      await s.d.waitForLog(
        /: client=unknown\[127\.0\.0\.1\], sasl_method=PLAIN, sasl_username=straße\n/,
      );
    } finally {
      await s.stop();
    }
  },
});

/** A password database after Dovecot's passwd-file that always fails inside (temporarily). */
const BROKEN_PASSDB =
  "passdb {\n  driver = checkpassword\n  args = /nonexistent/checkpassword\n}\n";

Deno.test({
  name:
    "a password database Dovecot cannot reach is a temporary failure (454 4.7.0), as Dovecot 2.3 says it (code=temp_fail)",
  ...opts,
  fn: async () => {
    // A name passwd-file does not know goes on to the broken passdb: Dovecot
    // answers FAIL with code=temp_fail and no "temp"; that was a 535, which
    // tells the client its password is wrong.
    const s = await authDaemon("", false, undefined, { extraConf: BROKEN_PASSDB });
    try {
      const c = await greeted(s.d.port);
      await c.send(`AUTH PLAIN ${btoa("\0dave\0pw")}\r\n`);
      assert.match(
        await c.reply(15_000),
        /^454 4\.7\.0 Temporary authentication failure: \(reason unavailable\)\r\n/,
      );
      c.close();
      await s.d.waitForLog(
        /warning: unknown\[127\.0\.0\.1\]: SASL PLAIN authentication failed: \(reason unavailable\), sasl_username=dave\n/,
      );
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name:
    "an account Dovecot's passdb disables (nologin) or sends elsewhere (proxy) does not log in: 535, no relay",
  ...opts,
  fn: async () => {
    // Dovecot verifies the password and answers OK with nologin or proxy: it
    // leaves the refusal to its client. That was 235, and the relay below
    // went through for a disabled account.
    const s = await authDaemon("", false, undefined, {
      users: { alice: DOVECOT_USERS.alice, dave: "pw", erin: "pw" },
      extraFields: { dave: "nologin reason=Disabled", erin: "proxy host=192.0.2.1" },
    });
    try {
      for (const [user, reason] of [["dave", "Disabled"], ["erin", "Login disabled"]]) {
        const c = await greeted(s.d.port);
        await c.send(`AUTH PLAIN ${btoa(`\0${user}\0pw`)}\r\n`);
        assert.equal(await c.reply(), `535 5.7.8 Error: authentication failed: ${reason}\r\n`);
        await c.send("MAIL FROM:<dave@mx.test.example>\r\nRCPT TO:<someone@foreign.example>\r\n");
        assert.match(await c.reply(), /^250 /);
        assert.match(
          await c.reply(),
          /^554 5\.7\.1 <someone@foreign\.example>: Relay access denied/,
        );
        c.close();
        await s.d.waitForLog(
          new RegExp(`SASL PLAIN authentication failed: ${reason}, sasl_username=${user}\\n`),
        );
      }
      // A plain OK still logs in.
      const r = await relayAs(s.d.port, swaksAuth("PLAIN", "alice"));
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.deepEqual(await queueFiles(s.d.queueDir).then((f) => f.length), 1);
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "a sender login map that cannot answer defers (451 4.3.0), it never lets the sender pass",
  ...opts,
  fn: async () => {
    const srv = socketmapServer({
      "alice@mx.test.example": "TEMP database down",
      "carol@mx.test.example": "carol",
    });
    const s = await authDaemon(
      `smtpd_sender_login_maps = ["socketmap:inet:127.0.0.1:${srv.port}:logins"]\n` +
        `smtpd_sender_restrictions = ["reject_sender_login_mismatch"]`,
      false,
    );
    const c = await greeted(s.d.port);
    try {
      assert.deepEqual(await rcptRepliesFor(c, ["alice@mx.test.example"]), [
        "451 4.3.0 <alice@mx.test.example>: Temporary lookup failure",
      ]);
      await c.send(`AUTH PLAIN ${btoa(`\0alice\0${DOVECOT_USERS.alice}`)}\r\n`);
      assert.match(await c.reply(), /^235 /);
      assert.deepEqual(
        await rcptRepliesFor(c, ["alice@mx.test.example", "carol@mx.test.example"]),
        [
          "451 4.3.0 <alice@mx.test.example>: Temporary lookup failure",
          "553 5.7.1 <carol@mx.test.example>: Sender address rejected: not owned by user alice",
        ],
      );
    } finally {
      c.close();
      srv.stop();
      await s.stop();
    }
  },
});

Deno.test({
  name:
    "AUTH= from a client that did not log in is kept as Postfix keeps it: sasl_sender in the queue file and the client= line",
  ...opts,
  fn: async () => {
    const s = await authDaemon("", false);
    const c = await greeted(s.d.port);
    try {
      await c.send("MAIL FROM:<bob@client.example> AUTH=<bob+40x@client.example>\r\n");
      assert.match(await c.reply(), /^250 2\.1\.0 /);
      await c.send("RCPT TO:<postmaster@mx.test.example>\r\n");
      assert.match(await c.reply(), /^250 2\.1\.5 /);
      await c.send("DATA\r\n");
      assert.match(await c.reply(), /^354 /);
      await c.send("Subject: relayed\r\n\r\nhello\r\n.\r\n");
      assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as /);
      await c.send("QUIT\r\n");
      await c.reply();
      await s.d.waitForLog(
        /: client=unknown\[127\.0\.0\.1\], sasl_sender=<bob\+40x@client\.example>\n/,
      );
      const [f] = await queueFiles(s.d.queueDir);
      const pc = await postcat(f as string);
      assert.match(pc, /named_attribute: sasl_sender=<bob\+40x@client\.example>/);
      assert.doesNotMatch(pc, /sasl_method|sasl_username|ESMTPA/);
    } finally {
      c.close();
      await s.stop();
    }
  },
});

Deno.test({
  name:
    "sasl_method is the mechanism as the client wrote it (auth plain → plain), as Postfix records it",
  ...opts,
  fn: async () => {
    const s = await authDaemon("", false);
    const c = await greeted(s.d.port);
    try {
      await c.send(`auth plain ${btoa(`\0alice\0${DOVECOT_USERS.alice}`)}\r\n`);
      assert.match(await c.reply(), /^235 /);
      await c.send("MAIL FROM:<alice@mx.test.example>\r\nRCPT TO:<x@foreign.example>\r\n");
      assert.match(await c.reply(), /^250 2\.1\.0 /);
      assert.match(await c.reply(), /^250 2\.1\.5 /);
      await c.send("DATA\r\n");
      assert.match(await c.reply(), /^354 /);
      await c.send("Subject: lower case\r\n\r\nhello\r\n.\r\n");
      assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as /);
      await s.d.waitForLog(
        /: client=unknown\[127\.0\.0\.1\], sasl_method=plain, sasl_username=alice\n/,
      );
      const [f] = await queueFiles(s.d.queueDir);
      assert.match(await postcat(f as string), /named_attribute: sasl_method=plain\n/);
    } finally {
      c.close();
      await s.stop();
    }
  },
});

Deno.test({
  name:
    "a client gone in the middle of AUTH LOGIN is logged as Postfix logs it: lost connection after AUTH, no SASL warning",
  ...opts,
  fn: async () => {
    const s = await authDaemon("", false);
    try {
      const c = await RawClient.connect(s.d.port);
      await c.reply();
      await c.send("EHLO client.example\r\nAUTH LOGIN\r\n");
      await c.reply();
      assert.match(await c.reply(), /^334 VXNlcm5hbWU6/);
      await c.send(`${btoa("alice")}\r\n`);
      assert.match(await c.reply(), /^334 UGFzc3dvcmQ6/);
      c.close();
      await s.d.waitForLog(/lost connection after AUTH from unknown\[127\.0\.0\.1\]/);
      assert.doesNotMatch(s.d.log(), /SASL LOGIN authentication/);
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name:
    "submission with smtpd_tls_auth_only: swaks on the wrapper port, Exim as an AUTH client over STARTTLS and on the wrapper port",
  ...opts,
  fn: async () => {
    const wrapper = freePort();
    const s = await authDaemon(
      `smtpd_tls_auth_only = true\nsmtpd_tls_wrappermode_listen = ["127.0.0.1:${wrapper}"]`,
    );
    try {
      const r = await relayAs(wrapper, [
        "--tlsc",
        ...swaksAuth("LOGIN", "carol"),
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /235 2\.7\.0 Authentication successful/);
      const exim = await prepareExim();
      if (typeof exim === "string") {
        // deno-lint-ignore no-console
        console.log(`Exim part skipped: ${exim}`);
      } else {
        const auth = `plain:\n  driver = plaintext\n  public_name = PLAIN\n` +
          `  client_send = ^alice^${DOVECOT_USERS.alice}\n`;
        const noVerify = "  tls_verify_certificates =\n  tls_verify_hosts =\n";
        for (
          const [port, transport] of [
            [s.d.port, `  hosts_require_tls = *\n  hosts_require_auth = *\n${noVerify}`],
            [wrapper, `  protocol = smtps\n  hosts_require_auth = *\n${noVerify}`],
          ] as const
        ) {
          const e = await eximSend(exim, port, "r@foreign.example", "Subject: exim\n\nhi\n", {
            transport,
            authenticators: auth,
            sender: "alice@mx.test.example",
          });
          assert.equal(e.code, 0, e.transcript);
          assert.match(e.transcript, /SMTP<< 235 2\.7\.0 Authentication successful/);
          assert.match(e.transcript, / A=plain .*C="250 2\.0\.0 Ok: .*queued as /);
        }
      }
      const users = [];
      for (const f of await queueFiles(s.d.queueDir)) {
        const pc = await postcat(f);
        assert.match(pc, /with ESMTPSA id/);
        users.push(/named_attribute: sasl_username=(\w+)/.exec(pc)?.[1]);
      }
      assert.deepEqual(
        users.sort(),
        typeof exim === "string" ? ["carol"] : ["alice", "alice", "carol"],
      );
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name:
    "EXTERNAL, which Dovecot offers for client certificates, is not announced (Postfix's smtpd_sasl_mechanism_filter default)",
  ...opts,
  fn: async () => {
    const dovecot = await startDovecot(freePort(), { mechanisms: "plain login external" });
    const d = await startDaemon(
      `smtpd_sasl_auth_enable = true\nsmtpd_sasl_path = "${dovecot.socket}"\nbroken_sasl_auth_clients = true`,
    );
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("EHLO client.example\r\n");
      const ehlo = await c.reply();
      assert.match(ehlo, /250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n/);
      // As in Postfix, only the announcement leaves it out.
      await c.send("AUTH EXTERNAL =\r\n");
      assert.match(await c.reply(), /^535 5\.7\.8 /);
    } finally {
      c.close();
      await d.stop();
      await dovecot.dispose();
    }
  },
});

Deno.test({
  name:
    "Dovecot down after EHLO, or already at EHLO: AUTH gets 454 4.7.0 (temporary), never 504; back up → 235",
  ...opts,
  fn: async () => {
    const dovecot = await startDovecot(freePort());
    const d = await startDaemon(
      `smtpd_sasl_auth_enable = true\nsmtpd_sasl_path = "${dovecot.socket}"`,
    );
    const plain = `AUTH PLAIN ${btoa(`\0alice\0${DOVECOT_USERS.alice}`)}\r\n`;
    const down =
      "454 4.7.0 Temporary authentication failure: Can't connect to authentication server\r\n";
    const session = async (stopFirst: boolean) => {
      const c = await RawClient.connect(d.port);
      try {
        await c.reply();
        await c.send("EHLO client.example\r\n");
        const ehlo = await c.reply();
        if (stopFirst) {
          await dovecot.stop();
          // Dovecot's auth process is killed, not waited for: until our end
          // of the shared connection has seen it close, a request written
          // there is lost in flight ("Connection lost ...", also 454). Wait
          // for that, so that AUTH meets a server that is down.
          await d.waitForLog(/connection to Dovecot auth socket '[^']*' ended/);
        }
        await c.send(plain);
        return { ehlo, auth: await c.reply() };
      } finally {
        c.close();
      }
    };
    try {
      // Offered at EHLO, gone at AUTH.
      const first = await session(true);
      assert.match(first.ehlo, /250-AUTH PLAIN LOGIN\r\n/);
      assert.equal(first.auth, down);
      // Down at EHLO: AUTH is not offered, and a client that sends it anyway
      // is told to try later too.
      const second = await session(false);
      assert.doesNotMatch(second.ehlo, /AUTH/);
      assert.equal(second.auth, down);
      await d.waitForLog(
        /SASL PLAIN authentication failed: Can't connect to authentication server, sasl_username=\(unavailable\)/,
      );
      await dovecot.start();
      // After a failed connect the client waits 1 s before it tries again.
      await new Promise((r) => setTimeout(r, 1_200));
      const third = await session(false);
      assert.equal(third.auth, "235 2.7.0 Authentication successful\r\n");
    } finally {
      await d.stop();
      await dovecot.dispose();
    }
  },
});

Deno.test({
  name:
    "responses a client pipelined behind an AUTH that did not read them are read as commands, but never logged: non-SMTP warning and debug peer show ****",
  ...opts,
  fn: async () => {
    const s = await authDaemon(`debug_peer_list = ["127.0.0.1"]\ndebug_peer_level = 1`, false);
    // A password in Cyrillic: its base64 starts with a digit, so the line
    // it arrives on, read as a command, is caught by the default
    // smtpd_forbidden_commands regexp (/^[^A-Z]/) and logged as non-SMTP.
    const user = btoa("john doe"); // Dovecot refuses the name at once (a space)
    const password = btoa(String.fromCharCode(...new TextEncoder().encode("пароль")));
    const other = btoa("carol-guess"); // begins with a letter: an unknown command
    try {
      const c = await greeted(s.d.port);
      await c.send(`AUTH LOGIN\r\n${user}\r\n${password}\r\n`);
      assert.match(await c.reply(), /^334 /);
      assert.match(await c.reply(), /^535 5\.7\.8 /);
      // As Postfix 3.7: the pipelined password is a non-SMTP command.
      assert.match(await c.reply(), /^221 2\.7\.0 Error: I can break rules, too/);
      c.close();
      await s.d.waitForLog(/warning: non-SMTP command from unknown\[127\.0\.0\.1\]: /);

      // Refused before any response is read (unsupported mechanism): the
      // pipelined lines become unknown commands; QUIT still works.
      const c2 = await greeted(s.d.port);
      await c2.send(`AUTH CRAM-MD5\r\n${other}\r\nQUIT\r\n`);
      assert.match(await c2.reply(), /^504 5\.5\.4 /);
      assert.match(await c2.reply(), /^500 5\.5\.2 Error: command not recognized/);
      assert.match(await c2.reply(), /^221 /);
      c2.close();
      await s.d.waitForLog(/< unknown\[127\.0\.0\.1\]: QUIT/);

      // A client that sends its PLAIN blob again after the initial response:
      // the exchange is over (235) and the blob is read as a command.
      const blob = btoa(`\0alice\0${DOVECOT_USERS.alice}`);
      const c3 = await greeted(s.d.port);
      await c3.send(`AUTH PLAIN ${blob}\r\n${blob}\r\nNOOP\r\n`);
      assert.match(await c3.reply(), /^235 /);
      assert.match(await c3.reply(), /^500 5\.5\.2 Error: command not recognized/);
      assert.match(await c3.reply(), /^250 /);
      c3.close();
      await s.d.waitForLog(/< unknown\[127\.0\.0\.1\]: NOOP/);

      const log = s.d.log();
      for (const secret of [password, other, blob]) {
        assert.ok(!log.includes(secret), `"${secret}" reached the log:\n${log}`);
      }
      assert.match(log, /warning: non-SMTP command from unknown\[127\.0\.0\.1\]: \*\*\*\*\n/);
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name:
    "a password a client pipelined behind a refused AUTH in clear text (no base64, spaces, a digit first) never reaches the log (deno task hostile's auth-flood)",
  ...opts,
  fn: async () => {
    const s = await authDaemon(
      `smtpd_client_auth_rate_limit = 1\nsmtpd_client_event_limit_exceptions = []\n` +
        `debug_peer_list = ["127.0.0.1"]\ndebug_peer_level = 1`,
      false,
    );
    // Read as a command once AUTH is refused: the default
    // smtpd_forbidden_commands regexp (/^[^A-Z]/) catches the digit, a
    // header label the colon; both were logged in full as non-SMTP commands.
    const passwords = ["1wrong pass-phrase", "pass:word9"];
    try {
      const c = await greeted(s.d.port);
      await c.send("EHLO client.example\r\n");
      assert.match(await c.reply(), /^250[ -]/);
      // The first AUTH is within the limit; it fails on a name Dovecot refuses at once.
      await c.send(`AUTH LOGIN ${btoa("john doe")}\r\n`);
      assert.match(await c.reply(), /^535 /);
      for (const password of passwords) {
        // Over smtpd_client_auth_rate_limit: refused before any response is read.
        const c2 = await greeted(s.d.port);
        await c2.send(`AUTH LOGIN ${btoa("alice")}\r\n${password}\r\n`);
        assert.match(await c2.reply(), /^450 4\.7\.1 /);
        assert.match(await c2.reply(), /^221 2\.7\.0 Error: I can break rules, too/);
        c2.close();
      }
      c.close();
      await s.d.waitForLog(
        /non-SMTP command from unknown\[127\.0\.0\.1\]: [^\n]*\n(?:.*\n)*.*non-SMTP command from/,
      );
      const log = s.d.log();
      for (const password of passwords) {
        assert.ok(!log.includes(password), `"${password}" reached the log:\n${log}`);
      }
      assert.match(log, /warning: non-SMTP command from unknown\[127\.0\.0\.1\]: \*\*\*\*\n/);
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name:
    "a password pipelined behind a refused AUTH after a line that cannot be parsed (a Latin-1 name, a blank line) never reaches the log",
  ...opts,
  fn: async () => {
    const s = await authDaemon(`debug_peer_list = ["127.0.0.1"]\ndebug_peer_level = 1`, false);
    const enc = new TextEncoder();
    try {
      // Refused at once (unsupported mechanism): the pipelined lines are read
      // as commands. The name in Latin-1 is no UTF-8 ("(unparsable
      // command)"), and the password after it was logged as a non-SMTP command.
      const c = await greeted(s.d.port);
      await c.send(
        new Uint8Array([
          ...enc.encode("AUTH CRAM-MD5\r\nj"),
          0xf6,
          ...enc.encode("rg\r\n1secret pass\r\n"),
        ]),
      );
      assert.match(await c.reply(), /^504 5\.5\.4 /);
      assert.match(await c.reply(), /^500 5\.5\.2 Error: bad UTF-8 syntax/);
      assert.match(await c.reply(), /^221 2\.7\.0 Error: I can break rules, too/);
      c.close();
      await s.d.waitForLog(/warning: non-SMTP command from unknown\[127\.0\.0\.1\]: /);
      // A blank line first: the password was in the debug peer's log.
      const c2 = await greeted(s.d.port);
      await c2.send("AUTH CRAM-MD5\r\n\r\nSecretPassword\r\nQUIT\r\n");
      assert.match(await c2.reply(), /^504 5\.5\.4 /);
      assert.match(await c2.reply(), /^500 5\.5\.2 Error: bad syntax/);
      assert.match(await c2.reply(), /^500 5\.5\.2 Error: command not recognized/);
      assert.match(await c2.reply(), /^221 /);
      c2.close();
      await s.d.waitForLog(/< unknown\[127\.0\.0\.1\]: QUIT/);
      const log = s.d.log();
      for (const secret of ["1secret pass", "SecretPassword"]) {
        assert.ok(!log.includes(secret), `"${secret}" reached the log:\n${log}`);
      }
      assert.match(log, /warning: non-SMTP command from unknown\[127\.0\.0\.1\]: \*\*\*\*\n/);
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name:
    "smtpd_sasl_response_limit: a response must be shorter than the limit, as Postfix 3.7 counts it (12288 bytes get 500 5.5.6, 12284 reach Dovecot)",
  ...opts,
  fn: async () => {
    const s = await authDaemon("", false);
    try {
      const c = await greeted(s.d.port);
      // Checked side by side with Debian's Postfix 3.7 and the same Dovecot.
      await c.send("AUTH LOGIN\r\n");
      assert.match(await c.reply(), /^334 /);
      await c.send(`${"A".repeat(12288)}\r\n`);
      assert.equal(await c.reply(), "500 5.5.6 SASL response limit exceeded\r\n");
      await c.send("AUTH LOGIN\r\n");
      assert.match(await c.reply(), /^334 /);
      const name = btoa("a".repeat(9213)); // the longest valid base64 under the limit
      assert.equal(name.length, 12284);
      await c.send(`${name}\r\n`);
      assert.match(await c.reply(), /^334 /); // Dovecot has it: it asks for the password
      await c.send("*\r\n");
      assert.match(await c.reply(), /^501 5\.7\.0 Authentication aborted/);
      c.close();
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name:
    "config --check and the start say whether the Dovecot auth server answers, and what EHLO will offer",
  ...opts,
  fn: async () => {
    const dovecot = await startDovecot(freePort());
    const dir = await makeWorkDir("auth-check");
    const { configFile } = await writeConfig(
      dir,
      `smtpd_sasl_auth_enable = true\nsmtpd_sasl_path = "${dovecot.socket}"\n` +
        `smtpd_sasl_security_options = ["noanonymous", "noplaintext"]\n` +
        `smtpd_sasl_tls_security_options = ["noanonymous"]`,
    );
    const check = async () =>
      await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", configFile]));
    try {
      const up = await check();
      assert.equal(up.code, 0, up.stderr);
      assert.match(
        `${up.stdout}${up.stderr}`,
        /AUTH: the Dovecot auth server \(smtpd_sasl_path .*auth-client\) answers; EHLO offers no AUTH; after STARTTLS: AUTH PLAIN LOGIN\n/,
      );
      assert.doesNotMatch(up.stderr, /warning/);
      // AUTH among smtpd_discard_ehlo_keywords: EHLO never offers it (the
      // check said it did).
      const { configFile: discarding } = await writeConfig(
        await makeWorkDir("auth-check"),
        `smtpd_sasl_auth_enable = true\nsmtpd_sasl_path = "${dovecot.socket}"\n` +
          `smtpd_discard_ehlo_keywords = ["auth"]`,
      );
      const discarded = await run(
        Deno.execPath(),
        await smtpdArgs(["config", "--check", "-c", discarding]),
      );
      assert.equal(discarded.code, 0, discarded.stderr);
      assert.match(
        discarded.stderr,
        /smtpd: warning: AUTH: the Dovecot auth server .* answers, but smtpd_discard_ehlo_keywords discards AUTH: EHLO does not offer it and AUTH gets 503 5\.5\.1\n/,
      );
      assert.doesNotMatch(discarded.stdout, /EHLO offers AUTH/);
      await dovecot.stop();
      const down = await check();
      assert.equal(down.code, 0, down.stderr);
      assert.match(
        down.stderr,
        /smtpd: warning: AUTH: the Dovecot auth server \(smtpd_sasl_path .*auth-client, set at .*smtpd\.toml:\d+\) cannot be reached \(.+\); until it can, EHLO does not offer AUTH and AUTH gets 454 4\.7\.0\n/,
      );
      assert.match(down.stdout, /configuration OK \(1 warnings\)/);
      // The daemon says it at start, before any client.
      const d = await startDaemon(
        `smtpd_sasl_auth_enable = true\nsmtpd_sasl_path = "${dovecot.socket}"`,
      );
      try {
        await d.waitForLog(/warning: AUTH: the Dovecot auth server .* cannot be reached/);
      } finally {
        await d.stop();
      }
    } finally {
      await dovecot.dispose();
    }
  },
});

Deno.test({
  name:
    "SIGHUP: smtpd_sasl_auth_enable is restart-only and named in the log (reject_sender_login_mismatch stays), the new security options are taken",
  ...opts,
  fn: async () => {
    const dovecot = await startDovecot(freePort());
    const dir = await makeWorkDir("authreload");
    const maps = join(dir, "login_maps");
    await Deno.writeTextFile(maps, "alice@mx.test.example alice\ncarol@mx.test.example carol\n");
    const config = (extra: string, path = dovecot.socket) =>
      [
        `smtpd_sasl_path = "${path}"`,
        `mynetworks = ["192.0.2.0/24"]`,
        `smtpd_recipient_restrictions = ["permit_sasl_authenticated", "reject_unauth_destination"]`,
        `smtpd_sender_login_maps = ["texthash:${maps}"]`,
        `smtpd_sender_restrictions = ["reject_sender_login_mismatch"]`,
        extra,
      ].join("\n");
    const d = await startDaemon(config("smtpd_sasl_auth_enable = true"), { dir });
    let reloads = 0;
    const reload = async (extra: string) => {
      await writeConfig(dir, config(extra));
      Deno.kill(d.pid, "SIGHUP");
      reloads++;
      const line = "reload: configuration and tables re-read from";
      // Room for a loaded host: the main thread itself waits up to 10 s for
      // the listener threads before it logs the reload.
      const end = Date.now() + 60_000;
      while (d.log().split(line).length - 1 < reloads) {
        if (Date.now() > end) throw new Error(`no reload in the log:\n${d.log()}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const ehlo = async () => {
      const c = await RawClient.connect(d.port);
      try {
        await c.reply();
        await c.send("EHLO client.example\r\n");
        return await c.reply();
      } finally {
        c.close();
      }
    };
    try {
      assert.match(await ehlo(), /250-AUTH PLAIN LOGIN\r?\n/);
      // Turning AUTH off takes a restart (the connection to Dovecot is
      // opened at start): the log says so; noplaintext is taken at once.
      await reload(
        'smtpd_sasl_auth_enable = false\nsmtpd_sasl_security_options = ["noanonymous", "noplaintext"]',
      );
      assert.match(
        d.log(),
        /warning: reload: smtpd_sasl_auth_enable changed \(.*smtpd\.toml:\d+\) but takes effect only after a restart; still true/,
      );
      assert.doesNotMatch(await ehlo(), /AUTH/);
      // AUTH is still served, so its sender check must still run: alice may not send as carol.
      await reload("smtpd_sasl_auth_enable = false");
      assert.match(await ehlo(), /250-AUTH PLAIN LOGIN\r?\n/);
      const r = await swaks(d.port, [
        "--from",
        "carol@mx.test.example",
        "--to",
        "someone@foreign.example",
        ...swaksAuth("PLAIN", "alice"),
      ], { timeoutMs: 30_000 });
      assert.match(
        r.stdout,
        /553 5\.7\.1 <carol@mx\.test\.example>: Sender address rejected: not owned by user alice/,
      );
      assert.doesNotMatch(d.log(), /reject_sender_login_mismatch' ignored/);
      // Its new value is checked as the next start would check it.
      await writeConfig(
        dir,
        config("smtpd_sasl_auth_enable = true", "inet:nowhere"),
      );
      Deno.kill(d.pid, "SIGHUP");
      await d.waitForLog(
        /warning: reload failed: .*smtpd\.toml:\d+: smtpd_sasl_path: expected inet:host:port, got "inet:nowhere"; keeping the running configuration/,
        60_000,
      );
    } finally {
      await d.stop();
      await dovecot.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
