import assert from "node:assert/strict";
import { decide, type Facts, type Params, show } from "../_policy_cases.ts";
import type { PolicyStage } from "../context.ts";

interface Case {
  does: string;
  params: Params;
  stage: PolicyStage;
  facts: Facts;
  expect: string;
}

const RCPT = (...items: string[]): Params => ({ "smtpd_recipient_restrictions": items });
const BOUNCE = RCPT("reject_multi_recipient_bounce");
const MULTI = "Multi-recipient bounce";

const CASES: Case[] = [
  {
    does: "defer_unauth_destination answers 454 4.7.1 for a stranger's relay attempt",
    params: RCPT("defer_unauth_destination"),
    stage: "recipient",
    facts: { to: "u@other.example" },
    expect: "defer 454 4.7.1 <u@other.example>: Relay access denied",
  },
  {
    does: "defer_unauth_destination passes our relay domain",
    params: RCPT("defer_unauth_destination"),
    stage: "recipient",
    facts: { to: "u@example.com" },
    expect: "permit",
  },
  {
    does: "defer_unauth_destination refuses source-routed tricks to our domain",
    params: RCPT("defer_unauth_destination"),
    stage: "recipient",
    facts: { to: "u%other.example@example.com" },
    expect: "defer 454 4.7.1 <u%other.example@example.com>: Relay access denied",
  },
  {
    does: "defer_unauth_destination follows relay_domains_reject_code less 100",
    params: { ...RCPT("defer_unauth_destination"), "relay_domains_reject_code": 550 },
    stage: "recipient",
    facts: { to: "u@other.example" },
    expect: "defer 450 4.7.1 <u@other.example>: Relay access denied",
  },
  {
    does: "defer_unauth_destination keeps a 4xx relay_domains_reject_code as it is",
    params: { ...RCPT("defer_unauth_destination"), "relay_domains_reject_code": 451 },
    stage: "recipient",
    facts: { to: "u@other.example" },
    expect: "defer 451 4.7.1 <u@other.example>: Relay access denied",
  },
  {
    does: "reject_multi_recipient_bounce lets a bounce's first recipient in",
    params: BOUNCE,
    stage: "recipient",
    facts: { from: "", to: "u@example.com", command: "RCPT", recipients: 0 },
    expect: "permit",
  },
  {
    does: "reject_multi_recipient_bounce refuses a bounce's second recipient at RCPT",
    params: BOUNCE,
    stage: "recipient",
    facts: { from: "", to: "v@example.com", command: "RCPT", recipients: 1 },
    expect: `reject 550 5.5.3 <v@example.com>: Recipient address rejected: ${MULTI}`,
  },
  {
    does:
      "reject_multi_recipient_bounce in the sender list (delayed to RCPT) names the null sender",
    params: {
      "smtpd_delay_reject": true,
      "smtpd_sender_restrictions": ["reject_multi_recipient_bounce"],
    },
    stage: "recipient",
    facts: { from: "", to: "v@example.com", command: "RCPT", recipients: 1 },
    expect: `reject 550 5.5.3 <>: Sender address rejected: ${MULTI}`,
  },
  {
    does: "reject_multi_recipient_bounce leaves a real sender alone",
    params: BOUNCE,
    stage: "recipient",
    facts: { from: "a@b.example", to: "v@example.com", command: "RCPT", recipients: 5 },
    expect: "permit",
  },
  {
    does: "reject_multi_recipient_bounce at DATA passes one recipient",
    params: { "smtpd_sender_restrictions": ["reject_multi_recipient_bounce"] },
    stage: "sender",
    facts: { from: "", command: "DATA", recipients: 1 },
    expect: "permit",
  },
  {
    does: "reject_multi_recipient_bounce at DATA refuses two recipients",
    params: { "smtpd_sender_restrictions": ["reject_multi_recipient_bounce"] },
    stage: "sender",
    facts: { from: "", command: "DATA", recipients: 2 },
    expect: `reject 550 5.5.3 <>: Sender address rejected: ${MULTI}`,
  },
  {
    does: "multi_recipient_bounce_reject_code 450 makes it temporary",
    params: { ...BOUNCE, "multi_recipient_bounce_reject_code": 450 },
    stage: "recipient",
    facts: { from: "", to: "v@example.com", command: "RCPT", recipients: 1 },
    expect: `defer 450 4.5.3 <v@example.com>: Recipient address rejected: ${MULTI}`,
  },
  {
    does: "check_reverse_client_mx_access looks at the unverified name's MX hosts",
    params: {
      "smtpd_client_restrictions": [
        "check_reverse_client_mx_access inline:{ mx.spam.example=REJECT bad MX }",
      ],
    },
    stage: "client",
    facts: { client: "unknown[192.0.2.9]", reverseName: "spam.example" },
    expect: "reject 554 5.7.1 <spam.example>: Unverified Client host rejected: bad MX",
  },
  {
    does: "check_reverse_client_a_access looks at the unverified name's addresses",
    params: {
      "smtpd_client_restrictions": ["check_reverse_client_a_access inline:{ 203.0.113.7=REJECT }"],
    },
    stage: "client",
    facts: { client: "unknown[192.0.2.9]", reverseName: "mx.spam.example" },
    expect: "reject 554 5.7.1 <mx.spam.example>: Unverified Client host rejected: Access denied",
  },
  {
    does: "check_reverse_client_ns_access skips an unknown unverified name",
    params: {
      "smtpd_client_restrictions": ["check_reverse_client_ns_access inline:{ ns.example=REJECT }"],
    },
    stage: "client",
    facts: { client: "unknown[192.0.2.9]", reverseName: "unknown" },
    expect: "permit",
  },
];

const ZONE = {
  "spam.example": { MX: ["10 mx.spam.example"], NS: ["ns.example"] },
  "mx.spam.example": { A: ["203.0.113.7"] },
};

for (const c of CASES) {
  Deno.test(`envelope restrictions: ${c.does}`, async () => {
    const { decision, warnings } = await decide({ ...c, dns: ZONE });
    assert.equal(show(decision), c.expect);
    assert.deepEqual(warnings, []);
  });
}
