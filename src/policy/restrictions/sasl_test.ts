import assert from "node:assert/strict";
import { decide, type Facts, type Params, show } from "../_policy_cases.ts";
import { requestAttributes } from "./policy_service.ts";

const MAPS = await Deno.makeTempFile({ suffix: ".logins" });
await Deno.writeTextFile(
  MAPS,
  "alice@example.org alice\nshared@example.org alice, carol\n@team.example carol\n" +
    "fold@example.org STRASSE, σοφος, alice\n",
);

const AUTH: Params = {
  "smtpd_sasl_auth_enable": true,
  "smtpd_sender_login_maps": [`texthash:${MAPS}`],
};

/** A stage that no restriction refuses ends in "permit" (the end of the lists). */
async function sender(restriction: string, facts: Facts, params: Params = AUTH) {
  const r = await decide({
    params: { ...params, "smtpd_sender_restrictions": [restriction] },
    stage: "sender",
    facts,
  });
  return { shown: show(r.decision), warnings: r.warnings };
}

const NOT_OWNED = (a: string, u: string) =>
  `reject 553 5.7.1 <${a}>: Sender address rejected: not owned by user ${u}`;
const NOT_LOGGED_IN = (a: string) =>
  `reject 553 5.7.1 <${a}>: Sender address rejected: not logged in`;

Deno.test("permit_sasl_authenticated permits a logged-in client, not ANONYMOUS, not a stranger", async () => {
  const rcpt = (facts: Facts) =>
    decide({
      params: { "smtpd_recipient_restrictions": ["permit_sasl_authenticated", "reject"] },
      stage: "recipient",
      facts: { to: "x@foreign.example", ...facts },
    }).then((r) => show(r.decision));
  assert.equal(await rcpt({ sasl: "PLAIN:alice" }), "permit");
  assert.match(await rcpt({ sasl: "ANONYMOUS:anon" }), /^reject 554 5\.7\.1/);
  assert.match(await rcpt({}), /^reject 554 5\.7\.1/);
});

Deno.test("reject_sender_login_mismatch: owner, co-owner, @domain key, unknown address, not logged in", async () => {
  const r = (facts: Facts) => sender("reject_sender_login_mismatch", facts).then((x) => x.shown);
  assert.equal(await r({ from: "alice@example.org", sasl: "PLAIN:alice" }), "permit");
  assert.equal(await r({ from: "Alice@Example.org", sasl: "PLAIN:ALICE" }), "permit");
  assert.equal(await r({ from: "shared@example.org", sasl: "LOGIN:carol" }), "permit");
  assert.equal(await r({ from: "anyone@team.example", sasl: "PLAIN:carol" }), "permit");
  assert.equal(
    await r({ from: "alice@example.org", sasl: "PLAIN:carol" }),
    NOT_OWNED("alice@example.org", "carol"),
  );
  // Postfix's class: the authenticated check forbids an address no map knows.
  assert.equal(
    await r({ from: "nobody@else.example", sasl: "PLAIN:carol" }),
    NOT_OWNED("nobody@else.example", "carol"),
  );
  assert.equal(await r({ from: "alice@example.org" }), NOT_LOGGED_IN("alice@example.org"));
  assert.equal(await r({ from: "nobody@else.example" }), "permit");
  assert.equal(await r({ from: "", sasl: "PLAIN:carol" }), "permit");
});

Deno.test("an owner is the login when both are equal case folded in full (Postfix's strcasecmp_utf8)", async () => {
  const r = (sasl: string) =>
    sender("reject_sender_login_mismatch", { from: "fold@example.org", sasl }).then((x) => x.shown);
  assert.equal(await r("PLAIN:straße"), "permit");
  assert.equal(await r("PLAIN:STRAẞE"), "permit");
  assert.equal(await r("PLAIN:ΣΟΦΟΣ"), "permit");
  assert.equal(await r("PLAIN:σοφοσ"), "permit");
  // Folding keeps the dotless ı apart from i.
  assert.equal(await r("PLAIN:alıce"), NOT_OWNED("fold@example.org", "alıce"));
  assert.equal(await r("PLAIN:strase"), NOT_OWNED("fold@example.org", "strase"));
});

Deno.test("the known, authenticated and unauthenticated variants check only their half", async () => {
  const known = (f: Facts) => sender("reject_known_sender_login_mismatch", f).then((x) => x.shown);
  assert.equal(await known({ from: "nobody@else.example", sasl: "PLAIN:carol" }), "permit");
  assert.equal(
    await known({ from: "alice@example.org", sasl: "PLAIN:carol" }),
    NOT_OWNED("alice@example.org", "carol"),
  );
  assert.equal(await known({ from: "alice@example.org" }), NOT_LOGGED_IN("alice@example.org"));
  const authd = (f: Facts) =>
    sender("reject_authenticated_sender_login_mismatch", f).then((x) => x.shown);
  assert.equal(await authd({ from: "alice@example.org" }), "permit");
  assert.equal(
    await authd({ from: "nobody@else.example", sasl: "PLAIN:carol" }),
    NOT_OWNED("nobody@else.example", "carol"),
  );
  const unauth = (f: Facts) =>
    sender("reject_unauthenticated_sender_login_mismatch", f).then((x) => x.shown);
  assert.equal(await unauth({ from: "alice@example.org", sasl: "PLAIN:carol" }), "permit");
  assert.equal(await unauth({ from: "alice@example.org" }), NOT_LOGGED_IN("alice@example.org"));
});

Deno.test("smtpd_sender_login_maps: with recipient_delimiter, user+ext@domain has user@domain's owners", async () => {
  const r = (facts: Facts, params: Params) =>
    sender("reject_sender_login_mismatch", facts, { ...AUTH, ...params }).then((x) => x.shown);
  const plus = { "recipient_delimiter": "+" };
  assert.equal(await r({ from: "alice+x@example.org", sasl: "PLAIN:alice" }, plus), "permit");
  assert.equal(
    await r({ from: "alice+x@example.org", sasl: "PLAIN:carol" }, plus),
    NOT_OWNED("alice+x@example.org", "carol"),
  );
  assert.equal(
    await r({ from: "alice+x@example.org" }, plus),
    NOT_LOGGED_IN("alice+x@example.org"),
  );
  // Without a delimiter the tagged address is one no map knows.
  assert.equal(
    await r({ from: "alice+x@example.org", sasl: "PLAIN:alice" }, {}),
    NOT_OWNED("alice+x@example.org", "alice"),
  );
});

Deno.test("a sender login restriction without smtpd_sasl_auth_enable is ignored with Postfix's warning", async () => {
  const r = await sender("reject_sender_login_mismatch", { from: "alice@example.org" }, {
    "smtpd_sender_login_maps": [`texthash:${MAPS}`],
  });
  assert.equal(r.shown, "permit");
  assert.ok(
    r.warnings.some((w) =>
      w.includes("restriction `reject_sender_login_mismatch' ignored: no SASL support")
    ),
    r.warnings.join("\n"),
  );
});

Deno.test("a sender login restriction without smtpd_sender_login_maps lets every sender through, with a warning", async () => {
  const r = await sender("reject_sender_login_mismatch", {
    from: "alice@example.org",
    sasl: "PLAIN:carol",
  }, { "smtpd_sasl_auth_enable": true });
  assert.equal(r.shown, "permit");
  assert.ok(
    r.warnings.some((w) =>
      w.includes(
        "restriction `reject_sender_login_mismatch' does nothing: smtpd_sender_login_maps is empty",
      )
    ),
    r.warnings.join("\n"),
  );
});

Deno.test("a policy server is sent sasl_method, sasl_username and sasl_sender after AUTH", () => {
  const base = {
    clientAddress: "192.0.2.1",
    clientName: "c.example",
    reverseName: "c.example",
    nameStatus: "ok" as const,
    reverseStatus: "ok" as const,
    local: false,
    helo: "c.example",
    sender: undefined,
    recipient: undefined,
  };
  const get = (attrs: [string, string][], name: string) => attrs.find(([n]) => n === name)?.[1];
  const before = requestAttributes(base, "recipient", "") as [string, string][];
  assert.equal(get(before, "sasl_username"), "");
  const after = requestAttributes(
    { ...base, sasl: { method: "LOGIN", username: "carol" }, saslSender: "c+40x.example" },
    "recipient",
    "",
  ) as [string, string][];
  assert.equal(get(after, "sasl_method"), "LOGIN");
  assert.equal(get(after, "sasl_username"), "carol");
  assert.equal(get(after, "sasl_sender"), "c+40x.example");
});
