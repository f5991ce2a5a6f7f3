/**
 * The SASL building blocks against a real Dovecot (Debian's dovecot-core,
 * started privately by tests/_dovecot.ts): the Dovecot client's handshake
 * and requests, and the SMTP side of AUTH on top of it, with a fake SMTP
 * client (the daemon with real clients is tests/smtpd_auth_test.ts). Skipped without a
 * `dovecot` binary. Hostile and broken auth servers are in
 * dovecot_hostile_test.ts.
 */

import assert from "node:assert/strict";
import { freePort } from "./_harness.ts";
import { DOVECOT_USERS, hasDovecot, startDovecot } from "./_dovecot.ts";
import { formatReply, type Reply } from "../src/protocol/reply.ts";
import {
  type AuthOutcome,
  DovecotAuthClient,
  filterMechanisms,
  parseSecurityOptions,
  runAuthCommand,
  type SaslEndpoint,
  type SaslMechanism,
  type SaslServer,
  type SecretLine,
} from "../src/sasl/mod.ts";

const ignore = !hasDovecot();
const b64 = (s: string) => btoa(s);
const INFO = {
  clientAddress: "192.0.2.7",
  clientPort: 40000,
  serverAddress: "127.0.0.1",
  serverPort: 25,
  tls: false,
};

function client(endpoint: SaslEndpoint, warnings: string[] = [], timeoutMs = 10_000) {
  return new DovecotAuthClient({ endpoint, timeoutMs, onWarning: (t) => warnings.push(t) });
}

/** One AUTH command with a fake SMTP client that sends `lines`. */
async function smtpAuth(
  server: SaslServer,
  args: string,
  lines: string[] = [],
  atEhlo?: readonly SaslMechanism[],
  client = INFO,
) {
  const sent: string[] = [];
  const offered = atEhlo ?? await server.mechanisms();
  const security = parseSecurityOptions(["noanonymous"]);
  assert.ok(security.ok);
  const outcome = await runAuthCommand(
    args,
    { enabled: true, tls: false, inTransaction: false, username: undefined },
    {
      io: {
        readSecretLine: (): Promise<SecretLine> => {
          const text = lines.shift();
          return Promise.resolve(text === undefined ? { kind: "closed" } : { kind: "line", text });
        },
        sendReply: (r: Reply) => {
          sent.push(formatReply(r));
          return Promise.resolve();
        },
      },
      options: {
        server,
        mechanisms: filterMechanisms(offered ?? [], security.options),
        tlsAuthOnly: false,
        responseLimit: 12288,
        client,
      },
    },
  );
  return { outcome, sent, wire: "reply" in outcome ? formatReply(outcome.reply) : "" };
}

function warningOf(outcome: AuthOutcome): string {
  return "warning" in outcome ? outcome.warning ?? "" : "";
}

Deno.test({
  name: "Dovecot: handshake, mechanisms and flags; noanonymous filters ANONYMOUS",
  ignore,
  async fn() {
    const dovecot = await startDovecot(freePort());
    const c = client({ transport: "unix", path: dovecot.socket });
    try {
      const mechs = await c.mechanisms();
      assert.deepEqual(mechs?.map((m) => [m.name, [...m.flags]]), [
        ["PLAIN", ["plaintext"]],
        ["LOGIN", ["plaintext"]],
        ["ANONYMOUS", ["anonymous"]],
      ]);
      const noanon = parseSecurityOptions(["noanonymous"]);
      const noplain = parseSecurityOptions(["noanonymous", "noplaintext"]);
      assert.ok(noanon.ok && noplain.ok);
      assert.deepEqual(filterMechanisms(mechs ?? [], noanon.options), ["PLAIN", "LOGIN"]);
      assert.deepEqual(filterMechanisms(mechs ?? [], noplain.options), []);
    } finally {
      c.close();
      await dovecot.dispose();
    }
  },
});

Deno.test({
  name: "Dovecot: PLAIN, wrong password, LOGIN in two steps, unknown user, ANONYMOUS refused",
  ignore,
  async fn() {
    const dovecot = await startDovecot(freePort());
    const warnings: string[] = [];
    const c = client({ transport: "unix", path: dovecot.socket }, warnings);
    try {
      const ok = await smtpAuth(c, `PLAIN ${b64(`\0alice\0${DOVECOT_USERS.alice}`)}`);
      assert.equal(ok.wire, "235 2.7.0 Authentication successful\r\n");
      assert.equal(
        ok.outcome.kind === "authenticated" && ok.outcome.logFields,
        "sasl_method=PLAIN, sasl_username=alice",
      );

      const bad = await smtpAuth(c, `PLAIN ${b64("\0alice\0nope")}`);
      assert.equal(bad.wire, "535 5.7.8 Error: authentication failed: (reason unavailable)\r\n");
      assert.equal(
        warningOf(bad.outcome),
        "SASL PLAIN authentication failed: (reason unavailable), sasl_username=alice",
      );

      const login = await smtpAuth(c, "login", [b64("carol"), b64(DOVECOT_USERS.carol)]);
      assert.deepEqual(login.sent, ["334 VXNlcm5hbWU6\r\n", "334 UGFzc3dvcmQ6\r\n"]);
      assert.equal(login.wire, "235 2.7.0 Authentication successful\r\n");
      assert.equal(login.outcome.kind === "authenticated" && login.outcome.username, "carol");

      const unknown = await smtpAuth(c, "LOGIN", [b64("bob"), b64("secret")]);
      assert.match(unknown.wire, /^535 5\.7\.8 Error: authentication failed: /);
      assert.match(warningOf(unknown.outcome), /sasl_username=bob$/);

      const anon = await smtpAuth(c, "ANONYMOUS =");
      assert.equal(anon.wire, "504 5.5.4 Unsupported authentication mechanism\r\n");

      // The connection facts reached Dovecot (its verbose log names rip).
      const log = await Deno.readTextFile(dovecot.logFile);
      assert.match(log, /passwd-file\(bob,192\.0\.2\.7\).*unknown user/);
      assert.ok(!log.includes(DOVECOT_USERS.alice), "the password is not in Dovecot's log");
      assert.deepEqual(warnings, [], "one connection served every request");
    } finally {
      c.close();
      await dovecot.dispose();
    }
  },
});

Deno.test({
  name: "Dovecot: over TCP (inet:127.0.0.1:port) and concurrent sessions on one connection",
  ignore,
  async fn() {
    const dovecot = await startDovecot(freePort());
    const c = client({ transport: "tcp", hostname: "127.0.0.1", port: dovecot.port });
    try {
      const tries = [
        ["alice", DOVECOT_USERS.alice, true],
        ["carol", "bad", false],
        ["carol", DOVECOT_USERS.carol, true],
        ["alice", "bad", false],
        ["dave", "x", false],
        ["alice", DOVECOT_USERS.alice, true],
      ] as const;
      // Each from an address of its own: Dovecot delays every request from an
      // address that has failed (its auth penalty: 2, 4, 8 s...), and on a
      // busy host the good requests could then pass the 10 s timeout.
      const results = await Promise.all(
        tries.map(([u, p], i) =>
          smtpAuth(c, "LOGIN", [b64(u), b64(p)], undefined, {
            ...INFO,
            clientAddress: `192.0.2.${10 + i}`,
          })
        ),
      );
      results.forEach((r, i) => {
        const [user, , good] = tries[i]!;
        if (good) {
          assert.equal(
            r.outcome.kind === "authenticated" && r.outcome.username,
            user,
            JSON.stringify(r.outcome),
          );
        } else {
          assert.match(r.wire, /^535 5\.7\.8 /, `${user}: ${r.wire}`);
        }
      });
    } finally {
      c.close();
      await dovecot.dispose();
    }
  },
});

Deno.test({
  name: 'Dovecot: "*" cancels the request and the connection serves the next one',
  ignore,
  async fn() {
    const dovecot = await startDovecot(freePort());
    const warnings: string[] = [];
    const c = client({ transport: "unix", path: dovecot.socket }, warnings);
    try {
      const aborted = await smtpAuth(c, "LOGIN", [b64("alice"), "*"]);
      assert.equal(aborted.wire, "501 5.7.0 Authentication aborted\r\n");
      const next = await smtpAuth(c, `PLAIN ${b64(`\0alice\0${DOVECOT_USERS.alice}`)}`);
      assert.equal(next.outcome.kind, "authenticated");
      assert.deepEqual(warnings, []);
    } finally {
      c.close();
      await dovecot.dispose();
    }
  },
});

Deno.test({
  name: "Dovecot: restarted between sessions → reconnect; stopped mid-exchange → 454 at once",
  ignore,
  async fn() {
    const dovecot = await startDovecot(freePort());
    const warnings: string[] = [];
    const c = client({ transport: "unix", path: dovecot.socket }, warnings);
    const plainOk = `PLAIN ${b64(`\0alice\0${DOVECOT_USERS.alice}`)}`;
    try {
      assert.equal((await smtpAuth(c, plainOk)).outcome.kind, "authenticated");
      await dovecot.stop();
      await dovecot.start();
      assert.equal((await smtpAuth(c, plainOk)).outcome.kind, "authenticated");

      // Stop Dovecot after the first challenge of LOGIN.
      const atEhlo = await c.mechanisms();
      const ex = c.start("LOGIN", INFO);
      assert.equal((await ex.begin(undefined)).kind, "challenge");
      await dovecot.stop();
      const t0 = Date.now();
      const step = await ex.respond(b64("alice"));
      assert.deepEqual(step, {
        kind: "failure",
        reason: "Connection lost to authentication server",
        temporary: true,
      });
      assert.ok(Date.now() - t0 < 2_000, "no wait for the timeout");

      // While it is down: 454 at once for a session that saw AUTH in EHLO,
      // and nothing to offer to new ones.
      const t1 = Date.now();
      const down = await smtpAuth(c, plainOk, [], atEhlo);
      assert.equal(
        down.wire,
        "454 4.7.0 Temporary authentication failure: Can't connect to authentication server\r\n",
      );
      assert.equal(await c.mechanisms(), undefined);
      assert.ok(Date.now() - t1 < 2_000);
      assert.ok(
        warnings.some((w) => w.includes("Connect to Dovecot auth socket")),
        warnings.join(),
      );
      assert.ok(!warnings.join().includes(DOVECOT_USERS.alice));
    } finally {
      c.close();
      await dovecot.dispose();
    }
  },
});
