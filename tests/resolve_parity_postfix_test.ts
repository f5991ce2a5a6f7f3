/**
 * Restrictions that judge an envelope address, side by side with a real
 * Postfix (Debian's 3.7), for addresses that trivial-rewrite changes
 * before Postfix's smtpd looks them up: no domain (`<u1>` becomes
 * u1@$myorigin), a trailing dot, a quoted local part, a source route,
 * capitals, an extension, `<postmaster>`, an address literal of ours,
 * localhost and the null sender. Each group is one smtpd service of a
 * private Postfix instance (its parameters through master.cf `-o`; the
 * rewrite service it asks is given its own myorigin) and one daemon of
 * ours with the same parameters; every session's replies must be the
 * ones written here, from both servers, and the refusals logged must be
 * the same lines. The Postfix side is skipped without Postfix (or root).
 * PARITY_RECORD=1 prints both servers' replies instead of asserting.
 */

import assert from "node:assert/strict";
import { freePort, makeWorkDir, startDaemon } from "./_harness.ts";
import { groupVerdicts, note, oursToml, RECORD, startGroups, talk } from "./_parity.ts";
import { startDovecot } from "./_dovecot.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** One session: MAIL FROM and RCPT TO lines, and the replies to them. */
interface Case {
  does: string;
  from: string;
  to: string;
  /** The replies to HELO, MAIL, RCPT, QUIT. */
  expect: string[];
}

/** One configuration and its sessions. */
interface Group {
  name: string;
  /** The domain unqualified addresses get (the rewrite service's too). */
  myorigin: string;
  /** main.cf parameters, Postfix's syntax; `%T/name` is the group's table. */
  params: Record<string, string>;
  tables?: Record<string, string>;
  cases: Case[];
}

const HELO = "250 mx.test.example";
const MAIL_OK = "250 2.1.0 Ok";
const RCPT_OK = "250 2.1.5 Ok";
const BYE = "221 2.0.0 Bye";

/** Postfix's smtpd and trivial-rewrite settings every group shares. */
const BASE: Record<string, string> = {
  myhostname: "mx.test.example",
  mydomain: "test.example",
  mydestination: "mx.test.example",
  "relay_domains": "relay.example",
  mynetworks: "127.0.0.1/32",
  "recipient_delimiter": "+",
  "smtpd_error_sleep_time": "0",
};

/** A session's addresses and the replies to MAIL and RCPT. */
type Row = [does: string, from: string, to: string, mail: string, rcpt: string];

/** The sessions' addresses, each with the reply it gets. */
function cases(rows: Row[]): Case[] {
  return rows.map(([does, from, to, mail, rcpt]) => ({
    does,
    from,
    to,
    expect: [HELO, mail, rcpt, BYE],
  }));
}

const FROM = "<a@sender.example>";
const TO = "<x@relay.example>";
const S = (addr: string, text: string) => `554 5.7.1 <${addr}>: Sender address rejected: ${text}`;
const R = (addr: string, text: string) =>
  `554 5.7.1 <${addr}>: Recipient address rejected: ${text}`;
const UNKNOWN = "User unknown in local recipient table";
const NOT_LOGGED_IN = "Sender address rejected: not logged in";

/** The access tables of the "access" and "bare-table" groups. */
const ACCESS_TABLES: Record<string, string> = {
  senders: [
    "s1@origin.example REJECT s-full",
    '"q."@origin.example REJECT s-quoted',
    "postmaster@origin.example REJECT s-postmaster",
    "s1@[127.0.0.1] REJECT s-literal",
    "s1@localhost REJECT s-localhost",
    "s3 REJECT s-bare",
    "s4@ REJECT s-userat",
    "origin.example REJECT s-domain",
    "spammer.example REJECT s-percent",
    "mx.test.example REJECT s-ours",
    "<> REJECT s-null",
    "",
  ].join("\n"),
  rcpts: [
    "r1@origin.example REJECT r-full",
    "r3 REJECT r-bare",
    "spammer.example REJECT r-percent",
    "relay.example OK",
    "origin.example REJECT r-domain",
    "",
  ].join("\n"),
};

/** relay.example is OK in rcpts, which does not permit an address routed through it. */
const ROUTED_RCPTS: Row[] = [
  [
    "recipient: OK does not permit a routed address",
    FROM,
    "<y%victim.example@relay.example>",
    MAIL_OK,
    "554 5.7.1 <y%victim.example@relay.example>: Relay access denied",
  ],
  [
    "recipient: OK permits the same domain unrouted",
    FROM,
    "<y@relay.example>",
    MAIL_OK,
    RCPT_OK,
  ],
];

const GROUPS: Group[] = [
  {
    // $myorigin is not ours here, so a bare local part is judged as an
    // address of origin.example (and refused as relaying).
    name: "access",
    myorigin: "origin.example",
    params: {
      "smtpd_relay_restrictions":
        "check_recipient_access texthash:%T/rcpts, reject_unauth_destination",
      "smtpd_sender_restrictions": "check_sender_access texthash:%T/senders",
    },
    tables: ACCESS_TABLES,
    cases: cases([
      ["<s1> is s1@$myorigin", "<s1>", TO, MAIL_OK, S("s1", "s-full")],
      ["a trailing dot", "<s1@origin.example.>", TO, MAIL_OK, S("s1@origin.example.", "s-full")],
      [
        "a quoted plain local part",
        '<"s1"@origin.example>',
        TO,
        MAIL_OK,
        S("s1@origin.example", "s-full"),
      ],
      [
        "a local part that needs quotes",
        '<"q."@origin.example>',
        TO,
        MAIL_OK,
        S("q.@origin.example", "s-quoted"),
      ],
      [
        "a source route",
        "<@a.example,@b.example:s1@origin.example>",
        TO,
        MAIL_OK,
        S("s1@origin.example", "s-full"),
      ],
      ["capitals", "<S1@ORIGIN.EXAMPLE>", TO, MAIL_OK, S("S1@ORIGIN.EXAMPLE", "s-full")],
      [
        "an extension",
        "<s1+ext@origin.example>",
        TO,
        MAIL_OK,
        S("s1+ext@origin.example", "s-full"),
      ],
      ["<postmaster>", "<postmaster>", TO, MAIL_OK, S("postmaster", "s-postmaster")],
      [
        "an address literal of ours",
        "<s1@[127.0.0.1]>",
        TO,
        MAIL_OK,
        S("s1@[127.0.0.1]", "s-literal"),
      ],
      ["localhost", "<s1@localhost>", TO, MAIL_OK, S("s1@localhost", "s-localhost")],
      ["<s3>: the domain, never the bare local part", "<s3>", TO, MAIL_OK, S("s3", "s-domain")],
      ["<s4>: the domain before user@", "<s4>", TO, MAIL_OK, S("s4", "s-domain")],
      ["<s5>: $myorigin's entry", "<s5>", TO, MAIL_OK, S("s5", "s-domain")],
      ["the null sender", "<>", TO, MAIL_OK, S("", "s-null")],
      [
        "the percent hack off our domain",
        "<x%spammer.example@mx.test.example>",
        TO,
        MAIL_OK,
        S("x%spammer.example@mx.test.example", "s-percent"),
      ],
      [
        "a bang path off our domain",
        "<spammer.example!x@mx.test.example>",
        TO,
        MAIL_OK,
        S("spammer.example!x@mx.test.example", "s-percent"),
      ],
      [
        "a quoted address off our domain",
        '<"x@spammer.example"@mx.test.example>',
        TO,
        MAIL_OK,
        S("x@spammer.example@mx.test.example", "s-percent"),
      ],
      [
        "the percent hack under another domain stays",
        "<x%spammer.example@other.example>",
        TO,
        MAIL_OK,
        RCPT_OK,
      ],
      [
        "the percent hack without a domain",
        "<x%spammer.example>",
        TO,
        MAIL_OK,
        S("x%spammer.example", "s-percent"),
      ],
      [
        "a quoted percent hack without a domain",
        '<"x%spammer.example">',
        TO,
        MAIL_OK,
        S("x%spammer.example", "s-percent"),
      ],
      [
        "a local part that needs quotes, without a domain",
        '<"a b%spammer.example">',
        TO,
        MAIL_OK,
        S("a b%spammer.example", "s-domain"),
      ],
      [
        "recipient: the percent hack off our domain",
        FROM,
        "<x%spammer.example@mx.test.example>",
        MAIL_OK,
        R("x%spammer.example@mx.test.example", "r-percent"),
      ],
      ...ROUTED_RCPTS,
      ["recipient <r1> is r1@$myorigin", FROM, "<r1>", MAIL_OK, R("r1", "r-full")],
      [
        "recipient <r3>: the domain, never the bare local part",
        FROM,
        "<r3>",
        MAIL_OK,
        R("r3", "r-domain"),
      ],
      ["recipient <r9>: $myorigin's entry", FROM, "<r9>", MAIL_OK, R("r9", "r-domain")],
    ]),
  },
  {
    // A bare table in a list is that list's access check (Postfix's
    // check_mail_access too), with the same resolution.
    name: "bare-table",
    myorigin: "origin.example",
    params: {
      "smtpd_relay_restrictions": "texthash:%T/rcpts, reject_unauth_destination",
      "smtpd_sender_restrictions": "texthash:%T/senders",
    },
    tables: ACCESS_TABLES,
    cases: cases([
      ["<s1> is s1@$myorigin", "<s1>", TO, MAIL_OK, S("s1", "s-full")],
      ["<s5>: $myorigin's entry", "<s5>", TO, MAIL_OK, S("s5", "s-domain")],
      [
        "the percent hack off our domain",
        "<x%spammer.example@mx.test.example>",
        TO,
        MAIL_OK,
        S("x%spammer.example@mx.test.example", "s-percent"),
      ],
      ["recipient <r1> is r1@$myorigin", FROM, "<r1>", MAIL_OK, R("r1", "r-full")],
      ...ROUTED_RCPTS,
    ]),
  },
  {
    // Not logged in: an address the login maps know is refused however it
    // is written (no login is attempted, so no SASL server is needed).
    name: "login-maps",
    myorigin: "mx.test.example",
    params: {
      "smtpd_sasl_auth_enable": "yes",
      "smtpd_sasl_type": "dovecot",
      "smtpd_sasl_path": "%D",
      "smtpd_sender_login_maps": "texthash:%T/logins",
      "smtpd_sender_restrictions": "reject_unauthenticated_sender_login_mismatch",
      "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
    },
    tables: { logins: "alice@mx.test.example alice\n" },
    cases: cases([
      ["<alice> is alice@$myorigin", "<alice>", TO, MAIL_OK, `553 5.7.1 <alice>: ${NOT_LOGGED_IN}`],
      [
        "the percent hack off our domain",
        "<alice%mx.test.example@mx.test.example>",
        TO,
        MAIL_OK,
        `553 5.7.1 <alice%mx.test.example@mx.test.example>: ${NOT_LOGGED_IN}`,
      ],
      [
        "a bang path off our domain",
        "<mx.test.example!alice@mx.test.example>",
        TO,
        MAIL_OK,
        `553 5.7.1 <mx.test.example!alice@mx.test.example>: ${NOT_LOGGED_IN}`,
      ],
      [
        "a quoted address off our domain",
        '<"alice@mx.test.example"@mx.test.example>',
        TO,
        MAIL_OK,
        `553 5.7.1 <alice@mx.test.example@mx.test.example>: ${NOT_LOGGED_IN}`,
      ],
      [
        "the percent hack without a domain",
        "<alice%mx.test.example>",
        TO,
        MAIL_OK,
        `553 5.7.1 <alice%mx.test.example>: ${NOT_LOGGED_IN}`,
      ],
      ["an address nobody owns", "<bob@mx.test.example>", TO, MAIL_OK, RCPT_OK],
    ]),
  },
  {
    name: "relay",
    myorigin: "origin.example",
    params: {
      "smtpd_relay_restrictions": "reject_unauth_destination",
      "smtpd_sender_restrictions": "reject_non_fqdn_sender",
    },
    cases: cases([
      [
        "<u1> is u1@$myorigin, not ours",
        FROM,
        "<u1>",
        MAIL_OK,
        "554 5.7.1 <u1>: Relay access denied",
      ],
      ["<postmaster> is taken before any restriction", FROM, "<postmaster>", MAIL_OK, RCPT_OK],
      ["a trailing dot", FROM, "<u1@mx.test.example.>", MAIL_OK, RCPT_OK],
      [
        "a source route is dropped",
        FROM,
        "<@a.example,@b.example:u1@mx.test.example>",
        MAIL_OK,
        RCPT_OK,
      ],
      ["an address literal of ours", FROM, "<u1@[127.0.0.1]>", MAIL_OK, RCPT_OK],
      [
        "localhost (not in mydestination)",
        FROM,
        "<u1@localhost>",
        MAIL_OK,
        "554 5.7.1 <u1@localhost>: Relay access denied",
      ],
      [
        "the percent hack",
        FROM,
        "<u1%other.example@mx.test.example>",
        MAIL_OK,
        "554 5.7.1 <u1%other.example@mx.test.example>: Relay access denied",
      ],
      [
        "reject_non_fqdn_sender judges <u1> as sent",
        "<u1>",
        TO,
        MAIL_OK,
        "504 5.5.2 <u1>: Sender address rejected: need fully-qualified address",
      ],
      ["reject_non_fqdn_sender and a trailing dot", "<u1@sender.example.>", TO, MAIL_OK, RCPT_OK],
      ["reject_non_fqdn_sender and an address literal", "<u1@[127.0.0.1]>", TO, MAIL_OK, RCPT_OK],
      [
        "reject_non_fqdn_sender and localhost",
        "<u1@localhost>",
        TO,
        MAIL_OK,
        "504 5.5.2 <u1@localhost>: Sender address rejected: need fully-qualified address",
      ],
    ]),
  },
  {
    // $myorigin is ours here: a bare local part is a local user.
    name: "unlisted",
    myorigin: "mx.test.example",
    params: {
      "smtpd_reject_unlisted_sender": "yes",
      "local_recipient_maps": "texthash:%T/local",
      "smtpd_relay_restrictions": "reject_unauth_destination",
    },
    tables: {
      local: ["u1@mx.test.example x", "u2 x", ""].join("\n"),
    },
    cases: cases([
      ["sender <u1> is u1@$myorigin", "<u1>", "<u2@mx.test.example>", MAIL_OK, RCPT_OK],
      ["sender <u2>", "<u2>", "<u2@mx.test.example>", MAIL_OK, RCPT_OK],
      [
        "sender <u3>",
        "<u3>",
        "<u2@mx.test.example>",
        MAIL_OK,
        `550 5.1.0 <u3>: Sender address rejected: ${UNKNOWN}`,
      ],
      [
        "sender with a trailing dot",
        "<u3@mx.test.example.>",
        "<u2@mx.test.example>",
        MAIL_OK,
        `550 5.1.0 <u3@mx.test.example.>: Sender address rejected: ${UNKNOWN}`,
      ],
      [
        "sender with a quoted local part",
        '<"u1"@mx.test.example>',
        "<u2@mx.test.example>",
        MAIL_OK,
        RCPT_OK,
      ],
      ["sender <postmaster>", "<postmaster>", "<u2@mx.test.example>", MAIL_OK, RCPT_OK],
      ["recipient <u1> is u1@$myorigin", FROM, "<u1>", MAIL_OK, RCPT_OK],
      [
        "recipient <u3>",
        FROM,
        "<u3>",
        MAIL_OK,
        `550 5.1.1 <u3>: Recipient address rejected: ${UNKNOWN}`,
      ],
      ["recipient in capitals", FROM, "<U1@MX.TEST.EXAMPLE>", MAIL_OK, RCPT_OK],
      ["recipient with an extension", FROM, "<u1+ext@mx.test.example>", MAIL_OK, RCPT_OK],
      ["recipient at an address literal of ours", FROM, "<u2@[127.0.0.1]>", MAIL_OK, RCPT_OK],
      [
        "recipient with a source route",
        FROM,
        "<@a.example:u3@mx.test.example>",
        MAIL_OK,
        `550 5.1.1 <u3@mx.test.example>: Recipient address rejected: ${UNKNOWN}`,
      ],
      ["recipient <postmaster>", FROM, "<postmaster>", MAIL_OK, RCPT_OK],
      [
        "sender routed back to a listed user",
        "<u1%mx.test.example@mx.test.example>",
        "<u2@mx.test.example>",
        MAIL_OK,
        RCPT_OK,
      ],
      [
        "sender routed to another domain is not ours to check",
        "<u3%other.example@mx.test.example>",
        "<u2@mx.test.example>",
        MAIL_OK,
        RCPT_OK,
      ],
      [
        "recipient routed back to a listed user",
        FROM,
        "<u1%mx.test.example@mx.test.example>",
        MAIL_OK,
        RCPT_OK,
      ],
      [
        "recipient routed back to an unknown user",
        FROM,
        "<u3%mx.test.example@mx.test.example>",
        MAIL_OK,
        `550 5.1.1 <u3%mx.test.example@mx.test.example>: Recipient address rejected: ${UNKNOWN}`,
      ],
    ]),
  },
];

const ONLY = Deno.env.get("PARITY_ONLY");

/** A group's parameters (%T/ its tables' directory, %D the Dovecot auth socket). */
function paramsOf(group: Group): Record<string, string> {
  return { ...BASE, myorigin: group.myorigin, ...group.params };
}

Deno.test({
  name: "restrictions judge an address as Postfix resolves it (side by side with Postfix 3.7)",
  ...opts,
  fn: async (t) => {
    const dir = await makeWorkDir("resolve-parity");
    // The login-maps group's SASL server (no session logs in).
    const dovecot = await startDovecot(freePort());
    // Each group's smtpd asks a trivial-rewrite service of its own, with
    // the group's parameters (main.cf is left alone: a parameter given
    // twice there makes every daemon warn through syslog).
    const { fill, pf, ports } = await startGroups(dir, GROUPS, {
      name: "resolve",
      params: paramsOf,
      placeholders: { "%D": dovecot.socket },
      rewrite: true,
    });
    try {
      for (const g of GROUPS.filter((g) => !ONLY || g.name === ONLY)) {
        await t.step(g.name, async () => {
          const d = await startDaemon(oursToml(fill(g, paramsOf(g))), {
            dir: await makeWorkDir(`resolve-${g.name}`),
          });
          try {
            for (const c of g.cases) {
              const lines = [
                "HELO client.example",
                `MAIL FROM:${c.from}`,
                `RCPT TO:${c.to}`,
                "QUIT",
              ];
              const ours = await talk(d.port, "127.0.0.2", lines);
              const theirs = pf ? await talk(ports.get(g.name)!, "127.0.0.2", lines) : undefined;
              if (RECORD) {
                const same = JSON.stringify(ours) === JSON.stringify(theirs);
                note(`${g.name}: ${c.does} ${c.from} ${c.to} ${same ? "SAME" : "DIFFERENT"}`);
                note(`  ours   ${JSON.stringify(ours.slice(1, 3))}`);
                if (!same) note(`  theirs ${JSON.stringify(theirs?.slice(1, 3))}`);
                continue;
              }
              assert.deepEqual(ours, c.expect, `${g.name}: ${c.does} (ours)`);
              if (theirs) assert.deepEqual(theirs, c.expect, `${g.name}: ${c.does} (Postfix)`);
            }
            const logged = await groupVerdicts(d, RECORD ? undefined : pf, g.name, g.cases.length);
            if (logged.theirs) assert.deepEqual(logged.ours, logged.theirs, `${g.name}: log`);
          } finally {
            await d.stop();
          }
        });
      }
    } finally {
      await pf?.stop();
      await dovecot.dispose();
    }
  },
});
