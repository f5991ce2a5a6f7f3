/**
 * Restriction semantics checked against Postfix's own regression scripts
 * (src/smtpd/smtpd_check.in, smtpd_nullmx.in, smtpd_check_dsn.in,
 * smtpd_error.in, smtpd_check_backup.in, smtpd_dns_filter.in and their .ref
 * files): our own cases, one per behaviour, run the way Postfix's driver
 * runs them (smtpd_delay_reject off, one stage at a time), with DNS from a
 * fake resolver. Each case names the item of issue 19 it covers.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  decide,
  type Facts,
  type Params,
  type Row,
  rows as rowsOf,
  show,
} from "./_policy_cases.ts";
import { ConfigError, resolveConfigText } from "../config/mod.ts";
import { fakeDns, type Zone } from "./_fake_dns.ts";
import { compilePolicy } from "./compile.ts";
import type { PolicyStage } from "./context.ts";

interface Case {
  item: number;
  does: string;
  params: Params;
  stage: PolicyStage;
  facts: Facts;
  expect: string | RegExp;
  dns?: Zone;
  warns?: RegExp[];
}

const rows = rowsOf<Case>;

const HELO = (name: string, text: string) =>
  `reject 501 5.5.2 <${name}>: Helo command rejected: ${text}`;
const BAD_IP = (name: string) => HELO(name, "invalid ip address");
const OBSOLETE_NAKED = /"permit_naked_ip_address" is obsolete/;

const ZONE: Zone = {
  "spike.example.com": { A: ["192.0.2.25"], MX: ["10 mx.example.net"] },
  "mx.example.net": { A: ["192.0.2.80"] },
  "nullmx.example": { MX: ["0 ."], A: ["192.0.2.81"] },
  "nullmx-only.example": { MX: ["0 ."] },
  "slow.example": { MX: "tempfail", A: "tempfail", AAAA: "tempfail" },
  "nomx.example.org": { A: ["192.0.2.90"] },
  "example.org": { NS: ["ns1.example.net"] },
  "ns1.example.net": { A: ["203.0.113.53"] },
  "client.example.net": { A: ["192.0.2.1"] },
  "good.example.net.rhswl.example": { A: ["127.0.0.2"] },
  "err.example.net.rhswl.example": { A: ["127.255.255.254"] },
  "slow.example.net.rhswl.example": { A: "tempfail" },
  "2.2.0.192.dnsbl.example": { A: ["127.0.0.2"] },
  "backup.example": { MX: ["10 primary.example.net", "20 mx.example.com"] },
  "lost.example": { MX: ["10 nowhere.example.net", "20 mx.example.com"] },
  "primary.example.net": { A: ["192.0.2.5"] },
};

const CASES: Case[] = [
  // 1. A bare IP address passes reject_invalid_helo_hostname ("back compat").
  ...rows({
    item: 1,
    params: { "smtpd_helo_restrictions": ["reject_invalid_helo_hostname"] },
    stage: "helo",
  }, [
    ["reject_invalid_helo_hostname accepts HELO 192.0.2.1", { helo: "192.0.2.1" }, "permit"],
    ["reject_invalid_helo_hostname accepts a bare IPv6 address", { helo: "2001:db8::1" }, "permit"],
    [
      "reject_invalid_helo_hostname still refuses foo bar",
      { helo: "foo bar" },
      HELO("foo bar", "Invalid name"),
    ],
    [
      "a bare IP HELO goes on to reject_unknown_helo_hostname (450 Host not found)",
      { helo: "192.0.2.1" },
      "defer 450 4.7.1 <192.0.2.1>: Helo command rejected: Host not found",
      {
        params: {
          "smtpd_helo_restrictions": [
            "reject_invalid_helo_hostname",
            "reject_unknown_helo_hostname",
          ],
        },
      },
    ],
  ]),
  // 2. Address literals as Postfix's valid_mailhost_literal judges them.
  ...rows({
    item: 2,
    params: { "smtpd_helo_restrictions": ["reject_invalid_helo_hostname"] },
    stage: "helo",
  }, [
    [
      "reject_invalid_helo_hostname refuses [::] without the IPv6: tag",
      { helo: "[::]" },
      BAD_IP("[::]"),
    ],
    ["reject_invalid_helo_hostname accepts [ipv6:::]", { helo: "[ipv6:::]" }, "permit"],
    [
      "reject_invalid_helo_hostname refuses [ipv6::::]",
      { helo: "[ipv6::::]" },
      BAD_IP("[ipv6::::]"),
    ],
    ["reject_invalid_helo_hostname accepts [192.0.2.1]", { helo: "[192.0.2.1]" }, "permit"],
    [
      "reject_invalid_helo_hostname refuses [0.255.255.255] (first octet 0)",
      { helo: "[0.255.255.255]" },
      BAD_IP("[0.255.255.255]"),
    ],
    [
      "reject_invalid_helo_hostname refuses [321.255.255.255]",
      { helo: "[321.255.255.255]" },
      BAD_IP("[321.255.255.255]"),
    ],
  ]),
  ...rows({
    item: 2,
    params: { "smtpd_helo_restrictions": ["reject_non_fqdn_helo_hostname"] },
    stage: "helo",
  }, [
    ["reject_non_fqdn_helo_hostname accepts [1.2.3.4]", { helo: "[1.2.3.4]" }, "permit"],
    ...[
      "[321.255.255.255]",
      "[0.255.255.255]",
      "[1.2.3.321]",
      "[1.2.3]",
      "[1.2.3.4.5]",
      "[1..2.3.4]",
      "[.1.2.3.4]",
      "[1.2.3.4.5.]",
    ]
      .map((
        h,
      ): Row<Case> => [
        `reject_non_fqdn_helo_hostname refuses ${h} as an invalid ip address`,
        { helo: h },
        BAD_IP(h),
      ]),
    [
      "reject_non_fqdn_helo_hostname refuses [::1] without the IPv6: tag",
      { helo: "[::1]" },
      BAD_IP("[::1]"),
    ],
    [
      "reject_non_fqdn_helo_hostname accepts [IPv6:2001:db8::1]",
      { helo: "[IPv6:2001:db8::1]" },
      "permit",
    ],
  ]),
  ...rows({
    item: 2,
    params: { "smtpd_helo_restrictions": ["reject_unknown_helo_hostname"] },
    stage: "helo",
  }, [
    [
      "reject_unknown_helo_hostname refuses [::] as an invalid ip address",
      { helo: "[::]" },
      BAD_IP("[::]"),
    ],
    [
      "reject_unknown_helo_hostname refuses [1.2.3] as an invalid ip address",
      { helo: "[1.2.3]" },
      BAD_IP("[1.2.3]"),
    ],
    [
      "reject_unknown_helo_hostname accepts a valid literal without DNS",
      { helo: "[192.0.2.1]" },
      "permit",
    ],
  ]),
  // 3. permit_naked_ip_address permits only a valid address.
  ...rows({
    item: 3,
    params: {
      "smtpd_helo_restrictions": ["permit_naked_ip_address", "reject_non_fqdn_helo_hostname"],
    },
    stage: "helo",
    warns: [OBSOLETE_NAKED],
  }, [
    ["permit_naked_ip_address permits 1.2.3.4", { helo: "1.2.3.4" }, "permit"],
    ...[
      "321.255.255.255",
      "1.2.3.321",
      "0.255.255.255",
      "1.2.3",
      "1.2.3.4.5",
      "1..2.3.4",
      ".1.2.3.4",
      "1.2.3.4.5.",
      "::1",
    ]
      .map((
        h,
      ): Row<Case> => [
        `permit_naked_ip_address refuses ${h} (501 invalid ip address)`,
        { helo: h },
        BAD_IP(h),
      ]),
    [
      "permit_naked_ip_address leaves [1.2.3.4] to the next restriction",
      { helo: "[1.2.3.4]" },
      "permit",
    ],
  ]),
  // 4. reject_unknown_client_hostname answers 450 at once; the others keep defer_if_permit.
  ...rows({ item: 4, params: {}, stage: "client" }, [
    [
      "reject_unknown_client_hostname answers 450 at a temporary failure before a later reject",
      { client: "unknown[192.0.2.1]", nameStatus: "tempfail" },
      "defer 450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.1]",
      { params: { "smtpd_client_restrictions": ["reject_unknown_client_hostname", "reject"] } },
    ],
    [
      "reject_unknown_reverse_client_hostname answers 450 at a temporary failure before a later reject",
      { client: "unknown[192.0.2.1]", nameStatus: "tempfail" },
      "defer 450 4.7.1 Client host rejected: cannot find your reverse hostname, [192.0.2.1]",
      {
        params: {
          "smtpd_client_restrictions": ["reject_unknown_reverse_client_hostname", "reject"],
        },
      },
    ],
    [
      "reject_unknown_client_hostname uses 4.7.25 (RFC 7372) for an unknown client",
      { client: "unknown[192.0.2.1]" },
      "defer 450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.1]",
      { params: { "smtpd_client_restrictions": ["reject_unknown_client_hostname"] } },
    ],
  ]),
  ...rows({ item: 4, params: {}, stage: "helo", dns: ZONE }, [
    [
      "reject_unknown_helo_hostname keeps defer_if_permit: a later reject wins",
      { helo: "slow.example" },
      "reject 554 5.7.1 <slow.example>: Helo command rejected: Access denied",
      { params: { "smtpd_helo_restrictions": ["reject_unknown_helo_hostname", "reject"] } },
    ],
  ]),
  ...rows({ item: 4, params: {}, stage: "sender", dns: ZONE }, [
    [
      "reject_unknown_sender_domain keeps defer_if_permit: a later reject wins",
      { from: "u@slow.example" },
      "reject 554 5.7.1 <u@slow.example>: Sender address rejected: Access denied",
      { params: { "smtpd_sender_restrictions": ["reject_unknown_sender_domain", "reject"] } },
    ],
  ]),
  // 5. reject_unknown_address is the sender-domain check.
  ...rows({
    item: 5,
    params: { "smtpd_sender_restrictions": ["reject_unknown_address"] },
    stage: "sender",
    dns: ZONE,
    warns: [/"reject_unknown_address" is obsolete; use "reject_unknown_sender_domain"/],
  }, [
    [
      "reject_unknown_address accepts a sender domain that exists",
      { from: "u@spike.example.com" },
      "permit",
    ],
    [
      "reject_unknown_address defers a sender domain without records",
      { from: "u@nx.example" },
      "defer 450 4.1.8 <u@nx.example>: Sender address rejected: Domain not found",
    ],
  ]),
  // 6. Null MX (RFC 7505).
  ...rows({
    item: 6,
    params: { "smtpd_sender_restrictions": ["reject_unknown_sender_domain"] },
    stage: "sender",
    dns: ZONE,
  }, [
    [
      "reject_unknown_sender_domain refuses a null MX sender domain with 550 5.7.27",
      { from: "u@nullmx.example" },
      "reject 550 5.7.27 <u@nullmx.example>: Sender address rejected: Domain nullmx.example does not accept mail (nullMX)",
    ],
    [
      "reject_unknown_sender_domain refuses a null MX without A records with 550 5.7.27",
      { from: "u@nullmx-only.example" },
      /^reject 550 5\.7\.27 <u@nullmx-only\.example>: Sender address rejected: Domain nullmx-only\.example does not accept mail \(nullMX\)$/,
    ],
  ]),
  ...rows({
    item: 6,
    params: { "smtpd_recipient_restrictions": ["reject_unknown_recipient_domain"] },
    stage: "recipient",
    dns: ZONE,
  }, [
    [
      "reject_unknown_recipient_domain refuses a null MX recipient domain with 556 5.1.10",
      { to: "u@nullmx.example" },
      "reject 556 5.1.10 <u@nullmx.example>: Recipient address rejected: Domain nullmx.example does not accept mail (nullMX)",
    ],
  ]),
  ...rows({
    item: 6,
    params: { "smtpd_helo_restrictions": ["reject_unknown_helo_hostname"] },
    stage: "helo",
    dns: ZONE,
  }, [
    ["reject_unknown_helo_hostname accepts a host name with a null MX", {
      helo: "nullmx-only.example",
    }, "permit"],
  ]),
  // 7. A bare type:table is the implied check_<stage>_access.
  ...rows({ item: 7, params: {}, stage: "client" }, [
    [
      "a bare table in smtpd_client_restrictions looks up the client",
      { client: "h.bad.example[192.0.2.1]" },
      "reject 554 5.7.1 <h.bad.example[192.0.2.1]>: Client host rejected: match bad.example",
      {
        params: { "smtpd_client_restrictions": ["inline:{ {bad.example=554 match bad.example} }"] },
      },
    ],
    [
      "a bare table in smtpd_client_restrictions looks up the client address",
      { client: "unknown[203.0.113.9]" },
      "reject 554 5.7.1 <unknown[203.0.113.9]>: Client host rejected: Access denied",
      { params: { "smtpd_client_restrictions": ["inline:{ 203.0.113=REJECT }"] } },
    ],
    [
      "a bare table in smtpd_helo_restrictions looks up the HELO name",
      { helo: "x.bad.example" },
      "reject 554 5.7.1 <x.bad.example>: Helo command rejected: Access denied",
      { stage: "helo", params: { "smtpd_helo_restrictions": ["inline:{ bad.example=REJECT }"] } },
    ],
    [
      "a bare table in smtpd_sender_restrictions looks up the sender",
      { from: "u@bad.example" },
      "reject 554 5.7.1 <u@bad.example>: Sender address rejected: Access denied",
      {
        stage: "sender",
        params: { "smtpd_sender_restrictions": ["inline:{ bad.example=REJECT }"] },
      },
    ],
    [
      "a bare table in smtpd_recipient_restrictions looks up the recipient",
      { to: "u@bad.example" },
      "reject 554 5.7.1 <u@bad.example>: Recipient address rejected: Access denied",
      {
        stage: "recipient",
        params: { "smtpd_recipient_restrictions": ["inline:{ bad.example=REJECT }"] },
      },
    ],
    [
      "a bare table in a restriction class takes the keys of the list that calls it",
      { helo: "x.bad.example" },
      "reject 554 5.7.1 <x.bad.example>: Helo command rejected: Access denied",
      {
        stage: "helo",
        params: {
          "restriction_classes": ["strict"],
          "strict": ["inline:{ bad.example=REJECT }"],
          "smtpd_helo_restrictions": ["strict"],
        },
      },
    ],
  ]),
  // 9. Enhanced status codes from table text fitted to what is refused (smtpd_dsn_fix).
  ...[
    [
      "client",
      { client: "h.dsn.example[192.0.2.1]" },
      "4.1.1",
      "554 5.0.0 <h.dsn.example[192.0.2.1]>: Client host rejected: reject",
    ],
    [
      "helo",
      { helo: "h.dsn.example" },
      "4.1.1",
      "554 5.0.0 <h.dsn.example>: Helo command rejected: reject",
    ],
    [
      "sender",
      { from: "u@dsn.example" },
      "4.1.1",
      "554 5.1.7 <u@dsn.example>: Sender address rejected: reject",
    ],
    [
      "sender",
      { from: "u@dsn.example" },
      "4.1.2",
      "554 5.1.8 <u@dsn.example>: Sender address rejected: reject",
    ],
    [
      "sender",
      { from: "u@dsn.example" },
      "4.1.5",
      "554 5.1.0 <u@dsn.example>: Sender address rejected: reject",
    ],
    [
      "recipient",
      { to: "u@dsn.example" },
      "4.1.1",
      "554 5.1.1 <u@dsn.example>: Recipient address rejected: reject",
    ],
    [
      "recipient",
      { to: "u@dsn.example" },
      "4.1.7",
      "554 5.1.3 <u@dsn.example>: Recipient address rejected: reject",
    ],
    [
      "recipient",
      { to: "u@dsn.example" },
      "4.1.8",
      "554 5.1.2 <u@dsn.example>: Recipient address rejected: reject",
    ],
    [
      "helo",
      { helo: "h.dsn.example" },
      "4.4.0",
      "554 5.4.0 <h.dsn.example>: Helo command rejected: reject",
    ],
  ].map(([stage, facts, dsn, expect]): Case => ({
    item: 9,
    does: `a table's ${dsn} in a ${stage} refusal is sent as ${(expect as string).split(" ")[1]}`,
    params: {
      [`smtpd_${stage}_restrictions`]: [
        `check_${stage}_access inline:{ {dsn.example=reject ${dsn} reject} }`,
      ],
    },
    stage: stage as PolicyStage,
    facts: facts as Facts,
    expect: `reject ${expect}`,
  })),
  ...rows({
    item: 9,
    params: { "defer_code": 444, "smtpd_helo_restrictions": ["defer"] },
    stage: "helo",
  }, [
    [
      "defer answers 4.3.2",
      { helo: "foobar" },
      "defer 444 4.3.2 <foobar>: Helo command rejected: Try again later",
    ],
  ]),
  // 10. check_relay_domains names the recipient.
  ...rows({
    item: 10,
    params: { "smtpd_recipient_restrictions": ["check_relay_domains"] },
    stage: "recipient",
    warns: [/"check_relay_domains" is obsolete/],
  }, [
    [
      "check_relay_domains says Recipient address rejected: Relay access denied",
      { client: "foo[203.0.113.5]", to: "foo@other.example" },
      "reject 554 5.7.1 <foo@other.example>: Recipient address rejected: Relay access denied",
    ],
  ]),
  // 11. RCPT TO:<postmaster> is accepted before any restriction.
  ...rows({
    item: 11,
    params: { "smtpd_recipient_restrictions": ["reject_non_fqdn_recipient", "reject"] },
    stage: "recipient",
  }, [
    ["an unqualified postmaster is accepted before the recipient restrictions", {
      to: "postmaster",
    }, "permit"],
    ["an unqualified PostMaster is accepted too (any case)", { to: "PostMaster" }, "permit"],
    ["VRFY postmaster is accepted too", { to: "postmaster" }, "permit", { stage: "vrfy" }],
    [
      "postmaster@domain gets the restrictions",
      { to: "postmaster@other.example" },
      "reject 554 5.7.1 <postmaster@other.example>: Recipient address rejected: Access denied",
    ],
    [
      "with smtpd_delay_reject, an unqualified postmaster skips the client restrictions too",
      { to: "postmaster" },
      "permit",
      { params: { "smtpd_delay_reject": true, "smtpd_client_restrictions": ["reject"] } },
    ],
  ]),
  // 12. Restrictions Postfix's tests use.
  ...rows({ item: 12, params: {}, stage: "helo", dns: ZONE }, [
    [
      "check_helo_mx_access refuses a HELO name whose MX host is listed",
      { helo: "spike.example.com" },
      "reject 554 5.7.1 <spike.example.com>: Helo command rejected: ns or mx server",
      {
        params: {
          "smtpd_helo_restrictions": [
            "check_helo_mx_access inline:{ {mx.example.net=reject ns or mx server} }",
          ],
        },
      },
    ],
    [
      "check_helo_a_access refuses a HELO name whose address is in a listed network",
      { helo: "spike.example.com" },
      "reject 554 5.7.1 <spike.example.com>: Helo command rejected: Access denied",
      { params: { "smtpd_helo_restrictions": ["check_helo_a_access inline:{ 192.0.2=REJECT }"] } },
    ],
    [
      "check_helo_mx_access with OK in the table answers 451 4.3.5 (allowlisting is not allowed)",
      { helo: "spike.example.com" },
      "defer 451 4.3.5 Server configuration error",
      {
        params: {
          "smtpd_helo_restrictions": ["check_helo_mx_access inline:{ mx.example.net=OK }"],
        },
        warns: [
          /returns OK for spike\.example\.com/,
          /not allowed for security reasons/,
          /use DUNNO instead of OK/,
        ],
      },
    ],
  ]),
  ...rows({ item: 12, params: {}, stage: "sender", dns: ZONE }, [
    [
      "check_sender_mx_access takes a domain without MX records as its own MX host",
      { from: "u@noMX.example.org" },
      "reject 554 5.7.1 <u@noMX.example.org>: Sender address rejected: Access denied",
      {
        params: {
          "smtpd_sender_restrictions": ["check_sender_mx_access inline:{ 192.0.2.90=REJECT }"],
        },
      },
    ],
    [
      "check_sender_mx_access checks nothing for a null MX",
      { from: "u@nullmx.example" },
      "permit",
      {
        params: {
          "smtpd_sender_restrictions": ["check_sender_mx_access inline:{ 192.0.2=REJECT }"],
        },
      },
    ],
    [
      "check_sender_mx_access skips the null sender",
      { from: "" },
      "permit",
      {
        params: {
          "smtpd_sender_restrictions": ["check_sender_mx_access inline:{ 192.0.2=REJECT }"],
        },
      },
    ],
    [
      "check_sender_ns_access looks up the parent domain's name servers",
      { from: "u@sub.example.org" },
      "reject 554 5.7.1 <u@sub.example.org>: Sender address rejected: bad dns",
      {
        params: {
          "smtpd_sender_restrictions": [
            "check_sender_ns_access inline:{ {ns1.example.net=REJECT bad dns} }",
          ],
        },
      },
    ],
    [
      "check_sender_ns_access looks up the name servers' addresses",
      { from: "u@example.org" },
      "reject 554 5.7.1 <u@example.org>: Sender address rejected: Access denied",
      {
        params: {
          "smtpd_sender_restrictions": ["check_sender_ns_access inline:{ 203.0.113=REJECT }"],
        },
      },
    ],
  ]),
  ...rows({ item: 12, params: {}, stage: "client", dns: ZONE }, [
    [
      "check_client_a_access looks up the client name's addresses",
      {},
      "reject 554 5.7.1 <client.example.net[192.0.2.1]>: Client host rejected: Access denied",
      {
        params: {
          "smtpd_client_restrictions": ["check_client_a_access inline:{ 192.0.2.1=REJECT }"],
        },
      },
    ],
    [
      "check_client_a_access skips an unknown client",
      { client: "unknown[192.0.2.1]" },
      "permit",
      {
        params: {
          "smtpd_client_restrictions": ["check_client_a_access inline:{ 192.0.2.1=REJECT }"],
        },
      },
    ],
    [
      "permit_rhswl_client permits a client whose name is listed",
      { client: "good.example.net[192.0.2.7]" },
      "permit",
      { params: { "smtpd_client_restrictions": ["permit_rhswl_client rhswl.example", "reject"] } },
    ],
    [
      "permit_rhswl_client passes on an unlisted client",
      { client: "other.example.net[192.0.2.7]" },
      "reject 554 5.7.1 <other.example.net[192.0.2.7]>: Client host rejected: Access denied",
      { params: { "smtpd_client_restrictions": ["permit_rhswl_client rhswl.example", "reject"] } },
    ],
    [
      "permit_rhswl_client takes a 127.255.255.x answer for a list error, not a listing",
      { client: "err.example.net[192.0.2.7]" },
      "reject 554 5.7.1 <err.example.net[192.0.2.7]>: Client host rejected: Access denied",
      { params: { "smtpd_client_restrictions": ["permit_rhswl_client rhswl.example", "reject"] } },
    ],
    [
      "permit_rhswl_client turns a later reject into 450 after a temporary failure",
      { client: "slow.example.net[192.0.2.7]" },
      "defer 450 4.7.1 <slow.example.net>: Client host rejected: Service unavailable",
      { params: { "smtpd_client_restrictions": ["permit_rhswl_client rhswl.example", "reject"] } },
    ],
    [
      "smtpd_dns_reply_filter drops a DNSBL answer (IGNORE)",
      { client: "x[192.0.2.2]" },
      "permit",
      {
        params: {
          "smtpd_client_restrictions": ["reject_rbl_client dnsbl.example"],
          "smtpd_dns_reply_filter": [
            "inline:{ {2.2.0.192.dnsbl.example. 0 IN A 127.0.0.2=IGNORE} }",
          ],
        },
      },
    ],
    [
      "smtpd_dns_reply_filter leaves other records alone",
      { client: "x[192.0.2.2]" },
      "reject 554 5.7.1 Service unavailable; Client host [192.0.2.2] blocked using dnsbl.example",
      {
        params: {
          "smtpd_client_restrictions": ["reject_rbl_client dnsbl.example"],
          "smtpd_dns_reply_filter": [
            "inline:{ {2.2.0.192.dnsbl.example. 0 IN A 127.0.0.3=IGNORE} }",
          ],
        },
      },
    ],
  ]),
  ...rows({ item: 12, params: {}, stage: "recipient", dns: ZONE }, [
    [
      "check_recipient_mx_access takes an address literal as its own MX host",
      { to: "u@[192.0.2.9]" },
      "reject 554 5.7.1 <u@[192.0.2.9]>: Recipient address rejected: Access denied",
      {
        params: {
          "smtpd_recipient_restrictions": ["check_recipient_mx_access inline:{ 192.0.2.9=REJECT }"],
        },
      },
    ],
    [
      "permit_rhswl_client never allowlists relaying at RCPT",
      { client: "good.example.net[192.0.2.7]", to: "u@other.example" },
      "reject 554 5.7.1 <u@other.example>: Relay access denied",
      {
        params: {
          "smtpd_recipient_restrictions": [
            "permit_rhswl_client rhswl.example",
            "reject_unauth_destination",
          ],
        },
      },
    ],
    [
      "smtpd_dns_reply_filter: every MX record dropped makes reject_unknown_recipient_domain skip the domain",
      { to: "u@nullmx-only.example" },
      "permit",
      {
        params: {
          "smtpd_recipient_restrictions": ["reject_unknown_recipient_domain"],
          "smtpd_dns_reply_filter": ["inline:{ {nullmx-only.example. 0 IN MX 0 .=IGNORE} }"],
        },
        warns: [
          /nullmx-only\.example: MX or address lookup error: DNS reply filter drops all results/,
        ],
      },
    ],
  ]),
  ...rows({
    item: 12,
    params: { "smtpd_recipient_restrictions": ["permit_mx_backup", "reject"] },
    stage: "recipient",
    dns: ZONE,
  }, [
    ["permit_mx_backup permits a backup MX domain without permit_mx_backup_networks", {
      to: "u@backup.example",
    }, "permit"],
    [
      "permit_mx_backup_networks refuses when a primary MX host is outside the networks",
      { to: "u@backup.example" },
      "reject 554 5.7.1 <u@backup.example>: Recipient address rejected: Access denied",
      { params: { "permit_mx_backup_networks": ["192.0.2.4/32"] } },
    ],
    [
      "permit_mx_backup_networks permits when every primary MX address is inside",
      { to: "u@backup.example" },
      "permit",
      { params: { "permit_mx_backup_networks": ["192.0.2.5/32"] } },
    ],
    [
      "permit_mx_backup_networks turns a later reject into 450 when a primary MX host has no address",
      { to: "u@lost.example" },
      "defer 450 4.4.4 <u@lost.example>: Recipient address rejected: Unable to look up host nowhere.example.net as mail exchanger",
      { params: { "permit_mx_backup_networks": ["192.0.2.0/24"] } },
    ],
  ]),
];

for (const c of CASES) {
  Deno.test(`Postfix parity, item ${c.item}: ${c.does}`, async () => {
    const { decision, warnings } = await decide(c);
    const got = show(decision);
    if (typeof c.expect === "string") assert.equal(got, c.expect);
    else assert.match(got, c.expect);
    const expected = c.warns ?? [];
    assert.equal(warnings.length, expected.length, `warnings:\n${warnings.join("\n")}`);
    for (const re of expected) assert.ok(warnings.some((w) => re.test(w)), `no warning ${re}`);
  });
}

Deno.test("Postfix parity: test names are unique", () => {
  const names = CASES.map((c) => `${c.item} ${c.does}`);
  assert.deepEqual(names.filter((n, i) => names.indexOf(n) !== i), []);
});

// 8. mynetworks with host bits set stops the start, with file and line
// (mynetworks is compiled, once, with the policy).
function compileMynetworksOf(loaded: Parameters<typeof compilePolicy>[0]): void {
  compilePolicy(loaded, { dns: fakeDns({}), warn: () => {} });
}

Deno.test("Postfix parity, item 8: mynetworks with host bits set is a start-up error with file:line", () => {
  const loaded = resolveConfigText('\nmynetworks = ["127.0.0.0/8", "168.100.3.1/27"]', {
    systemHostname: "mx.example.com",
    file: "test.toml",
  });
  assert.throws(() => compileMynetworksOf(loaded), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(
      err.message,
      'test.toml:2: mynetworks: non-null host address bits in "168.100.3.1/27", perhaps you should use "168.100.3.0/27" instead',
    );
    return true;
  });
});

Deno.test("Postfix parity, item 8: an IPv6 mynetworks entry with host bits set is refused too", () => {
  const loaded = resolveConfigText('mynetworks = ["[2001:db8::1]/64"]', {
    systemHostname: "mx.example.com",
    file: "test.toml",
  });
  assert.throws(() => compileMynetworksOf(loaded), /perhaps you should use "\[2001:db8::\]\/64"/);
});

Deno.test("Postfix parity, item 12: smtpd_dns_reply_filter refuses a value other than IGNORE at start, with file:line", () => {
  const loaded = resolveConfigText('\n\nsmtpd_dns_reply_filter = ["inline:{ x=oops }"]', {
    systemHostname: "mx.example.com",
    file: "test.toml",
  });
  assert.throws(
    () => compilePolicy(loaded, { dns: fakeDns({}), warn: () => {} }),
    /^ConfigError: test\.toml:3: smtpd_dns_reply_filter: inline:\{ x=oops \}: unknown DNS filter action "oops"/,
  );
});
