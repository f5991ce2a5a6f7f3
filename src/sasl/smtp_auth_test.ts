import assert from "node:assert/strict";
import { formatReply, type Reply } from "../protocol/reply.ts";
import type { SaslExchange, SaslServer, SaslStep } from "./sasl_server.ts";
import {
  authCommandForLog,
  type AuthOptions,
  type AuthOutcome,
  type AuthSessionState,
  runAuthCommand,
  type SecretLine,
} from "./smtp_auth.ts";

const b64 = (s: string) => btoa(s);
const PLAIN_OK = b64("\0alice\0secret");
const PLAIN_BAD = b64("\0alice\0wrong");

/** A scripted server: PLAIN and LOGIN against alice/secret; TEMP fails temporarily; LOOP never decides. */
class FakeServer implements SaslServer {
  started: string[] = [];
  initial: (string | undefined)[] = [];
  responses: string[] = [];
  abandoned = 0;
  mechanisms() {
    return Promise.resolve([]);
  }
  start(mechanism: string): SaslExchange {
    this.started.push(mechanism);
    let stage = 0;
    let user = "";
    const decide = (u: string, p: string): SaslStep =>
      p === "secret" && u === "alice"
        ? { kind: "success", username: u }
        : { kind: "failure", reason: "", temporary: false, username: u };
    const plain = (resp: string): SaslStep => {
      const [, u = "", p = ""] = atob(resp).split("\0");
      return decide(u, p);
    };
    return {
      begin: (initial) => {
        this.initial.push(initial);
        if (mechanism === "TEMP") {
          return Promise.resolve({ kind: "failure", reason: "backend down", temporary: true });
        }
        if (mechanism === "LOOP") return Promise.resolve({ kind: "challenge", challenge: "" });
        if (mechanism === "PLAIN") {
          return Promise.resolve(
            initial === undefined ? { kind: "challenge", challenge: "" } : plain(initial),
          );
        }
        return Promise.resolve({ kind: "challenge", challenge: b64("Username:") });
      },
      respond: (response) => {
        this.responses.push(response);
        if (mechanism === "LOOP") return Promise.resolve({ kind: "challenge", challenge: "" });
        if (mechanism === "PLAIN") return Promise.resolve(plain(response));
        if (stage++ === 0) {
          user = atob(response);
          return Promise.resolve({ kind: "challenge", challenge: b64("Password:") });
        }
        return Promise.resolve(decide(user, atob(response)));
      },
      abandon: () => {
        this.abandoned++;
      },
    };
  }
}

/** A fake client: lines to read, replies written. */
function fakeIo(lines: (string | SecretLine)[]) {
  const sent: string[] = [];
  const limits: number[] = [];
  return {
    sent,
    limits,
    io: {
      readSecretLine(max: number): Promise<SecretLine> {
        limits.push(max);
        const next = lines.shift();
        if (next === undefined) return Promise.resolve({ kind: "closed" });
        if (typeof next !== "string") return Promise.resolve(next);
        return Promise.resolve(
          next.length > max ? { kind: "tooLong" } : { kind: "line", text: next },
        );
      },
      sendReply(reply: Reply): Promise<void> {
        sent.push(formatReply(reply));
        return Promise.resolve();
      },
    },
  };
}

const STATE: AuthSessionState = {
  enabled: true,
  tls: false,
  inTransaction: false,
  username: undefined,
};

async function auth(
  args: string,
  lines: (string | SecretLine)[] = [],
  more: { state?: Partial<AuthSessionState>; options?: Partial<AuthOptions> } = {},
) {
  const server = new FakeServer();
  const client = fakeIo(lines);
  const options: AuthOptions = {
    server,
    mechanisms: ["PLAIN", "LOGIN", "TEMP", "LOOP"],
    tlsAuthOnly: false,
    responseLimit: 100,
    client: { clientAddress: "192.0.2.1", tls: false },
    ...more.options,
  };
  const outcome = await runAuthCommand(args, { ...STATE, ...more.state }, {
    io: client.io,
    options,
  });
  const wire = "reply" in outcome ? formatReply(outcome.reply) : "";
  return { outcome, wire, server, sent: client.sent, limits: client.limits };
}

function assertNoSecret(outcome: AuthOutcome): void {
  const text = JSON.stringify(outcome);
  for (const s of ["secret", "wrong", PLAIN_OK, PLAIN_BAD, b64("secret"), b64("wrong")]) {
    assert.ok(!text.includes(s), `outcome leaks ${s}: ${text}`);
  }
}

Deno.test("runAuthCommand() PLAIN with an initial response: 235 and the fields to log", async () => {
  const r = await auth(`PLAIN ${PLAIN_OK}`);
  assert.equal(r.wire, "235 2.7.0 Authentication successful\r\n");
  assert.equal(r.outcome.kind, "authenticated");
  if (r.outcome.kind !== "authenticated") return;
  assert.equal(r.outcome.username, "alice");
  assert.equal(r.outcome.logFields, "sasl_method=PLAIN, sasl_username=alice");
  assert.deepEqual(r.sent, []);
  assert.deepEqual(r.server.initial, [PLAIN_OK]);
  assertNoSecret(r.outcome);
});

Deno.test("runAuthCommand() PLAIN without an initial response: empty 334 first", async () => {
  const r = await auth("plain", [PLAIN_OK]);
  assert.deepEqual(r.sent, ["334 \r\n"]);
  assert.equal(r.outcome.kind, "authenticated");
  assert.deepEqual(r.server.started, ["PLAIN"]);
  assert.deepEqual(r.server.initial, [undefined]);
  assert.deepEqual(r.limits, [99]);
});

Deno.test('runAuthCommand() "=" is the empty initial response', async () => {
  const r = await auth("PLAIN =");
  assert.deepEqual(r.server.initial, [""]);
  assert.equal(r.wire, "535 5.7.8 Error: authentication failed: (reason unavailable)\r\n");
});

Deno.test("runAuthCommand() LOGIN: two challenges, then success", async () => {
  const r = await auth("LOGIN", [b64("alice"), b64("secret")]);
  assert.deepEqual(r.sent, [`334 ${b64("Username:")}\r\n`, `334 ${b64("Password:")}\r\n`]);
  assert.equal(r.wire, "235 2.7.0 Authentication successful\r\n");
  assertNoSecret(r.outcome);
});

Deno.test("runAuthCommand() wrong password: 535 and a warning without the password", async () => {
  const r = await auth("LOGIN", [b64("alice"), b64("wrong")]);
  assert.equal(r.wire, "535 5.7.8 Error: authentication failed: (reason unavailable)\r\n");
  assert.equal(r.outcome.kind, "refused");
  if (r.outcome.kind !== "refused") return;
  assert.equal(
    r.outcome.warning,
    "SASL LOGIN authentication failed: (reason unavailable), sasl_username=alice",
  );
  assertNoSecret(r.outcome);
});

Deno.test("runAuthCommand() temporary server failure: 454 4.7.0", async () => {
  const r = await auth("TEMP");
  assert.equal(r.wire, "454 4.7.0 Temporary authentication failure: backend down\r\n");
});

Deno.test('runAuthCommand() "*" cancels: 501 5.7.0, the server forgets the request', async () => {
  const r = await auth("LOGIN", [b64("alice"), "*"]);
  assert.equal(r.wire, "501 5.7.0 Authentication aborted\r\n");
  assert.equal(r.outcome.kind, "aborted");
  assert.equal(r.server.abandoned, 1);
  assert.deepEqual(r.server.responses, [b64("alice")]);
});

Deno.test("runAuthCommand() bad base64 in the initial response: 501 5.5.2, server untouched", async () => {
  for (const bad of ["AGFsaWNl!", "abc", "a===", "YQ=x", "ab=c"]) {
    const r = await auth(`PLAIN ${bad}`);
    assert.equal(r.wire, "501 5.5.2 Error: invalid base64 data in authentication response\r\n");
    assert.deepEqual(r.server.started, [], bad);
  }
});

Deno.test("runAuthCommand() bad base64 in a response: 501 5.5.2 and abandon", async () => {
  const r = await auth("LOGIN", ["not base64!"]);
  assert.equal(r.wire, "501 5.5.2 Error: invalid base64 data in authentication response\r\n");
  assert.equal(r.server.abandoned, 1);
  assert.deepEqual(r.server.responses, []);
});

Deno.test("runAuthCommand() an over-long response: 500 5.5.6, nothing passed on", async () => {
  const r = await auth("LOGIN", ["QUFB".repeat(30)]);
  assert.equal(r.wire, "500 5.5.6 SASL response limit exceeded\r\n");
  assert.deepEqual(r.server.responses, []);
  assert.equal(r.server.abandoned, 1);
});

Deno.test("runAuthCommand() a response as long as the limit is too long; one byte less passes", async () => {
  // As Postfix 3.7: with the limit at 100, 100 bytes get 500 5.5.6.
  const atLimit = await auth("LOGIN", ["QUFB".repeat(25)]);
  assert.equal(atLimit.wire, "500 5.5.6 SASL response limit exceeded\r\n");
  // 99 bytes pass the length check (then fail as base64, not as length).
  const under = await auth("LOGIN", ["A".repeat(99)]);
  assert.equal(under.wire, "501 5.5.2 Error: invalid base64 data in authentication response\r\n");
});

Deno.test("runAuthCommand() the client leaves mid-exchange: lost, abandoned, no reply", async () => {
  const r = await auth("LOGIN", [b64("alice")]);
  assert.equal(r.outcome.kind, "lost");
  assert.equal(r.wire, "");
  assert.equal(r.server.abandoned, 1);
});

Deno.test("runAuthCommand() a server that never decides is cut off", async () => {
  const lines = Array.from({ length: 100 }, () => "");
  const r = await auth("LOOP", lines);
  assert.equal(r.sent.length, 32);
  assert.equal(r.server.abandoned, 1);
  assert.match(r.wire, /^454 4\.7\.0 /);
});

Deno.test("runAuthCommand() mechanisms not offered: 504 5.5.4", async () => {
  // "PLAIN\u00a0": blanks are SP and HT, U+00A0 is part of the name.
  for (const args of ["CRAM-MD5", "ANONYMOUS", "PL/AIN", "X".repeat(30), "PLAIN\u00a0"]) {
    const r = await auth(args);
    assert.equal(r.wire, "504 5.5.4 Unsupported authentication mechanism\r\n", args);
    assert.deepEqual(r.server.started, []);
  }
});

Deno.test("runAuthCommand() server unreachable: 454 4.7.0 for any mechanism, never 504", async () => {
  for (const args of [`PLAIN ${PLAIN_OK}`, "LOGIN", "CRAM-MD5"]) {
    const r = await auth(args, [], { options: { mechanisms: undefined } });
    assert.equal(
      r.wire,
      "454 4.7.0 Temporary authentication failure: Can't connect to authentication server\r\n",
      args,
    );
    assert.deepEqual(r.server.started, []);
    assert.equal(
      r.outcome.kind === "refused" ? r.outcome.warning : "",
      `SASL ${
        args.split(" ")[0]
      } authentication failed: Can't connect to authentication server, sasl_username=(unavailable)`,
    );
  }
  // The checks before the mechanism still come first.
  const r = await auth("PLAIN", [], {
    state: { username: "alice" },
    options: { mechanisms: undefined },
  });
  assert.equal(r.wire, "503 5.5.1 Error: already authenticated\r\n");
});

Deno.test("runAuthCommand() refusals before the exchange, in Postfix's order", async () => {
  const cases: [string, Partial<AuthSessionState>, Partial<AuthOptions>, string][] = [
    ["PLAIN", { enabled: false }, {}, "503 5.5.1 Error: authentication not enabled"],
    [
      "PLAIN",
      { inTransaction: true },
      { tlsAuthOnly: true },
      "503 5.5.1 Error: authentication not enabled",
    ],
    ["PLAIN", { inTransaction: true }, {}, "503 5.5.1 Error: MAIL transaction in progress"],
    ["PLAIN", { username: "alice" }, {}, "503 5.5.1 Error: already authenticated"],
    ["", {}, {}, "501 5.5.4 Syntax: AUTH mechanism"],
    ["PLAIN a b", {}, {}, "501 5.5.4 Syntax: AUTH mechanism"],
  ];
  for (const [args, state, options, want] of cases) {
    const r = await auth(args, [], { state, options });
    assert.equal(r.wire, want + "\r\n", JSON.stringify([args, state, options]));
    assert.deepEqual(r.server.started, []);
  }
  const tls = await auth(`PLAIN ${PLAIN_OK}`, [], {
    state: { tls: true },
    options: { tlsAuthOnly: true },
  });
  assert.equal(tls.outcome.kind, "authenticated");
});

Deno.test("authCommandForLog() hides the initial response", () => {
  assert.equal(authCommandForLog(`PLAIN ${PLAIN_OK}`), "AUTH PLAIN ****");
  assert.equal(authCommandForLog("LOGIN"), "AUTH LOGIN");
  assert.equal(authCommandForLog(""), "AUTH");
  // A first word that is no mechanism name is most often credentials sent
  // without one: hidden too.
  assert.equal(authCommandForLog("PL\x01AIN x"), "AUTH **** ****");
  assert.equal(authCommandForLog("AGFsaWNlAHNlY3JldA=="), "AUTH ****");
  assert.equal(authCommandForLog("CRAM-MD5"), "AUTH CRAM-MD5");
  // Base64 of 15 bytes ("\0alice\0password") is 20 letters and digits;
  // upper case ones too ("\0b7eMM\0CROtwdCC"): only a registered name shows.
  assert.equal(authCommandForLog("AGFsaWNlAHBhc3N3b3Jk"), "AUTH ****");
  assert.equal(authCommandForLog("AGI3ZU1NAENST3R3ZEND"), "AUTH ****");
  assert.equal(authCommandForLog("X-UNKNOWN-MECH"), "AUTH ****");
  assert.equal(authCommandForLog("login"), "AUTH login");
  assert.equal(authCommandForLog("scram-sha-512-plus"), "AUTH scram-sha-512-plus");
  assert.equal(authCommandForLog("GS2-KRB5-PLUS"), "AUTH GS2-KRB5-PLUS");
  assert.equal(authCommandForLog("KERBEROS_V4"), "AUTH KERBEROS_V4");
  assert.equal(authCommandForLog("Plain x"), "AUTH Plain ****");
  assert.equal(authCommandForLog("abc"), "AUTH ****");
});
