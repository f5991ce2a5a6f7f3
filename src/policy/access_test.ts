import { NO_DESTINATIONS } from "./destinations.ts";
import assert from "node:assert/strict";
import { resolveConfigText } from "../config/mod.ts";
import { replyForLog } from "../protocol/reply.ts";
import {
  type Action,
  addressKeys,
  checkAccess,
  compileAction,
  emailKeys,
  hostKeys,
  wholeKeys,
} from "./access.ts";
import type { PolicyContext } from "./context.ts";
import type { Decision } from "./decision.ts";
import type { CompileEnv, EvalEnv, Restriction } from "./restriction.ts";
import type { LookupResult, LookupTable } from "./tables/mod.ts";

const HOST_KEYS: [host: string, keys: string[]][] = [
  ["a.b.example.com", ["a.b.example.com", "b.example.com", "example.com", "com"]],
  ["Mail.Example.COM", ["mail.example.com", "example.com", "com"]],
  ["mail.example.com.", ["mail.example.com", "example.com", "com"]],
  ["localhost", ["localhost"]],
];

for (const [host, keys] of HOST_KEYS) {
  Deno.test(`hostKeys() looks up ${host} as the name, then each parent domain`, () => {
    assert.deepEqual(hostKeys(host), keys);
  });
}

const ADDRESS_KEYS: [address: string, keys: string[]][] = [
  ["192.0.2.1", ["192.0.2.1", "192.0.2", "192.0", "192"]],
  ["10.33.22.11", ["10.33.22.11", "10.33.22", "10.33", "10"]],
  [
    "2001:db8:1:2:3:4:5:6",
    [
      "2001:db8:1:2:3:4:5:6",
      "2001:db8:1:2:3:4:5",
      "2001:db8:1:2:3:4",
      "2001:db8:1:2:3",
      "2001:db8:1:2",
      "2001:db8:1",
      "2001:db8",
      "2001",
    ],
  ],
  // Postfix strips ":"-separated fields from the compressed form, as text.
  ["2001:db8::1", ["2001:db8::1", "2001:db8:", "2001:db8", "2001"]],
];

for (const [address, keys] of ADDRESS_KEYS) {
  Deno.test(`addressKeys() looks up ${address} as the address, then shorter prefixes`, () => {
    assert.deepEqual(addressKeys(address), keys);
  });
}

const EMAIL_KEYS: [local: string, domain: string, keys: string[]][] = [
  ["user", "example.com", ["user@example.com", "example.com", "com", "user@"]],
  [
    "User",
    "Sub.Example.COM",
    ["user@sub.example.com", "sub.example.com", "example.com", "com", "user@"],
  ],
  ["postmaster", "", ["postmaster", "postmaster@"]],
  ["u%other.example", "example.com", [
    "u%other.example@example.com",
    "example.com",
    "com",
    "u%other.example@",
  ]],
];

for (const [local, domain, keys] of EMAIL_KEYS) {
  Deno.test(`emailKeys() looks up ${local}@${domain} as user@domain, domain, parents, user@`, () => {
    assert.deepEqual(emailKeys(local, domain), keys);
  });
}

Deno.test("emailKeys() with recipient_delimiter: user+ext@domain, user@domain, domains, user+ext@, user@ (check_mail_access)", () => {
  assert.deepEqual(emailKeys("User+Tag", "mail.example.com", "+"), [
    "user+tag@mail.example.com",
    "user@mail.example.com",
    "mail.example.com",
    "example.com",
    "com",
    "user+tag@",
    "user@",
  ]);
  assert.deepEqual(emailKeys("user+tag", "", "+"), ["user+tag", "user", "user+tag@", "user@"]);
  assert.deepEqual(emailKeys("user", "example.com", "+"), emailKeys("user", "example.com"));
  assert.deepEqual(emailKeys("", "", "+"), ["<>"]);
});

Deno.test({
  name: "emailKeys() looks up the null sender as <> (smtpd_null_access_lookup_key)",
  // Regression (found by these tests, fixed): emailKeys("", "") returns [""], a key no texthash: or inline: table
  // can hold, so an access(5) entry "<> 550 ..." never matches the null sender.
  fn: () => {
    assert.deepEqual(emailKeys("", ""), ["<>"]);
    assert.deepEqual(emailKeys("", "", "+", "<null>"), ["<null>"]);
  },
});

Deno.test("emailKeys() looks a local part that needs quoting up quoted first, as Postfix 3.7 does", () => {
  assert.deepEqual(emailKeys("A..b+x", "q.example", "+"), [
    '"a..b+x"@q.example',
    "a..b+x@q.example",
    '"a..b"@q.example',
    "a..b@q.example",
    "q.example",
    "example",
    '"a..b+x"@',
    "a..b+x@",
    '"a..b"@',
    "a..b@",
  ]);
  assert.deepEqual(emailKeys('say "hi"', ""), [
    '"say \\"hi\\""',
    'say "hi"',
    '"say \\"hi\\""@',
    'say "hi"@',
  ]);
});

// checkAccess() and compileAction()

const CONFIG = resolveConfigText("", { systemHostname: "mx.example.com" }).config;

const CTX: PolicyContext = {
  clientAddress: "192.0.2.1",
  clientName: "client.example.net",
  reverseName: "client.example.net",
  nameStatus: "ok",
  reverseStatus: "ok",
  local: false,
  helo: "client.example.net",
  sender: { local: "u", domain: "example.org", route: [], quoted: false },
  recipient: undefined,
};

function compileEnv(): CompileEnv {
  return {
    config: CONFIG,
    mynetworks: [],
    destinations: NO_DESTINATIONS,
    fail(message: string): never {
      throw new Error(message);
    },
    warn() {},
    table(): LookupTable {
      throw new Error("no tables here");
    },
    compileList(items: readonly string[]): Restriction[] {
      return items.map((name) => ({
        name,
        run: () =>
          Promise.resolve<Decision>(
            name === "permit" ? { kind: "permit", by: name } : {
              kind: "dunno",
            },
          ),
      }));
    },
    async evaluateList(list: readonly Restriction[], env: EvalEnv): Promise<Decision> {
      for (const r of list) {
        const d = await r.run(env);
        if (d.kind !== "dunno") return d;
      }
      return { kind: "dunno" };
    },
  };
}

function evalEnv(warnings: string[] = []): EvalEnv {
  return {
    ctx: CTX,
    stage: "sender",
    dns: { query: () => Promise.reject(new Error("no DNS in this test")) },
    trace: undefined,
    warn: (t) => warnings.push(t),
    deferIfPermit: undefined,
    depth: 0,
  };
}

function show(d: Decision): string {
  return d.kind === "reject" || d.kind === "defer" ? `${d.kind} ${replyForLog(d.reply)}` : d.kind;
}

const ACTIONS: [value: string, expected: string][] = [
  ["OK", "permit"],
  ["ok", "permit"],
  ["PERMIT", "permit"],
  ["123456", "permit"],
  ["DUNNO", "dunno"],
  ["dunno with text", "dunno"],
  ["REJECT", "reject 554 5.7.1 <u@example.org>: Sender address rejected: Access denied"],
  ["reject go away", "reject 554 5.7.1 <u@example.org>: Sender address rejected: go away"],
  [
    "REJECT 5.7.26 unauthenticated",
    "reject 554 5.7.26 <u@example.org>: Sender address rejected: unauthenticated",
  ],
  ["DEFER", "defer 450 4.7.1 <u@example.org>: Sender address rejected: Access denied"],
  ["DEFER later", "defer 450 4.7.1 <u@example.org>: Sender address rejected: later"],
  ["554 match bad", "reject 554 5.7.1 <u@example.org>: Sender address rejected: match bad"],
  // Postfix's smtpd_dsn_fix: a recipient status (X.1.1) becomes the sender one (X.1.7).
  ["550 5.1.1 no such", "reject 550 5.1.7 <u@example.org>: Sender address rejected: no such"],
  ["450 try later", "defer 450 4.7.1 <u@example.org>: Sender address rejected: try later"],
  // Postfix: an all-numeric value is OK, even "550"; 4NN/5NN need text.
  ["550", "permit"],
  ["421 closing", "defer 421 4.7.1 <u@example.org>: Sender address rejected: closing"],
  ["permit", "permit"],
  ["dunno_like_restriction", "dunno"],
];

for (const [value, expected] of ACTIONS) {
  Deno.test(`compileAction() turns access value "${value}" into ${expected.split(" ")[0]}`, async () => {
    const action: Action = compileAction(value, compileEnv(), "inline:{}");
    assert.equal(show(await action(evalEnv(), "sender", "check_sender_access")), expected);
  });
}

Deno.test("compileAction() DEFER_IF_PERMIT answers dunno and records the deferred reply", async () => {
  const env = evalEnv();
  const action = compileAction("DEFER_IF_PERMIT not now", compileEnv(), "inline:{}");
  assert.deepEqual(await action(env, "sender", "by"), { kind: "dunno" });
  assert.ok(env.deferIfPermit);
  assert.equal(
    replyForLog(env.deferIfPermit),
    "450 4.7.1 <u@example.org>: Sender address rejected: not now",
  );
});

Deno.test("compileAction() WARN answers dunno and hands the text to the session's log (warn:)", async () => {
  const warnings: string[] = [];
  const action = compileAction("WARN suspicious sender", compileEnv(), "inline:{}");
  const env = evalEnv(warnings);
  assert.deepEqual(await action(env, "sender", "by"), { kind: "dunno" });
  assert.deepEqual(env.effects, [{ kind: "warn", text: "suspicious sender" }]);
  assert.deepEqual(warnings, []);
});

for (const value of ["250 ok", "600 x"]) {
  Deno.test(`compileAction() refuses the unsupported access value "${value}" at start`, () => {
    assert.throws(
      () => compileAction(value, compileEnv(), "inline:{ k=v }"),
      (err: Error) => err.message === `inline:{ k=v }: unsupported access action "${value}"`,
    );
  });
}

for (
  const [value, problem] of [
    ["FILTER", "has FILTER entry without value"],
    ["FILTER amavis", "requires transport:destination"],
    ["REDIRECT quarantine", "requires user@domain target"],
    ["BCC", "requires user@domain target"],
  ]
) {
  Deno.test(`compileAction() refuses the malformed "${value}" at start, as Postfix judges it`, () => {
    assert.throws(
      () => compileAction(value as string, compileEnv(), "inline:{ k=v }"),
      (err: Error) => err.message === `inline:{ k=v }: action "${value}" ${problem}`,
    );
  });
}

function fakeTable(results: Record<string, LookupResult>): LookupTable & { keys: string[] } {
  const keys: string[] = [];
  return {
    name: "fake:table",
    values: undefined,
    keys,
    lookup(key) {
      keys.push(key);
      return Promise.resolve(results[key] ?? { kind: "notFound" });
    },
  };
}

Deno.test("checkAccess() stops at the first key found and runs its action", async () => {
  const table = fakeTable({
    "b.example": { kind: "found", value: "REJECT" },
    "example": { kind: "found", value: "OK" },
  });
  const actions = new Map([
    ["REJECT", compileAction("REJECT", compileEnv(), "fake:table")],
    ["OK", compileAction("OK", compileEnv(), "fake:table")],
  ]);
  const d = await checkAccess(
    evalEnv(),
    table,
    ["a.b.example", "b.example", "example"],
    actions,
    "sender",
    "check_sender_access",
  );
  assert.equal(d.kind, "reject");
  assert.equal(d.kind === "reject" && d.by, "check_sender_access fake:table b.example");
  assert.deepEqual(table.keys, ["a.b.example", "b.example"]);
});

Deno.test("checkAccess() stops searching the table at a DUNNO value", async () => {
  const table = fakeTable({
    "u@example.org": { kind: "found", value: "DUNNO" },
    "u@": { kind: "found", value: "REJECT" },
  });
  const actions = new Map([
    ["DUNNO", compileAction("DUNNO", compileEnv(), "fake:table")],
    ["REJECT", compileAction("REJECT", compileEnv(), "fake:table")],
  ]);
  const d = await checkAccess(
    evalEnv(),
    table,
    emailKeys("u", "example.org"),
    actions,
    "sender",
    "x",
  );
  assert.deepEqual(d, { kind: "dunno" });
  assert.deepEqual(table.keys, ["u@example.org"]);
});

Deno.test("checkAccess() turns a temporary lookup failure into dunno plus a deferred 451, never a permit", async () => {
  const warnings: string[] = [];
  const env = evalEnv(warnings);
  const table = fakeTable({
    "u@example.org": { kind: "tempfail", reason: "server down" },
    "example.org": { kind: "found", value: "OK" },
  });
  const actions = new Map([["OK", compileAction("OK", compileEnv(), "fake:table")]]);
  const d = await checkAccess(env, table, emailKeys("u", "example.org"), actions, "sender", "x");
  assert.deepEqual(d, { kind: "dunno" });
  assert.ok(env.deferIfPermit);
  assert.equal(replyForLog(env.deferIfPermit), "451 4.3.0 Temporary lookup failure");
  assert.deepEqual(table.keys, ["u@example.org"]);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0] as string, /fake:table: lookup of "u@example\.org" failed: server down/);
});

Deno.test("wholeKeys() gives a pattern table whole facts in their original case", () => {
  const ctx = {
    clientAddress: "192.0.2.1",
    clientName: "mail.Example.com",
    reverseName: "mail.example.com",
    nameStatus: "ok",
    reverseStatus: "ok",
    local: false,
    helo: "Helo.Example",
    sender: { local: "John.Doe", domain: "Example.ORG", route: [], quoted: false },
    recipient: undefined,
  } as const;
  assert.deepEqual(
    wholeKeys(emailKeys("John.Doe", "Example.ORG"), ctx),
    ["John.Doe@Example.ORG"],
  );
  assert.deepEqual(
    wholeKeys([...hostKeys("mail.Example.com"), ...addressKeys("192.0.2.1")], ctx),
    ["mail.Example.com", "192.0.2.1"],
  );
  assert.deepEqual(wholeKeys(hostKeys("Helo.Example"), ctx), ["Helo.Example"]);
  assert.deepEqual(wholeKeys(["<>"], ctx), ["<>"]);
});
