import assert from "node:assert/strict";
import { ConfigError, resolveConfigText } from "../../config/mod.ts";
import { decide, type Facts, type Params, show } from "../_policy_cases.ts";
import { fakeDns, type Zone } from "../_fake_dns.ts";
import { compilePolicy } from "../compile.ts";
import type { PolicyStage } from "../context.ts";
import { rhsblDomain } from "./rhsbl.ts";

const DOMAINS: [what: string, domain: string | undefined][] = [
  ["user@Bad.Example", "bad.example"],
  ["bad.example.", "bad.example"],
  ["a@b@bad.example", "bad.example"],
  ["user@[192.0.2.1]", undefined],
  ["user@", undefined],
  ["host.12345", undefined],
  ["12345", undefined],
  ["bad..example", undefined],
  ["user", "user"],
  // UTF-8 (SMTPUTF8): looked up by the A-labels IDNA maps it to.
  ["user@\u00e9cole.example", "xn--cole-9oa.example"],
  ["user@spam\u200b.example", "spam.example"],
  ["user@\uff53\uff50\uff41\uff4d.Example", "spam.example"],
  ["user@a\u200db.example", undefined],
];

for (const [what, domain] of DOMAINS) {
  Deno.test(`rhsblDomain(${JSON.stringify(what)}) is ${domain ?? "not looked up"}`, () => {
    assert.equal(rhsblDomain(what), domain);
  });
}

const ZONE: Zone = {
  "bad.example.rhsbl.example": { A: ["127.0.0.2"], TXT: ["Listed: bad.example"] },
  "two.example.rhsbl.example": { A: ["127.0.0.3"], TXT: ["first", "second"] },
  "err.example.rhsbl.example": { A: ["127.255.255.254"] },
  "slow.example.rhsbl.example": { A: "tempfail" },
  "1.2.0.192.dnswl.example": { A: ["127.0.10.2"] },
  "3.2.0.192.dnswl.example": { A: "tempfail" },
  "4.2.0.192.dnswl.example": { A: ["127.255.255.255"] },
};

interface Case {
  does: string;
  params: Params;
  stage: PolicyStage;
  facts: Facts;
  expect: string;
  warns?: RegExp[];
}

const list = (...items: string[]): Params => ({ "smtpd_recipient_restrictions": items });
const SENDER = list("reject_rhsbl_sender rhsbl.example");
const BLOCKED = (what: string, why = "; Listed: bad.example") =>
  `reject 554 5.7.1 Service unavailable; ${what} blocked using rhsbl.example${why}`;

const CASES: Case[] = [
  {
    does: "reject_rhsbl_sender refuses a listed sender domain with the TXT text",
    params: SENDER,
    stage: "recipient",
    facts: { from: "joe@bad.example", to: "u@example.com" },
    expect: BLOCKED("Sender address [joe@bad.example]"),
  },
  {
    does: "reject_rhsbl_sender passes a clean sender",
    params: SENDER,
    stage: "recipient",
    facts: { from: "joe@good.example", to: "u@example.com" },
    expect: "permit",
  },
  {
    does: "reject_rhsbl_sender skips the null sender",
    params: SENDER,
    stage: "recipient",
    facts: { from: "", to: "u@example.com" },
    expect: "permit",
  },
  {
    does: "reject_rhsbl_sender joins several TXT records with ' / '",
    params: SENDER,
    stage: "recipient",
    facts: { from: "joe@two.example", to: "u@example.com" },
    expect: BLOCKED("Sender address [joe@two.example]", "; first / second"),
  },
  {
    does: "reject_rhsbl_sender with a reply filter ignores other answers",
    params: list("reject_rhsbl_sender rhsbl.example=127.0.0.3"),
    stage: "recipient",
    facts: { from: "joe@bad.example", to: "u@example.com" },
    expect: "permit",
  },
  {
    does: "reject_rhsbl_sender with a matching reply filter shows the zone without the filter",
    params: list("reject_rhsbl_sender rhsbl.example=127.0.0.[2..3]"),
    stage: "recipient",
    facts: { from: "joe@bad.example", to: "u@example.com" },
    expect: BLOCKED("Sender address [joe@bad.example]"),
  },
  {
    does: "reject_rhsbl_sender takes 127.255.255.x for a list error, not a listing",
    params: SENDER,
    stage: "recipient",
    facts: { from: "joe@err.example", to: "u@example.com" },
    expect: "permit",
    warns: [/rhsbl\.example: list error answer 127\.255\.255\.254 for err\.example ignored/],
  },
  {
    does: "a list that does not answer gives the benefit of the doubt, logged",
    params: SENDER,
    stage: "recipient",
    facts: { from: "joe@slow.example", to: "u@example.com" },
    expect: "permit",
    warns: [/slow\.example\.rhsbl\.example: RBL lookup error: SERVFAIL/],
  },
  {
    does: "maps_rbl_reject_code 450 makes a listing a temporary refusal",
    params: { ...SENDER, "maps_rbl_reject_code": 450 },
    stage: "recipient",
    facts: { from: "joe@bad.example", to: "u@example.com" },
    expect: "defer 450 4.7.1 Service unavailable; Sender address [joe@bad.example] " +
      "blocked using rhsbl.example; Listed: bad.example",
  },
  {
    does: "reject_rhsbl_client looks the name up as it is, not its parent domain",
    params: { "smtpd_client_restrictions": ["reject_rhsbl_client rhsbl.example"] },
    stage: "client",
    facts: { client: "mail.bad.example[192.0.2.9]" },
    expect: "permit",
  },
  {
    does: "reject_rhsbl_client looks the whole client name up",
    params: { "smtpd_client_restrictions": ["reject_rhsbl_client rhsbl.example"] },
    stage: "client",
    facts: { client: "bad.example[192.0.2.9]" },
    expect: BLOCKED("Client host [bad.example]"),
  },
  {
    does: "reject_rhsbl_client skips an unknown client",
    params: { "smtpd_client_restrictions": ["reject_rhsbl_client rhsbl.example"] },
    stage: "client",
    facts: { client: "unknown[192.0.2.9]" },
    expect: "permit",
  },
  {
    does: "reject_rhsbl_reverse_client looks at the unverified name",
    params: { "smtpd_client_restrictions": ["reject_rhsbl_reverse_client rhsbl.example"] },
    stage: "client",
    facts: { client: "unknown[192.0.2.9]", reverseName: "bad.example" },
    expect: BLOCKED("Unverified Client host [bad.example]"),
  },
  {
    does: "reject_rhsbl_helo refuses a listed HELO name",
    params: { "smtpd_helo_restrictions": ["reject_rhsbl_helo rhsbl.example"] },
    stage: "helo",
    facts: { helo: "bad.example" },
    expect: BLOCKED("Helo command [bad.example]"),
  },
  {
    does: "reject_rhsbl_helo skips an address literal",
    params: { "smtpd_helo_restrictions": ["reject_rhsbl_helo rhsbl.example"] },
    stage: "helo",
    facts: { helo: "[192.0.2.9]" },
    expect: "permit",
  },
  {
    does: "reject_rhsbl_recipient refuses a listed recipient domain",
    params: list("reject_rhsbl_recipient rhsbl.example"),
    stage: "recipient",
    facts: { from: "a@b.example", to: "u@bad.example" },
    expect: BLOCKED("Recipient address [u@bad.example]"),
  },
  {
    does: "permit_dnswl_client permits a listed client address over a later reject",
    params: { "smtpd_client_restrictions": ["permit_dnswl_client dnswl.example", "reject"] },
    stage: "client",
    facts: { client: "x.example[192.0.2.1]" },
    expect: "permit",
  },
  {
    does: "permit_dnswl_client passes on an unlisted client",
    params: { "smtpd_client_restrictions": ["permit_dnswl_client dnswl.example", "reject"] },
    stage: "client",
    facts: { client: "x.example[192.0.2.2]" },
    expect: "reject 554 5.7.1 <x.example[192.0.2.2]>: Client host rejected: Access denied",
  },
  {
    does: "permit_dnswl_client with a reply filter that does not match permits nothing",
    params: {
      "smtpd_client_restrictions": ["permit_dnswl_client dnswl.example=127.0.[0..255].3", "reject"],
    },
    stage: "client",
    facts: { client: "x.example[192.0.2.1]" },
    expect: "reject 554 5.7.1 <x.example[192.0.2.1]>: Client host rejected: Access denied",
  },
  {
    does: "permit_dnswl_client: a list that does not answer turns a later reject into 450",
    params: { "smtpd_client_restrictions": ["permit_dnswl_client dnswl.example", "reject"] },
    stage: "client",
    facts: { client: "x.example[192.0.2.3]" },
    expect: "defer 450 4.7.1 <192.0.2.3>: Client host rejected: Service unavailable",
    warns: [/3\.2\.0\.192\.dnswl\.example: RBL lookup error: SERVFAIL/],
  },
  {
    does: "permit_dnswl_client: a list that does not answer leaves a later permit alone",
    params: { "smtpd_client_restrictions": ["permit_dnswl_client dnswl.example", "permit"] },
    stage: "client",
    facts: { client: "x.example[192.0.2.3]" },
    expect: "permit",
    warns: [/RBL lookup error/],
  },
  {
    does: "permit_dnswl_client takes 127.255.255.255 for a list error",
    params: { "smtpd_client_restrictions": ["permit_dnswl_client dnswl.example", "reject"] },
    stage: "client",
    facts: { client: "x.example[192.0.2.4]" },
    expect: "reject 554 5.7.1 <x.example[192.0.2.4]>: Client host rejected: Access denied",
    warns: [/list error answer 127\.255\.255\.255/],
  },
  {
    does: "permit_dnswl_client never allowlists relaying at RCPT",
    params: list("permit_dnswl_client dnswl.example", "reject_unauth_destination"),
    stage: "recipient",
    facts: { client: "x.example[192.0.2.1]", to: "u@other.example" },
    expect: "reject 554 5.7.1 <u@other.example>: Relay access denied",
  },
  {
    does: "permit_dnswl_client permits at RCPT for our own destination",
    params: list("permit_dnswl_client dnswl.example", "reject"),
    stage: "recipient",
    facts: { client: "x.example[192.0.2.1]", to: "u@example.com" },
    expect: "permit",
  },
];

for (const c of CASES) {
  Deno.test(`DNS lists by name and address: ${c.does}`, async () => {
    const { decision, warnings } = await decide({ ...c, dns: ZONE });
    assert.equal(show(decision), c.expect);
    const expected = c.warns ?? [];
    assert.equal(warnings.length, expected.length, `warnings:\n${warnings.join("\n")}`);
    for (const re of expected) assert.ok(warnings.some((w) => re.test(w)), `no warning ${re}`);
  });
}

const BAD_ARGS: [items: string, message: RegExp][] = [
  ['"reject_rhsbl_sender"', /restriction "reject_rhsbl_sender" needs a zone argument/],
  ['"reject_rhsbl_helo bad/zone"', /reject_rhsbl_helo: bad zone "bad\/zone"/],
  ['"reject_rhsbl_client z.example=127.0.0"', /reject_rhsbl_client: bad reply filter "127\.0\.0"/],
  ['"permit_dnswl_client z.example=1=2"', /permit_dnswl_client: bad zone/],
];

for (const [items, message] of BAD_ARGS) {
  Deno.test(`a bad DNS list argument (${items}) stops the start with file:line`, () => {
    const loaded = resolveConfigText(`\nsmtpd_recipient_restrictions = [${items}]`, {
      systemHostname: "mx.example.com",
      file: "t.toml",
    });
    assert.throws(() => compilePolicy(loaded, { dns: fakeDns({}), warn: () => {} }), (e) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /^t\.toml:2: smtpd_recipient_restrictions: /);
      assert.match(e.message, message);
      return true;
    });
  });
}
