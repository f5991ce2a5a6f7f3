import assert from "node:assert/strict";
import { join } from "node:path";
import { decide, type Facts, type Params, show } from "../_policy_cases.ts";
import type { PolicyStage } from "../context.ts";

/** One case: parameters over the shared test base, a stage, facts, the answer. */
interface Case {
  does: string;
  params: Params;
  stage: PolicyStage;
  facts: Facts;
  expect: string;
}

const RELAY = {
  "relay_domains": ["example.com"],
  "relay_recipient_maps": ["inline:{ alice@example.com=OK, @sub.example.com=OK }"],
  "smtpd_recipient_restrictions": ["permit_mynetworks", "reject_unauth_destination"],
};
const UNKNOWN = "Recipient address rejected: User unknown";
const TEMP = "socketmap:unix:/nonexistent/smtpd-test.sock:users";

const CASES: Case[] = [
  {
    does: "relay_recipient_maps: a listed relay recipient is accepted",
    params: RELAY,
    stage: "recipient",
    facts: { to: "alice@example.com" },
    expect: "permit",
  },
  {
    does: "relay_recipient_maps: an unlisted one is refused at RCPT with 550 5.1.1",
    params: RELAY,
    stage: "recipient",
    facts: { to: "bob@example.com" },
    expect: `reject 550 5.1.1 <bob@example.com>: ${UNKNOWN} in relay recipient table`,
  },
  {
    does: "relay_recipient_maps: @domain lists every user of a relay subdomain",
    params: { ...RELAY, "relay_domains": [".example.com", "example.com"] },
    stage: "recipient",
    facts: { to: "anyone@sub.example.com" },
    expect: "permit",
  },
  {
    does: "a trusted client is checked too (the check follows a permit, as in Postfix)",
    params: RELAY,
    stage: "recipient",
    facts: { client: "localhost[127.0.0.1]", to: "bob@example.com" },
    expect: `reject 550 5.1.1 <bob@example.com>: ${UNKNOWN} in relay recipient table`,
  },
  {
    does: "smtpd_reject_unlisted_recipient = no turns the implicit check off",
    params: { ...RELAY, "smtpd_reject_unlisted_recipient": false },
    stage: "recipient",
    facts: { to: "bob@example.com" },
    expect: "permit",
  },
  {
    does: "an explicit reject_unlisted_recipient still checks with the parameter off",
    params: {
      ...RELAY,
      "smtpd_reject_unlisted_recipient": false,
      "smtpd_recipient_restrictions": ["reject_unlisted_recipient", "permit"],
    },
    stage: "recipient",
    facts: { to: "bob@example.com" },
    expect: `reject 550 5.1.1 <bob@example.com>: ${UNKNOWN} in relay recipient table`,
  },
  {
    does: "a virtual alias counts as a known relay recipient",
    params: {
      ...RELAY,
      "virtual_alias_maps": ["inline:{ bob@example.com=bob@elsewhere.example }"],
    },
    stage: "recipient",
    facts: { to: "bob@example.com" },
    expect: "permit",
  },
  {
    does: "virtual_alias_domains ($virtual_alias_maps): an unknown alias is refused",
    params: {
      "virtual_alias_maps": [
        "inline:{ alias.example=anything, joe@alias.example=joe@example.org }",
      ],
      "smtpd_recipient_restrictions": ["permit"],
    },
    stage: "recipient",
    facts: { to: "jim@alias.example" },
    expect: `reject 550 5.1.1 <jim@alias.example>: ${UNKNOWN} in virtual alias table`,
  },
  {
    does: "virtual_alias_domains: a known alias is accepted",
    params: {
      "virtual_alias_maps": [
        "inline:{ alias.example=anything, joe@alias.example=joe@example.org }",
      ],
      "smtpd_recipient_restrictions": ["permit"],
    },
    stage: "recipient",
    facts: { to: "Joe@Alias.example" },
    expect: "permit",
  },
  {
    does: "virtual_mailbox_domains: an unknown mailbox is refused with its code",
    params: {
      "virtual_mailbox_domains": ["boxes.example"],
      "virtual_mailbox_maps": ["inline:{ ann@boxes.example=ann/ }"],
      "unknown_virtual_mailbox_reject_code": 450,
      "smtpd_recipient_restrictions": ["permit"],
    },
    stage: "recipient",
    facts: { to: "al@boxes.example" },
    expect: `defer 450 4.1.1 <al@boxes.example>: ${UNKNOWN} in virtual mailbox table`,
  },
  {
    does: "a table that cannot answer defers with 451 4.3.0, never a 5xx",
    params: { ...RELAY, "relay_recipient_maps": [TEMP] },
    stage: "recipient",
    facts: { to: "bob@example.com" },
    expect: "defer 451 4.3.0 <bob@example.com>: Temporary lookup failure",
  },
  {
    does: "smtpd_reject_unlisted_sender: an unknown sender of a relay domain is refused (5.1.0)",
    params: { ...RELAY, "smtpd_reject_unlisted_sender": true },
    stage: "sender",
    facts: { from: "mallory@example.com" },
    expect:
      "reject 550 5.1.0 <mallory@example.com>: Sender address rejected: User unknown in relay recipient table",
  },
  {
    does: "smtpd_reject_unlisted_sender: the null sender is not looked up",
    params: { ...RELAY, "smtpd_reject_unlisted_sender": true },
    stage: "sender",
    facts: { from: "" },
    expect: "permit",
  },
  {
    does: "reject_unlisted_sender as a restriction",
    params: { ...RELAY, "smtpd_sender_restrictions": ["reject_unlisted_sender"] },
    stage: "sender",
    facts: { from: "mallory@example.com" },
    expect:
      "reject 550 5.1.0 <mallory@example.com>: Sender address rejected: User unknown in relay recipient table",
  },
  {
    does: "restriction names in any case (Postfix compares them case-insensitively)",
    params: { "smtpd_recipient_restrictions": ["Permit_MyNetworks", "REJECT_UNAUTH_DESTINATION"] },
    stage: "recipient",
    facts: { to: "x@elsewhere.example" },
    expect: "reject 554 5.7.1 <x@elsewhere.example>: Relay access denied",
  },
  {
    does: "smtpd_restriction_classes (Postfix's name) declares a class",
    params: {
      "smtpd_restriction_classes": ["strict"],
      "strict": ["reject"],
      "smtpd_recipient_restrictions": ["strict"],
    },
    stage: "recipient",
    facts: { to: "x@example.com" },
    expect: "reject 554 5.7.1 <x@example.com>: Recipient address rejected: Access denied",
  },
  {
    does: "relay_domains as a type:table: a listed domain is relayed",
    params: {
      "relay_domains": ["inline:{ tabled.example=yes }"],
      "smtpd_reject_unlisted_recipient": false,
    },
    stage: "recipient",
    facts: { to: "x@deep.tabled.example" },
    expect: "permit",
  },
  {
    does: "mydestination as a type:table: an unlisted domain is not ours",
    params: { "mydestination": ["inline:{ ours.example=yes }"], "relay_domains": [] },
    stage: "recipient",
    facts: { to: "x@theirs.example" },
    expect: "defer 454 4.7.1 <x@theirs.example>: Relay access denied",
  },
  {
    does: "relay_domains as a table that cannot answer: 451 4.3.0, not a relay refusal",
    params: { "relay_domains": [TEMP], "smtpd_reject_unlisted_recipient": false },
    stage: "recipient",
    facts: { to: "x@maybe.example" },
    expect: "defer 451 4.3.0 <x@maybe.example>: Temporary lookup failure",
  },
  {
    does: "recipient_delimiter: user+tag@ is found as user@ in relay_recipient_maps",
    params: { ...RELAY, "recipient_delimiter": "+" },
    stage: "recipient",
    facts: { to: "Alice+Lists@example.com" },
    expect: "permit",
  },
  {
    does: "without recipient_delimiter (Postfix's default) user+tag@ is unknown",
    params: RELAY,
    stage: "recipient",
    facts: { to: "alice+lists@example.com" },
    expect: `reject 550 5.1.1 <alice+lists@example.com>: ${UNKNOWN} in relay recipient table`,
  },
  {
    does: "recipient_delimiter: another user with an extension is still unknown",
    params: { ...RELAY, "recipient_delimiter": "+" },
    stage: "recipient",
    facts: { to: "bob+alice@example.com" },
    expect: `reject 550 5.1.1 <bob+alice@example.com>: ${UNKNOWN} in relay recipient table`,
  },
  {
    does: "recipient_delimiter: any character of the set starts the extension",
    params: { ...RELAY, "recipient_delimiter": "+-" },
    stage: "recipient",
    facts: { to: "alice-news@example.com" },
    expect: "permit",
  },
  {
    does: "recipient_delimiter: local_recipient_maps finds user+tag as the bare user",
    params: {
      "mydestination": ["ours.example"],
      "local_recipient_maps": ["inline:{ carol=x }"],
      "recipient_delimiter": "+",
      "smtpd_recipient_restrictions": ["permit"],
    },
    stage: "recipient",
    facts: { to: "carol+tag@ours.example" },
    expect: "permit",
  },
  {
    does: "recipient_delimiter: virtual_mailbox_maps finds user+tag@ as user@",
    params: {
      "virtual_mailbox_domains": ["boxes.example"],
      "virtual_mailbox_maps": ["inline:{ ann@boxes.example=ann/ }"],
      "recipient_delimiter": "+",
      "smtpd_recipient_restrictions": ["permit"],
    },
    stage: "recipient",
    facts: { to: "ann+x@boxes.example" },
    expect: "permit",
  },
  {
    does: "recipient_delimiter: virtual_alias_maps finds user+tag@ as user@",
    params: {
      "virtual_alias_maps": [
        "inline:{ alias.example=anything, joe@alias.example=joe@example.org }",
      ],
      "recipient_delimiter": "+",
      "smtpd_recipient_restrictions": ["permit"],
    },
    stage: "recipient",
    facts: { to: "joe+x@alias.example" },
    expect: "permit",
  },
  {
    does:
      "local_recipient_maps never refuses postmaster, MAILER-DAEMON, double-bounce (check_rcpt_maps)",
    params: {
      "mydestination": ["ours.example"],
      "local_recipient_maps": ["inline:{ carol=x }"],
      "smtpd_recipient_restrictions": ["permit"],
    },
    stage: "recipient",
    facts: { to: "PostMaster@ours.example" },
    expect: "permit",
  },
  {
    does: "postmaster with an extension is not exempt (Postfix matches postmaster@ exactly)",
    params: {
      "mydestination": ["ours.example"],
      "local_recipient_maps": ["inline:{ carol=x }"],
      "smtpd_recipient_restrictions": ["permit"],
    },
    stage: "recipient",
    facts: { to: "postmaster+x@ours.example" },
    expect: `reject 550 5.1.1 <postmaster+x@ours.example>: ${UNKNOWN} in local recipient table`,
  },
  {
    does: "postmaster of a relay domain is checked like anyone (the exemption is local only)",
    params: RELAY,
    stage: "recipient",
    facts: { to: "postmaster@example.com" },
    expect: `reject 550 5.1.1 <postmaster@example.com>: ${UNKNOWN} in relay recipient table`,
  },
  {
    does: "postmaster of a local domain still defers when a virtual alias table cannot answer",
    params: {
      "mydestination": ["ours.example"],
      "local_recipient_maps": ["inline:{ carol=x }"],
      "virtual_alias_maps": [TEMP],
      "virtual_alias_domains": [],
      "smtpd_recipient_restrictions": ["permit"],
    },
    stage: "recipient",
    facts: { to: "mailer-daemon@ours.example" },
    expect: "defer 451 4.3.0 <mailer-daemon@ours.example>: Temporary lookup failure",
  },
];

for (const c of CASES) {
  Deno.test(`recipient validation: ${c.does}`, async () => {
    const { decision } = await decide(c);
    assert.equal(show(decision), c.expect);
  });
}

Deno.test("recipient validation: mydestination and relay_domains read /file entries", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "relay_domains");
    await Deno.writeTextFile(file, "# relayed\nfiled.example, other.example\n");
    const params = { "relay_domains": [file], "smtpd_reject_unlisted_recipient": false };
    const ok = await decide({ params, stage: "recipient", facts: { to: "x@filed.example" } });
    assert.equal(show(ok.decision), "permit");
    const no = await decide({ params, stage: "recipient", facts: { to: "x@notfiled.example" } });
    assert.equal(show(no.decision), "defer 454 4.7.1 <x@notfiled.example>: Relay access denied");
    // A missing file stops the start with the parameter's line.
    await assert.rejects(
      () =>
        decide({
          params: { "relay_domains": [join(dir, "missing")] },
          stage: "recipient",
          facts: {},
        }),
      /test\.toml:\d+: relay_domains: cannot read ".*missing"/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
