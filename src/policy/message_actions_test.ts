import assert from "node:assert/strict";
import { ConfigError, resolveConfigText } from "../config/mod.ts";
import { replyForLog } from "../protocol/reply.ts";
import { fakeDns } from "./_fake_dns.ts";
import { BASE, context, type Facts, type Params, toml } from "./_policy_cases.ts";
import { runtimeAction } from "./access.ts";
import { compilePolicy } from "./compile.ts";
import type { PolicyStage } from "./context.ts";
import type { Verdict } from "./decision.ts";
import type { EvalEnv } from "./restriction.ts";
import { isHeaderText } from "./message_actions.ts";

async function verdict(
  params: Params,
  stage: PolicyStage,
  facts: Facts,
): Promise<{ v: Verdict; warnings: string[] }> {
  const warnings: string[] = [];
  const loaded = resolveConfigText(toml({ ...BASE, ...params }), { file: "t.toml" });
  const policy = compilePolicy(loaded, { dns: fakeDns({}), warn: (t) => warnings.push(t) });
  return { v: await policy.check(stage, context(facts)), warnings };
}

function show(v: Verdict): string {
  return v.kind === "reject" || v.kind === "defer" ? `${v.kind} ${replyForLog(v.reply)}` : v.kind;
}

const SENDER = (value: string): Params => ({
  smtpd_sender_restrictions: ["check_sender_access", `inline:{ { s@x.example = ${value} } }`],
});
const MAIL: Facts = { from: "s@x.example" };

Deno.test("HOLD goes on to the next restriction and asks for hold with Postfix's text", async () => {
  const { v } = await verdict(
    {
      smtpd_sender_restrictions: [
        "check_sender_access",
        "inline:{ { s@x.example = HOLD } }",
        "reject",
      ],
    },
    "sender",
    MAIL,
  );
  assert.equal(show(v), "reject 554 5.7.1 <s@x.example>: Sender address rejected: Access denied");
  assert.deepEqual(v.effects, [{
    kind: "hold",
    text: "<s@x.example>: Sender address triggers HOLD action",
  }]);
});

Deno.test("HOLD is met once per message: a held transaction is not held again", async () => {
  const loaded = resolveConfigText(toml({ ...BASE, ...SENDER("HOLD") }), { file: "t.toml" });
  const policy = compilePolicy(loaded, { dns: fakeDns({}), warn: () => {} });
  const first = await policy.check("sender", context(MAIL));
  assert.equal(first.effects?.length, 1);
  const again = await policy.check("sender", { ...context(MAIL), held: true });
  assert.equal(again.effects, undefined);
});

Deno.test("DISCARD ends the list as OK and asks for the message to be dropped", async () => {
  const { v } = await verdict(
    {
      smtpd_sender_restrictions: [
        "check_sender_access",
        "inline:{ { s@x.example = DISCARD junk } }",
        "reject",
      ],
    },
    "sender",
    MAIL,
  );
  assert.equal(v.kind, "permit");
  assert.deepEqual(v.effects, [{ kind: "discard", text: "<s@x.example>: Sender address junk" }]);
});

Deno.test("PREPEND and INFO go on; PREPEND carries the header", async () => {
  const { v } = await verdict(SENDER("PREPEND X-Seen: yes"), "sender", MAIL);
  assert.equal(v.kind, "permit");
  assert.deepEqual(v.effects, [{ kind: "prepend", header: "X-Seen: yes" }]);
  const info = await verdict(SENDER("INFO noted"), "sender", MAIL);
  assert.deepEqual(info.v.effects, [{ kind: "info", text: "noted" }]);
});

Deno.test("PREPEND without a header is refused at start with file and line", () => {
  const loaded = resolveConfigText(toml({ ...BASE, ...SENDER("PREPEND no header here") }), {
    file: "t.toml",
  });
  assert.throws(
    () => compilePolicy(loaded, { dns: fakeDns({}), warn: () => {} }),
    (e: Error) =>
      e instanceof ConfigError && /^t\.toml:\d+: .*requires header: text/.test(e.message),
  );
  assert.ok(isHeaderText("X-A: b"));
  assert.ok(!isHeaderText("no colon"));
  assert.ok(!isHeaderText(": empty name"));
});

Deno.test("HOLD is skipped with Postfix's warning outside a mail transaction", async () => {
  const { v, warnings } = await verdict(
    {
      smtpd_client_restrictions: ["check_client_access", "inline:{ { 192.0.2.1 = HOLD } }"],
    },
    "client",
    {},
  );
  assert.equal(v.kind, "permit");
  assert.equal(v.effects, undefined);
  assert.match(warnings.join("\n"), /action HOLD is always skipped in client or helo/);
});

Deno.test("PREPEND is skipped with a warning at the end of data", async () => {
  const { v, warnings } = await verdict(
    {
      smtpd_end_of_data_restrictions: [
        "check_sender_access",
        "inline:{ { s@x.example = PREPEND X-Late: yes } }",
      ],
    },
    "eod",
    MAIL,
  );
  assert.equal(v.effects, undefined);
  assert.match(warnings.join("\n"), /PREPEND must be used before smtpd_end_of_data_restrictions/);
});

Deno.test("DEFER_IF_REJECT turns a later reject of the same list into 450", async () => {
  const { v } = await verdict(
    {
      smtpd_sender_restrictions: [
        "check_sender_access",
        "inline:{ { s@x.example = DEFER_IF_REJECT maybe later } }",
        "reject",
      ],
    },
    "sender",
    MAIL,
  );
  assert.equal(show(v), "defer 450 4.7.1 <s@x.example>: Sender address rejected: maybe later");
});

Deno.test("a policy server's PREPEND, HOLD and REDIRECT go through the same actions", async () => {
  const config = resolveConfigText("", {}).config;
  const env: EvalEnv = {
    ctx: context(MAIL),
    stage: "sender",
    dns: fakeDns({}),
    trace: undefined,
    warn: () => {},
    deferIfPermit: undefined,
    depth: 0,
  };
  const prepend = runtimeAction("PREPEND X-Greylist: delayed 60 seconds", config);
  assert.notEqual(typeof prepend, "string");
  if (typeof prepend === "string") return;
  assert.equal((await prepend(env, "sender", "policy")).kind, "dunno");
  const hold = runtimeAction("HOLD", config);
  if (typeof hold === "string") throw new Error(hold);
  await hold(env, "sender", "policy");
  assert.deepEqual(env.effects, [
    { kind: "prepend", header: "X-Greylist: delayed 60 seconds" },
    { kind: "hold", text: "<s@x.example>: Sender address triggers HOLD action" },
  ]);
  const redirect = runtimeAction("REDIRECT a@b.example", config);
  if (typeof redirect === "string") throw new Error(redirect);
  await redirect(env, "sender", "policy");
  assert.deepEqual(env.effects?.at(-1), {
    kind: "redirect",
    text: "<s@x.example>: Sender address triggers REDIRECT a@b.example",
    target: "a@b.example",
  });
});

Deno.test("FILTER, REDIRECT and BCC go on to the next restriction with Postfix's log text", async () => {
  const { v } = await verdict(
    {
      smtpd_sender_restrictions: [
        "check_sender_access",
        "inline:{ { s@x.example = FILTER smtp:[127.0.0.1]:10025 } }",
        "check_sender_access",
        "inline:{ { s@x.example = REDIRECT quarantine@example.net } }",
        "check_sender_access",
        "inline:{ { x.example = BCC copy@example.net } }",
        "reject",
      ],
    },
    "sender",
    MAIL,
  );
  assert.equal(show(v), "reject 554 5.7.1 <s@x.example>: Sender address rejected: Access denied");
  assert.deepEqual(v.effects, [
    {
      kind: "filter",
      text: "<s@x.example>: Sender address triggers FILTER smtp:[127.0.0.1]:10025",
      target: "smtp:[127.0.0.1]:10025",
    },
    {
      kind: "redirect",
      text: "<s@x.example>: Sender address triggers REDIRECT quarantine@example.net",
      target: "quarantine@example.net",
    },
    {
      kind: "bcc",
      text: "<s@x.example>: Sender address triggers BCC copy@example.net",
      target: "copy@example.net",
    },
  ]);
  // An empty destination is allowed ("transport:"), as in Postfix 2.7 and later.
  const bare = await verdict(SENDER("FILTER amavis:"), "sender", MAIL);
  assert.equal(bare.v.effects?.[0]?.kind, "filter");
});

Deno.test("FILTER, REDIRECT and BCC are skipped with Postfix's warning outside a mail transaction", async () => {
  for (
    const value of ["FILTER smtp:[127.0.0.1]:10025", "REDIRECT a@b.example", "BCC a@b.example"]
  ) {
    const action = value.split(" ")[0];
    const client = await verdict(
      { smtpd_client_restrictions: ["check_client_access", `inline:{ { 192.0.2.1 = ${value} } }`] },
      "client",
      {},
    );
    assert.equal(client.v.effects, undefined);
    assert.match(
      client.warnings.join("\n"),
      new RegExp(`action ${action} is always skipped in client or helo restrictions`),
    );
    const etrn = await verdict(
      { smtpd_etrn_restrictions: ["check_etrn_access", `inline:{ { x.example = ${value} } }`] },
      "etrn",
      { etrn: "x.example" },
    );
    assert.equal(etrn.v.effects, undefined);
    assert.match(
      etrn.warnings.join("\n"),
      new RegExp(`action ${action} is unavailable in smtpd_etrn_restrictions`),
    );
  }
});

Deno.test("a malformed FILTER, REDIRECT, BCC or PREPEND known only at run time is skipped with Postfix's warning", async () => {
  const config = resolveConfigText("", {}).config;
  for (
    const [value, problem] of [
      ["FILTER", "has FILTER entry without value"],
      ["FILTER amavis", "requires transport:destination"],
      ["REDIRECT quarantine", "requires user@domain target"],
      ["BCC archive", "requires user@domain target"],
      ["PREPEND no header here", "requires header: text"],
    ]
  ) {
    const warnings: string[] = [];
    const env: EvalEnv = {
      ctx: context(MAIL),
      stage: "sender",
      dns: fakeDns({}),
      trace: undefined,
      warn: (t) => warnings.push(t),
      deferIfPermit: undefined,
      depth: 0,
    };
    const action = runtimeAction(value as string, config);
    if (typeof action === "string") throw new Error(action);
    assert.equal((await action(env, "sender", "check_policy_service")).kind, "dunno");
    assert.equal(env.effects, undefined);
    assert.deepEqual(warnings, [
      `access table check_policy_service: entry "${value}" ${problem}`,
    ]);
  }
});

Deno.test("generic reject names DATA and END-OF-MESSAGE in their lists, as Postfix", async () => {
  const d = await verdict({ smtpd_data_restrictions: ["reject"] }, "data", MAIL);
  assert.equal(show(d.v), "reject 554 5.7.1 <DATA>: Data command rejected: Access denied");
  const e = await verdict({ smtpd_end_of_data_restrictions: ["reject"] }, "eod", MAIL);
  assert.equal(
    show(e.v),
    "reject 554 5.7.1 <END-OF-MESSAGE>: End-of-data rejected: Access denied",
  );
});

Deno.test("smtpd_relay_restrictions run before the recipient list; a relay refusal ends RCPT", async () => {
  const stranger: Facts = { from: "s@x.example", to: "u@elsewhere.example" };
  const { v } = await verdict(
    {
      smtpd_relay_restrictions: ["permit_mynetworks", "reject_unauth_destination"],
      smtpd_recipient_restrictions: [
        "check_recipient_access",
        "inline:{ { u@elsewhere.example = OK } }",
      ],
    },
    "recipient",
    stranger,
  );
  assert.equal(
    show(v),
    "reject 554 5.7.1 <u@elsewhere.example>: Relay access denied",
  );
  // Only the recipient list set: relay control stays in it (relay list empty).
  const old = await verdict(
    {
      smtpd_recipient_restrictions: [
        "check_recipient_access",
        "inline:{ { u@elsewhere.example = OK } }",
        "reject_unauth_destination",
      ],
    },
    "recipient",
    stranger,
  );
  assert.equal(old.v.kind, "permit");
  // A permit in the relay list does not skip the recipient list.
  const both = await verdict(
    {
      smtpd_relay_restrictions: ["permit"],
      smtpd_recipient_restrictions: ["reject"],
    },
    "recipient",
    { from: "s@x.example", to: "u@example.com" },
  );
  assert.equal(both.v.kind, "reject");
});
