/**
 * The DNS list restrictions checked against Postfix's own regression
 * scripts: src/smtpd/smtpd_dnswl.in (permit_dnswl_client,
 * permit_rhswl_client, numeric top-level domains) and the RHSBL part of
 * src/smtpd/smtpd_exp.in, with their .ref answers. Postfix's script runs
 * smtpd_exp with an rbl_reply_maps template; here the answer is that of
 * Postfix's default_rbl_reply for the same listing (rbl_reply_maps is not
 * built). DNS comes from a fake resolver holding what porcupine.org's test
 * zones answer.
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
import type { Zone } from "./_fake_dns.ts";
import type { PolicyStage } from "./context.ts";

interface Case {
  does: string;
  params: Params;
  stage: PolicyStage;
  facts: Facts;
  expect: string;
}

const rows = (shared: Omit<Case, "does" | "facts" | "expect">, list: Row<Case>[]) =>
  rowsOf<Case>(shared, list);

/** Postfix's test configuration (smtpd_dnswl.in, smtpd_exp.in). */
const PORCUPINE: Params = {
  "mynetworks": ["127.0.0.0/8", "168.100.3.0/28"],
  "mydestination": ["porcupine.org"],
  "relay_domains": ["porcupine.org"],
};

const ZONE: Zone = {
  // wild.porcupine.org answers every name; porcupine.org itself lists nothing.
  "2.3.100.168.wild.porcupine.org": { A: ["127.0.0.2"] },
  "example.tld.dnswl.porcupine.org": { A: ["127.0.0.2"] },
  "example.tld.rhsbl.porcupine.org": { A: ["127.0.0.2"], TXT: ["RHSBL test"] },
};

const SPIKE = "spike.porcupine.org[168.100.3.2]";
const DENIED = `reject 554 5.7.1 <${SPIKE}>: Client host rejected: Access denied`;
const RELAY = (to: string) => `reject 554 5.7.1 <${to}>: Relay access denied`;
const RHSBL = (what: string) =>
  `reject 554 5.7.1 Service unavailable; ${what} blocked using rhsbl.porcupine.org; RHSBL test`;

const CASES: Case[] = [
  ...rows({ params: PORCUPINE, stage: "client" }, [
    ["smtpd_dnswl: a DNSWL listing overrides reject", { client: SPIKE }, "permit", {
      params: { "smtpd_client_restrictions": ["permit_dnswl_client wild.porcupine.org", "reject"] },
    }],
    ["smtpd_dnswl: an unlisted client goes on to reject", { client: SPIKE }, DENIED, {
      params: { "smtpd_client_restrictions": ["permit_dnswl_client porcupine.org", "reject"] },
    }],
    ["smtpd_dnswl: a non-allowlisted client name is rejected", { client: SPIKE }, DENIED, {
      params: {
        "smtpd_client_restrictions": ["permit_rhswl_client dnswl.porcupine.org", "reject"],
      },
    }],
    [
      "smtpd_dnswl: an allowlisted client name is accepted",
      {
        client: "example.tld[168.100.3.2]",
      },
      "permit",
      {
        params: {
          "smtpd_client_restrictions": ["permit_rhswl_client dnswl.porcupine.org", "reject"],
        },
      },
    ],
  ]),
  ...rows({
    params: {
      ...PORCUPINE,
      "smtpd_recipient_restrictions": [
        "permit_dnswl_client wild.porcupine.org",
        "reject_unauth_destination",
      ],
    },
    stage: "recipient",
  }, [
    ["smtpd_dnswl: a DNSWL listing does not override reject_unauth_destination", {
      client: SPIKE,
      to: "rname@rdomain",
    }, RELAY("rname@rdomain")],
    ["smtpd_dnswl: a DNSWL listing permits an authorized destination", {
      client: SPIKE,
      to: "wietse@porcupine.org",
    }, "permit"],
  ]),
  ...rows({
    params: {
      ...PORCUPINE,
      "smtpd_recipient_restrictions": [
        "permit_rhswl_client dnswl.porcupine.org",
        "reject_unauth_destination",
      ],
    },
    stage: "recipient",
  }, [
    ["smtpd_dnswl: an RHSWL listing does not permit relaying to wietse@12345", {
      client: "example.tld[168.100.3.2]",
      to: "wietse@12345",
    }, RELAY("wietse@12345")],
    ["smtpd_dnswl: nor to wietse@porcupine.12345", {
      client: "example.tld[168.100.3.2]",
      to: "wietse@porcupine.12345",
    }, RELAY("wietse@porcupine.12345")],
    ["smtpd_dnswl: an RHSWL listing permits 12345.porcupine.org", {
      client: "example.tld[168.100.3.2]",
      to: "wietse@12345.porcupine.org",
    }, "permit"],
  ]),
  ...rows({ params: PORCUPINE, stage: "recipient" }, [
    [
      "smtpd_exp: reject_rhsbl_sender refuses sname@example.tld",
      {
        client: SPIKE,
        helo: "foobar",
        from: "sname@example.tld",
        to: "rname@rdomain",
      },
      RHSBL("Sender address [sname@example.tld]"),
      {
        params: { "smtpd_recipient_restrictions": ["reject_rhsbl_sender rhsbl.porcupine.org"] },
      },
    ],
    [
      "smtpd_exp: reject_rhsbl_sender passes sname@sdomain",
      {
        client: SPIKE,
        helo: "foobar",
        from: "sname@sdomain",
        to: "rname@rdomain",
      },
      "permit",
      {
        params: { "smtpd_recipient_restrictions": ["reject_rhsbl_sender rhsbl.porcupine.org"] },
      },
    ],
    [
      "smtpd_exp: reject_rhsbl_client refuses the client example.tld",
      {
        client: "example.tld[1.2.3.4]",
        helo: "foobar",
        from: "sname@sdomain",
        to: "rname@rdomain",
      },
      RHSBL("Client host [example.tld]"),
      {
        params: { "smtpd_recipient_restrictions": ["reject_rhsbl_client rhsbl.porcupine.org"] },
      },
    ],
    [
      "smtpd_exp: reject_rhsbl_recipient refuses rname@example.tld",
      {
        client: SPIKE,
        helo: "foobar",
        from: "sname@sdomain",
        to: "rname@example.tld",
      },
      RHSBL("Recipient address [rname@example.tld]"),
      {
        params: { "smtpd_recipient_restrictions": ["reject_rhsbl_recipient rhsbl.porcupine.org"] },
      },
    ],
    [
      "smtpd_exp: reject_rhsbl_helo refuses HELO example.tld",
      {
        client: SPIKE,
        helo: "example.tld",
        from: "sname@sdomain",
        to: "rname@rdomain",
      },
      RHSBL("Helo command [example.tld]"),
      {
        params: { "smtpd_recipient_restrictions": ["reject_rhsbl_helo rhsbl.porcupine.org"] },
      },
    ],
  ]),
];

for (const c of CASES) {
  Deno.test(`Postfix parity (DNS lists): ${c.does}`, async () => {
    const { decision } = await decide({ ...c, dns: ZONE });
    assert.equal(show(decision), c.expect);
  });
}
