/**
 * The restriction lists and access tables side by side with a real
 * Postfix (Debian's 3.7): each group below is one configuration, given to
 * our daemon (TOML) and to one smtpd service of a private Postfix instance
 * (main.cf parameters through master.cf `-o`), with the same texthash:
 * tables. Each session's client bytes go to both, from the same loopback
 * address, one command at a time over a raw socket (Python), and the
 * replies after the greeting must be the ones written in the table. The
 * Postfix side is skipped when Postfix is not installed (or we are not
 * root); the expected replies are what Postfix 3.7 answered, except where
 * a case says `postfix:` (a difference we keep, see README "Answering as
 * Postfix answers"). The log lines of refusals and warnings are compared
 * too.
 */

import assert from "node:assert/strict";
import { makeWorkDir, startDaemon } from "./_harness.ts";
import { groupVerdicts, note, oursToml, RECORD, startGroups, talk } from "./_parity.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** One client session: lines sent one at a time after the greeting. */
interface Session {
  does: string;
  /** The client's loopback address. @default {"127.0.0.2"} */
  src?: string;
  lines: string[];
  /** The replies after the greeting, one per line (multi-line replies joined by \n). */
  expect: string[];
  /** Postfix's replies when they differ from ours on purpose. */
  postfix?: string[];
}

/** One configuration and the sessions run against it. */
interface Group {
  name: string;
  /**
   * main.cf parameters, Postfix's syntax; `%T/name` is the group's table
   * `name`; null leaves a parameter of BASE out.
   */
  params: Record<string, string | null>;
  /** Parameters for our side only (replacing or adding to params; null: left out). */
  ours?: Record<string, string | null>;
  /** texthash: tables: name → file text. */
  tables?: Record<string, string>;
  sessions: Session[];
}

/** HELO, MAIL, RCPT (each given) and QUIT. */
function env(from: string, to: string | string[], helo = "client.example"): string[] {
  const rcpts = typeof to === "string" ? [to] : to;
  return [`HELO ${helo}`, `MAIL FROM:${from}`, ...rcpts.map((r) => `RCPT TO:${r}`), "QUIT"];
}

/** A session sending one envelope from 127.0.0.2. */
function mail(
  does: string,
  from: string,
  to: string | string[],
  expect: string[],
  more: Partial<Session> & { helo?: string } = {},
): Session {
  return { does, lines: env(from, to, more.helo), expect, ...more };
}

const FROM = "<a@sender.example>";
const TO = "<u@mx.test.example>";
const HELO = "250 mx.test.example";
const MAIL_OK = "250 2.1.0 Ok";
const RCPT_OK = "250 2.1.5 Ok";
const BYE = "221 2.0.0 Bye";
const NEED_MAIL = "503 5.5.1 Error: need MAIL command";

/** Every group starts from these (relay to nowhere but our own domain). */
const BASE: Record<string, string> = {
  myhostname: "mx.test.example",
  mydestination: "mx.test.example",
  "relay_domains": "relay.example",
  mynetworks: "127.0.0.1/32",
  "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
  "smtpd_error_sleep_time": "0",
};

const GROUPS: Group[] = [
  {
    name: "sender-keys",
    params: {
      smtpd_sender_restrictions: "check_sender_access texthash:%T/senders",
      recipient_delimiter: "+",
    },
    tables: {
      senders: [
        "full@example.com REJECT full address",
        "ok@example.com OK",
        "dunno@example.com DUNNO",
        "example.com REJECT domain",
        "sub.example.net REJECT parent sub.example.net",
        "example.net REJECT parent example.net",
        "user@ REJECT user part",
        "ext@plus.example REJECT address without extension",
        "plus.example DUNNO",
        "<> REJECT null sender",
        "MiXeD@Case.Example REJECT case folded",
        '"a..b"@q.example REJECT quoted key',
        "a..b@q.example REJECT unquoted key",
        "c..d@q.example REJECT unquoted key only",
        "[192.0.2.1] REJECT address literal domain",
        "",
      ].join("\n"),
    },
    sessions: [
      mail("the full address", "<full@example.com>", TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <full@example.com>: Sender address rejected: full address",
        BYE,
      ]),
      mail("OK for the full address stops before the domain", "<ok@example.com>", TO, [
        HELO,
        MAIL_OK,
        RCPT_OK,
        BYE,
      ]),
      mail("DUNNO for the full address stops before the domain", "<dunno@example.com>", TO, [
        HELO,
        MAIL_OK,
        RCPT_OK,
        BYE,
      ]),
      mail("the domain", "<other@example.com>", TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <other@example.com>: Sender address rejected: domain",
        BYE,
      ]),
      mail("the nearest parent domain", "<a@deep.sub.example.net>", TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <a@deep.sub.example.net>: Sender address rejected: parent sub.example.net",
        BYE,
      ]),
      mail("a farther parent domain", "<a@x.example.net>", TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <a@x.example.net>: Sender address rejected: parent example.net",
        BYE,
      ]),
      mail("user@ after the domains", "<user@unlisted.example>", TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <user@unlisted.example>: Sender address rejected: user part",
        BYE,
      ]),
      mail("user+ext@domain finds user@domain", "<ext+tag@plus.example>", TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <ext+tag@plus.example>: Sender address rejected: address without extension",
        BYE,
      ]),
      mail("the null sender is <>", "<>", TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <>: Sender address rejected: null sender",
        BYE,
      ]),
      mail("keys and addresses are case folded", "<mixed@CASE.example>", TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <mixed@CASE.example>: Sender address rejected: case folded",
        BYE,
      ]),
      mail("a quoted local part: the quoted key first", '<"a..b"@q.example>', TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <a..b@q.example>: Sender address rejected: quoted key",
        BYE,
      ]),
      mail("a quoted local part: then the unquoted key", '<"c..d"@q.example>', TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <c..d@q.example>: Sender address rejected: unquoted key only",
        BYE,
      ]),
      mail("an address literal domain", "<u@[192.0.2.1]>", TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <u@[192.0.2.1]>: Sender address rejected: address literal domain",
        BYE,
      ]),
      mail("an unlisted address", "<a@unlisted.example>", TO, [HELO, MAIL_OK, RCPT_OK, BYE]),
    ],
  },
  {
    name: "values",
    params: {
      smtpd_sender_restrictions:
        "check_sender_access texthash:%T/values, check_sender_access texthash:%T/after",
      smtpd_restriction_classes: "myclass",
      myclass: "reject_non_fqdn_recipient, permit",
    },
    tables: {
      values: [
        "r1@v.example REJECT",
        "r2@v.example REJECT custom text",
        "d1@v.example DEFER",
        "d2@v.example DEFER try later",
        "n1@v.example 450 no enhanced code",
        "n2@v.example 550 5.7.9 with enhanced code",
        "n3@v.example 550 no enhanced code",
        "n4@v.example 550 4.7.1 enhanced code of the wrong class",
        "n5@v.example 450 5.7.1 enhanced code of the wrong class",
        "n6@v.example 550 5.1.1 address status",
        "w1@v.example WARN watch this",
        "dip@v.example DEFER_IF_PERMIT greylisted",
        "dir@v.example DEFER_IF_REJECT maybe",
        "dir2@v.example DEFER_IF_REJECT maybe",
        "l1@v.example permit_mynetworks, reject",
        "c1@v.example myclass",
        "ok@v.example OK",
        "",
      ].join("\n"),
      after: "dir@v.example REJECT later\n",
    },
    sessions: [
      mail("REJECT", "<r1@v.example>", TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <r1@v.example>: Sender address rejected: Access denied",
        BYE,
      ]),
      mail("REJECT text", "<r2@v.example>", TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <r2@v.example>: Sender address rejected: custom text",
        BYE,
      ]),
      mail("DEFER", "<d1@v.example>", TO, [
        HELO,
        MAIL_OK,
        "450 4.7.1 <d1@v.example>: Sender address rejected: Access denied",
        BYE,
      ]),
      mail("DEFER text", "<d2@v.example>", TO, [
        HELO,
        MAIL_OK,
        "450 4.7.1 <d2@v.example>: Sender address rejected: try later",
        BYE,
      ]),
      mail("4NN text", "<n1@v.example>", TO, [
        HELO,
        MAIL_OK,
        "450 4.7.1 <n1@v.example>: Sender address rejected: no enhanced code",
        BYE,
      ]),
      mail("5NN 5.x.y text", "<n2@v.example>", TO, [
        HELO,
        MAIL_OK,
        "550 5.7.9 <n2@v.example>: Sender address rejected: with enhanced code",
        BYE,
      ]),
      mail("5NN text", "<n3@v.example>", TO, [
        HELO,
        MAIL_OK,
        "550 5.7.1 <n3@v.example>: Sender address rejected: no enhanced code",
        BYE,
      ]),
      mail("5NN 4.x.y text", "<n4@v.example>", TO, [
        HELO,
        MAIL_OK,
        "550 5.7.1 <n4@v.example>: Sender address rejected: enhanced code of the wrong class",
        BYE,
      ]),
      mail("4NN 5.x.y text", "<n5@v.example>", TO, [
        HELO,
        MAIL_OK,
        "450 4.7.1 <n5@v.example>: Sender address rejected: enhanced code of the wrong class",
        BYE,
      ]),
      mail("5NN 5.1.1 for a sender", "<n6@v.example>", TO, [
        HELO,
        MAIL_OK,
        "550 5.1.7 <n6@v.example>: Sender address rejected: address status",
        BYE,
      ]),
      mail("WARN", "<w1@v.example>", TO, [HELO, MAIL_OK, RCPT_OK, BYE]),
      mail("DEFER_IF_PERMIT", "<dip@v.example>", TO, [
        HELO,
        MAIL_OK,
        "450 4.7.1 <dip@v.example>: Sender address rejected: greylisted",
        BYE,
      ]),
      mail("DEFER_IF_REJECT, then REJECT", "<dir@v.example>", TO, [
        HELO,
        MAIL_OK,
        "450 4.7.1 <dir@v.example>: Sender address rejected: maybe",
        BYE,
      ]),
      mail("DEFER_IF_REJECT, nothing rejects", "<dir2@v.example>", TO, [
        HELO,
        MAIL_OK,
        RCPT_OK,
        BYE,
      ]),
      mail("a restriction list as value", "<l1@v.example>", TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <l1@v.example>: Sender address rejected: Access denied",
        BYE,
      ]),
      mail("a restriction class as value", "<c1@v.example>", ["<u>", "<u@mx.test.example>"], [
        HELO,
        MAIL_OK,
        "504 5.5.2 <u>: Recipient address rejected: need fully-qualified address",
        RCPT_OK,
        BYE,
      ]),
      mail("OK", "<ok@v.example>", TO, [HELO, MAIL_OK, RCPT_OK, BYE]),
    ],
  },
  {
    name: "recipient-values",
    params: {
      smtpd_recipient_restrictions: "check_recipient_access texthash:%T/rcpts",
      recipient_delimiter: "+",
    },
    tables: {
      rcpts: [
        "wir@mx.test.example warn_if_reject, reject",
        "dip@mx.test.example defer_if_permit, permit",
        "dipr@mx.test.example defer_if_permit, reject",
        "dir@mx.test.example defer_if_reject, reject",
        "dirp@mx.test.example defer_if_reject, permit",
        "gen@mx.test.example reject",
        "def@mx.test.example defer",
        "nf@mx.test.example reject_non_fqdn_sender",
        "n6@mx.test.example 550 5.1.1 no such user",
        "n7@mx.test.example 450 4.1.8 odd code",
        "base@mx.test.example REJECT base address",
        "",
      ].join("\n"),
    },
    sessions: [
      mail("warn_if_reject reject", FROM, "<wir@mx.test.example>", [HELO, MAIL_OK, RCPT_OK, BYE]),
      mail("defer_if_permit, permit", FROM, "<dip@mx.test.example>", [
        HELO,
        MAIL_OK,
        "450 4.7.0 <dip@mx.test.example>: Recipient address rejected: defer_if_permit requested",
        BYE,
      ]),
      mail("defer_if_permit, reject", FROM, "<dipr@mx.test.example>", [
        HELO,
        MAIL_OK,
        "554 5.7.1 <dipr@mx.test.example>: Recipient address rejected: Access denied",
        BYE,
      ]),
      mail("defer_if_reject, reject", FROM, "<dir@mx.test.example>", [
        HELO,
        MAIL_OK,
        "450 4.7.0 <dir@mx.test.example>: Recipient address rejected: defer_if_reject requested",
        BYE,
      ]),
      mail("defer_if_reject, permit", FROM, "<dirp@mx.test.example>", [
        HELO,
        MAIL_OK,
        RCPT_OK,
        BYE,
      ]),
      mail("reject", FROM, "<gen@mx.test.example>", [
        HELO,
        MAIL_OK,
        "554 5.7.1 <gen@mx.test.example>: Recipient address rejected: Access denied",
        BYE,
      ]),
      mail("defer", FROM, "<def@mx.test.example>", [
        HELO,
        MAIL_OK,
        "450 4.7.1 <def@mx.test.example>: Recipient address rejected: Access denied",
        BYE,
      ]),
      mail("reject_non_fqdn_sender as a value", "<user>", "<nf@mx.test.example>", [
        HELO,
        MAIL_OK,
        "504 5.5.2 <user>: Sender address rejected: need fully-qualified address",
        BYE,
      ]),
      mail("5NN 5.1.1 for a recipient", FROM, "<n6@mx.test.example>", [
        HELO,
        MAIL_OK,
        "550 5.1.1 <n6@mx.test.example>: Recipient address rejected: no such user",
        BYE,
      ]),
      mail("4NN 4.1.8 for a recipient", FROM, "<n7@mx.test.example>", [
        HELO,
        MAIL_OK,
        "450 4.1.2 <n7@mx.test.example>: Recipient address rejected: odd code",
        BYE,
      ]),
      mail("user+ext@domain finds user@domain", FROM, "<base+x@mx.test.example>", [
        HELO,
        MAIL_OK,
        "554 5.7.1 <base+x@mx.test.example>: Recipient address rejected: base address",
        BYE,
      ]),
    ],
  },
  {
    name: "clients",
    params: {
      smtpd_client_restrictions:
        "check_client_access texthash:%T/clients, check_client_access texthash:%T/names",
    },
    tables: {
      clients: [
        "127.0.0.3 REJECT full address",
        "127.0.1 REJECT three octets",
        "127.2 REJECT two octets",
        "127.0.0.5 DUNNO",
        "127.0.0.6 OK",
        "",
      ].join("\n"),
      names: "unknown REJECT unknown name\n",
    },
    sessions: [
      mail("the full address", FROM, TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <unknown[127.0.0.3]>: Client host rejected: full address",
        BYE,
      ], { src: "127.0.0.3" }),
      mail("three octets", FROM, TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <unknown[127.0.1.9]>: Client host rejected: three octets",
        BYE,
      ], { src: "127.0.1.9" }),
      mail("two octets", FROM, TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <unknown[127.2.3.4]>: Client host rejected: two octets",
        BYE,
      ], { src: "127.2.3.4" }),
      mail("DUNNO, then the name unknown", FROM, TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <unknown[127.0.0.5]>: Client host rejected: unknown name",
        BYE,
      ], { src: "127.0.0.5" }),
      mail("OK", FROM, TO, [HELO, MAIL_OK, RCPT_OK, BYE], { src: "127.0.0.6" }),
    ],
  },
  {
    name: "unknown-client",
    params: {
      smtpd_client_restrictions: "reject_unknown_client_hostname",
      unknown_client_reject_code: "550",
    },
    sessions: [
      mail("reject_unknown_client_hostname, unknown_client_reject_code", FROM, TO, [
        HELO,
        MAIL_OK,
        "550 5.7.25 Client host rejected: cannot find your hostname, [127.0.0.2]",
        BYE,
      ]),
    ],
  },
  {
    name: "helo",
    params: {
      smtpd_helo_restrictions:
        "reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname, check_helo_access texthash:%T/helos",
    },
    tables: {
      helos: [
        "helo.example REJECT listed name",
        "[192.0.2.7] REJECT literal key",
        "192.0.2.8 REJECT address key",
        "",
      ].join("\n"),
    },
    sessions: [
      mail("HELO helo.example", FROM, TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <helo.example>: Helo command rejected: listed name",
        BYE,
      ], { helo: "helo.example" }),
      mail("HELO sub.helo.example", FROM, TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <sub.helo.example>: Helo command rejected: listed name",
        BYE,
      ], { helo: "sub.helo.example" }),
      mail("HELO [192.0.2.7]", FROM, TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <[192.0.2.7]>: Helo command rejected: literal key",
        BYE,
      ], { helo: "[192.0.2.7]" }),
      mail("HELO [192.0.2.8]", FROM, TO, [HELO, MAIL_OK, RCPT_OK, BYE], { helo: "[192.0.2.8]" }),
      mail("HELO 192.0.2.8", FROM, TO, [
        HELO,
        MAIL_OK,
        "504 5.5.2 <192.0.2.8>: Helo command rejected: need fully-qualified hostname",
        BYE,
      ], { helo: "192.0.2.8" }),
      mail("HELO bad!name.example", FROM, TO, [
        HELO,
        MAIL_OK,
        "501 5.5.2 <bad!name.example>: Helo command rejected: Invalid name",
        BYE,
      ], { helo: "bad!name.example" }),
      mail("HELO [1.2.3.4", FROM, TO, [
        HELO,
        MAIL_OK,
        "501 5.5.2 <[1.2.3.4>: Helo command rejected: invalid ip address",
        BYE,
      ], { helo: "[1.2.3.4" }),
      mail("HELO a..b.example", FROM, TO, [
        HELO,
        MAIL_OK,
        "501 5.5.2 <a..b.example>: Helo command rejected: Invalid name",
        BYE,
      ], { helo: "a..b.example" }),
      mail("HELO nodot", FROM, TO, [
        HELO,
        MAIL_OK,
        "504 5.5.2 <nodot>: Helo command rejected: need fully-qualified hostname",
        BYE,
      ], { helo: "nodot" }),
      mail("HELO host.example.", FROM, TO, [HELO, MAIL_OK, RCPT_OK, BYE], {
        helo: "host.example.",
      }),
      mail("HELO -lead.example", FROM, TO, [
        HELO,
        MAIL_OK,
        "501 5.5.2 <-lead.example>: Helo command rejected: Invalid name",
        BYE,
      ], { helo: "-lead.example" }),
      mail("HELO under_score.example", FROM, TO, [HELO, MAIL_OK, RCPT_OK, BYE], {
        helo: "under_score.example",
      }),
      mail("HELO [IPv6:2001:db8::1]", FROM, TO, [HELO, MAIL_OK, RCPT_OK, BYE], {
        helo: "[IPv6:2001:db8::1]",
      }),
    ],
  },
  {
    name: "delay-reject-no",
    params: {
      smtpd_delay_reject: "no",
      smtpd_client_restrictions: "check_client_access texthash:%T/c",
      smtpd_helo_restrictions: "check_helo_access texthash:%T/h",
      smtpd_sender_restrictions: "check_sender_access texthash:%T/s",
    },
    tables: {
      c: "127.0.0.3 REJECT client\n",
      h: "bad.example REJECT helo\n",
      s: "s@bad.example REJECT sender\n",
    },
    sessions: [
      mail("a client refused", FROM, TO, [
        "554 5.7.1 <unknown[127.0.0.3]>: Client host rejected: client",
        "503 5.7.0 Error: access denied for unknown[127.0.0.3]",
        "503 5.7.0 Error: access denied for unknown[127.0.0.3]",
        "503 5.7.0 Error: access denied for unknown[127.0.0.3]",
        BYE,
      ], { src: "127.0.0.3" }),
      mail("a HELO refused", FROM, TO, [
        "554 5.7.1 <bad.example>: Helo command rejected: helo",
        MAIL_OK,
        RCPT_OK,
        BYE,
      ], { helo: "bad.example" }),
      mail("a sender refused", "<s@bad.example>", TO, [
        HELO,
        "554 5.7.1 <s@bad.example>: Sender address rejected: sender",
        NEED_MAIL,
        BYE,
      ]),
    ],
  },
  {
    name: "codes",
    params: {
      non_fqdn_reject_code: "550",
      smtpd_recipient_restrictions:
        "reject_non_fqdn_sender, reject_non_fqdn_recipient, reject_unknown_reverse_client_hostname",
    },
    sessions: [
      mail("reject_non_fqdn_sender", "<user>", TO, [
        HELO,
        MAIL_OK,
        "550 5.5.2 <user>: Sender address rejected: need fully-qualified address",
        BYE,
      ]),
      mail("reject_non_fqdn_sender, a domain without a dot", "<user@nodot>", TO, [
        HELO,
        MAIL_OK,
        "550 5.5.2 <user@nodot>: Sender address rejected: need fully-qualified address",
        BYE,
      ]),
      mail("reject_non_fqdn_recipient", FROM, "<u@nodot>", [
        HELO,
        MAIL_OK,
        "554 5.7.1 <u@nodot>: Relay access denied",
        BYE,
      ]),
      mail("reject_unknown_reverse_client_hostname", FROM, TO, [
        HELO,
        MAIL_OK,
        "450 4.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.2]",
        BYE,
      ]),
    ],
  },
  {
    name: "reply-codes",
    params: {
      access_map_reject_code: "550",
      reject_code: "550",
      defer_code: "451",
      relay_domains_reject_code: "550",
      smtpd_sender_restrictions: "check_sender_access texthash:%T/s",
    },
    tables: {
      s: "r@x.example REJECT\ng@x.example reject\nd@x.example defer\nc@x.example 421 closing\n",
    },
    sessions: [
      mail("REJECT with access_map_reject_code", "<r@x.example>", TO, [
        HELO,
        MAIL_OK,
        "550 5.7.1 <r@x.example>: Sender address rejected: Access denied",
        BYE,
      ]),
      mail("reject with reject_code", "<g@x.example>", TO, [
        HELO,
        MAIL_OK,
        "550 5.7.1 <g@x.example>: Sender address rejected: Access denied",
        BYE,
      ]),
      mail("defer with defer_code", "<d@x.example>", TO, [
        HELO,
        MAIL_OK,
        "450 4.7.1 <d@x.example>: Sender address rejected: Access denied",
        BYE,
      ]),
      mail("421 in a table", "<c@x.example>", TO, [
        HELO,
        MAIL_OK,
        "421 4.7.1 <c@x.example>: Sender address rejected: closing",
        "<closed>",
      ]),
      mail("reject_unauth_destination with relay_domains_reject_code", FROM, "<a@other.example>", [
        HELO,
        MAIL_OK,
        "550 5.7.1 <a@other.example>: Relay access denied",
        BYE,
      ]),
    ],
  },
  {
    // Without mynetworks, "host" trusts all of loopback here (127.0.0.0/8, ::1);
    // Postfix trusts the host's own addresses only (127.0.0.1/32, ...).
    name: "mynetworks-style-host",
    params: { mynetworks: null, mynetworks_style: "host" },
    sessions: [
      mail("relay from 127.0.0.2", FROM, "<a@other.example>", [HELO, MAIL_OK, RCPT_OK, BYE], {
        postfix: [HELO, MAIL_OK, "554 5.7.1 <a@other.example>: Relay access denied", BYE],
      }),
      mail("relay from 127.0.0.1", FROM, "<a@other.example>", [HELO, MAIL_OK, RCPT_OK, BYE], {
        src: "127.0.0.1",
      }),
    ],
  },
  {
    name: "mynetworks-style-subnet",
    params: { mynetworks: null, mynetworks_style: "subnet" },
    sessions: [
      mail("relay from 127.0.0.2", FROM, "<a@other.example>", [HELO, MAIL_OK, RCPT_OK, BYE]),
    ],
  },
  {
    // Not built here: our access tables always match parent domains
    // (Postfix's default), and never look up ".domain".
    name: "parent-domain-style",
    params: {
      parent_domain_matches_subdomains: "",
      smtpd_sender_restrictions: "check_sender_access texthash:%T/s",
    },
    ours: { parent_domain_matches_subdomains: null },
    tables: { s: "example.net REJECT bare parent\n.example.org REJECT dotted parent\n" },
    sessions: [
      mail("a parent domain written bare", "<a@x.example.net>", TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <a@x.example.net>: Sender address rejected: bare parent",
        BYE,
      ], { postfix: [HELO, MAIL_OK, RCPT_OK, BYE] }),
      mail("a parent domain written with a dot", "<a@x.example.org>", TO, [
        HELO,
        MAIL_OK,
        RCPT_OK,
        BYE,
      ], {
        postfix: [
          HELO,
          MAIL_OK,
          "554 5.7.1 <a@x.example.org>: Sender address rejected: dotted parent",
          BYE,
        ],
      }),
    ],
  },
  {
    name: "null-access-key",
    params: {
      smtpd_null_access_lookup_key: "<null>",
      smtpd_sender_restrictions: "check_sender_access texthash:%T/s",
    },
    tables: { s: "<null> REJECT null key\n<> REJECT angle key\n" },
    sessions: [
      mail("the null sender", "<>", TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <>: Sender address rejected: null key",
        BYE,
      ]),
    ],
  },
  {
    // Not built here: no reject footer.
    name: "reject-footer",
    params: {
      smtpd_reject_footer: "See https://help.example/",
      smtpd_sender_restrictions: "check_sender_access texthash:%T/s",
    },
    ours: { smtpd_reject_footer: null },
    tables: { s: "s@bad.example REJECT no\n" },
    sessions: [
      mail("a refusal", "<s@bad.example>", TO, [
        HELO,
        MAIL_OK,
        "554 5.7.1 <s@bad.example>: Sender address rejected: no",
        BYE,
      ], {
        postfix: [
          HELO,
          MAIL_OK,
          "554-5.7.1 <s@bad.example>: Sender address rejected: no\n554 5.7.1 See https://help.example/",
          BYE,
        ],
      }),
    ],
  },
  {
    name: "relay",
    params: {
      smtpd_relay_restrictions: "permit_mynetworks, reject_unauth_destination",
      smtpd_recipient_limit: "2",
    },
    sessions: [
      mail("a relay domain", FROM, "<a@relay.example>", [HELO, MAIL_OK, RCPT_OK, BYE]),
      mail("a subdomain of a relay domain", FROM, "<a@sub.relay.example>", [
        HELO,
        MAIL_OK,
        RCPT_OK,
        BYE,
      ]),
      mail("another domain", FROM, "<a@other.example>", [
        HELO,
        MAIL_OK,
        "554 5.7.1 <a@other.example>: Relay access denied",
        BYE,
      ]),
      mail("another domain from mynetworks", FROM, "<a@other.example>", [
        HELO,
        MAIL_OK,
        RCPT_OK,
        BYE,
      ], { src: "127.0.0.1" }),
      mail("our address literal", FROM, "<a@[127.0.0.1]>", [HELO, MAIL_OK, RCPT_OK, BYE]),
      mail("smtpd_recipient_limit", FROM, [TO, TO, TO], [
        HELO,
        MAIL_OK,
        RCPT_OK,
        RCPT_OK,
        "452 4.5.3 Error: too many recipients",
        BYE,
      ]),
    ],
  },
];

/** A group's parameters: BASE, the group's, and for our side its own. */
function paramsOf(group: Group, side: "ours" | "postfix") {
  const merged: Record<string, string> = { ...BASE };
  for (
    const [k, v] of Object.entries({ ...group.params, ...(side === "ours" ? group.ours : {}) })
  ) {
    if (v === null) delete merged[k];
    else merged[k] = v;
  }
  return merged;
}

Deno.test({
  name: "restrictions and access tables: the same replies as Postfix 3.7, group by group",
  ...opts,
  fn: async (t) => {
    const dir = await makeWorkDir("restriction-parity");
    // Postfix: one smtpd service per group, its parameters through -o;
    // trivial-rewrite reads these from main.cf, not from smtpd's -o.
    const { fill, pf, ports } = await startGroups(dir, GROUPS, {
      name: "restrictions",
      params: (g) => paramsOf(g, "postfix"),
      mainCfExtra: `mydestination = ${BASE.mydestination}\nrelay_domains = ${BASE.relay_domains}\n`,
    });
    try {
      for (const g of GROUPS) {
        await t.step(g.name, async () => {
          const toml = oursToml(fill(g, paramsOf(g, "ours")));
          const d = await startDaemon(toml, { dir: await makeWorkDir(`parity-${g.name}`) });
          try {
            for (const s of g.sessions) {
              const src = s.src ?? "127.0.0.2";
              const ours = await talk(d.port, src, s.lines);
              let theirs: string[] | undefined;
              if (pf) {
                const want = JSON.stringify(s.postfix ?? s.expect);
                theirs = await talk(ports.get(g.name)!, src, s.lines);
                // The reference asked once more before it is judged: once in a loaded CI
                // run its session for one case answered 250 and left no line in its log.
                if (!RECORD && JSON.stringify(theirs) !== want) {
                  await new Promise((r) => setTimeout(r, 1000));
                  theirs = await talk(ports.get(g.name)!, src, s.lines);
                }
              }
              if (RECORD) {
                const same = JSON.stringify(ours) === JSON.stringify(theirs);
                note(`${g.name}: ${s.does} ${same ? "SAME" : "DIFFERENT"}`);
                note(`RECORD ${JSON.stringify(theirs ?? ours)}`);
                note(`  ours   ${JSON.stringify(ours)}`);
                if (!same) note(`  theirs ${JSON.stringify(theirs)}`);
                continue;
              }
              assert.deepEqual(ours, s.expect, `${g.name}: ${s.does} (ours)`);
              if (theirs) {
                assert.deepEqual(theirs, s.postfix ?? s.expect, `${g.name}: ${s.does} (Postfix)`);
              }
            }
            // The verdicts logged, in the same order and words.
            const logged = await groupVerdicts(d, pf, g.name, g.sessions.length);
            if (logged.theirs) {
              if (RECORD) {
                note(`LOG ${g.name}\n  ours   ${logged.ours.join("\n         ")}`);
                note(`  theirs ${logged.theirs.join("\n         ")}`);
              } else if (!g.sessions.some((s) => s.postfix)) {
                assert.deepEqual(logged.ours, logged.theirs, `${g.name}: log`);
              }
            }
          } finally {
            await d.stop();
          }
        });
      }
    } finally {
      await pf?.stop();
    }
  },
});
