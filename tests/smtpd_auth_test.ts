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
import { DOVECOT_USERS, hasDovecot, startDovecot } from "./_dovecot.ts";
import {
  freePort,
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
) {
  const dovecot = await startDovecot(freePort());
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
        "--auth",
        "PLAIN",
        "--auth-user",
        "alice",
        "--auth-password",
        DOVECOT_USERS.alice,
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
  name:
    "AUTH plain (the mechanism in lower case): sasl_method=plain in the queue file and the log, as Postfix records the client's spelling",
  ...opts,
  fn: async () => {
    const s = await authDaemon("", false);
    try {
      const c = await RawClient.connect(s.d.port);
      await c.reply();
      const talk = async (line: string) => {
        await c.send(`${line}\r\n`);
        return await c.reply();
      };
      await talk("EHLO client.example");
      const blob = btoa(`\0alice\0${DOVECOT_USERS.alice}`);
      assert.match(await talk(`AUTH plain ${blob}`), /^235 2\.7\.0 /);
      assert.match(await talk("MAIL FROM:<alice@mx.test.example>"), /^250 /);
      assert.match(await talk("RCPT TO:<someone@foreign.example>"), /^250 /);
      assert.match(await talk("DATA"), /^354 /);
      assert.match(await talk("Subject: lower case\r\n\r\nbody\r\n."), /^250 2\.0\.0 Ok: queued/);
      await talk("QUIT");
      c.close();
      const [f] = await queueFiles(s.d.queueDir);
      const pc = await postcat(f as string);
      // Postfix 3.7's smtpd, same session: "named_attribute: sasl_method=plain".
      assert.match(pc, /^named_attribute: sasl_method=plain$/m);
      await s.d.waitForLog(
        /: client=unknown\[127\.0\.0\.1\], sasl_method=plain, sasl_username=alice/,
      );
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
        "--auth",
        "LOGIN",
        "--auth-user",
        "carol",
        "--auth-password",
        "wrong-guess-42",
      ]);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stdout, /535 5\.7\.8 Error: authentication failed: /);
      await s.d.waitForLog(/warning: unknown\[127\.0\.0\.1\]: SASL LOGIN authentication failed/);

      const good = await relayAs(s.d.port, [
        "--auth",
        "LOGIN",
        "--auth-user",
        "carol",
        "--auth-password",
        DOVECOT_USERS.carol,
      ]);
      assert.equal(good.code, 0, good.stdout + good.stderr);
      assert.match(good.stdout, /235 2\.7\.0 Authentication successful/);
      const [f] = await queueFiles(s.d.queueDir);
      const pc = await postcat(f as string);
      assert.match(pc, /named_attribute: sasl_username=carol/);
      assert.match(pc, /with ESMTPA id/);
      // The debug peer's dialog shows the commands, never the responses.
      await s.d.waitForLog(/< unknown\[127\.0\.0\.1\]: AUTH LOGIN/);
      const log = s.d.log();
      for (const secret of ["wrong-guess-42", btoa("wrong-guess-42"), DOVECOT_USERS.carol]) {
        assert.ok(!log.includes(secret), `"${secret}" reached the log`);
      }
      assert.ok(!log.includes(btoa(DOVECOT_USERS.carol)), "the base64 password reached the log");
    } finally {
      await s.stop();
    }
  },
});

Deno.test({
  name: "smtpd_tls_auth_only = yes: no AUTH before STARTTLS (504 5.5.4), offered and working after",
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
        /^504 5\.5\.4 Encryption required for requested authentication mechanism/,
      );
      await c.send("QUIT\r\n");
      await c.reply();
      c.close();
      const r = await relayAs(s.d.port, [
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        "alice",
        "--auth-password",
        DOVECOT_USERS.alice,
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
          "--auth",
          "PLAIN",
          "--auth-user",
          "alice",
          "--auth-password",
          DOVECOT_USERS.alice,
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
