/**
 * Relay control and tables for internationalized (SMTPUTF8) addresses,
 * side by side with a real Postfix (Debian's 3.7, smtputf8_enable = yes).
 * Postfix's trivial-rewrite compares a domain with mydestination and
 * relay_domains as text, both sides case folded (ICU's full folding:
 * "ß" is "ss", "ſ" is "s", the dotless "ı" stays itself) and without IDNA:
 * a U-label never matches an entry written in A-labels, nor the other way
 * round, and no Unicode normalization or dot mapping is applied. Table
 * keys (texthash) are folded the same way on both sides. Each
 * session must get the reply written here from our daemon and from a
 * private Postfix's smtpd with the same parameters (the Postfix side is
 * skipped without Postfix or root). PARITY_RECORD=1 prints both servers'
 * replies instead of asserting.
 */

import assert from "node:assert/strict";
import { makeWorkDir, run, startDaemon } from "./_harness.ts";
import { startPostfix } from "./_postfix.ts";
import { canRunPostfix, note, oursToml, RECORD, startGroups, talk } from "./_parity.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Recipient, whether MAIL gave SMTPUTF8, why, and the RCPT reply. */
type Case = [rcpt: string, utf8: boolean, does: string, reply: string];

/** One configuration and its sessions. */
interface Group {
  name: string;
  /** main.cf parameters (Postfix's through master.cf `-o`); `%T/` is the tables' directory. */
  params: Record<string, string>;
  tables?: Record<string, string>;
  cases: Case[];
}

/** The domain lists' parameters. */
const DOMAINS: Record<string, string> = {
  myhostname: "mx.test.example",
  mydomain: "test.example",
  myorigin: "test.example",
  mydestination: [
    "mx.test.example",
    "xn--bcher-kva.example",
    "zürich.example",
    "strasse.example",
    "maß.example",
    "sun.example",
    "kilo.example",
    "istanbul.example",
  ].join(", "),
  "relay_domains": "relay.example, münchen.example, weiß.example",
  mynetworks: "127.0.0.1/32",
  "local_recipient_maps": "",
  "smtpd_relay_restrictions": "reject_unauth_destination",
  "smtpd_error_sleep_time": "0",
};

const OK = "250 2.1.5 Ok";
const SYNTAX = "501 5.1.3 Bad recipient address syntax";
const DENIED = (rcpt: string) => `554 5.7.1 <${rcpt}>: Relay access denied`;

const DOMAIN_CASES: Case[] = [
  // Case folding as Postfix's casefold(): these were refused by us.
  ["u@straße.example", true, "ß folds to ss (strasse.example listed)", OK],
  ["u@MASS.example", true, "MASS folds as maß.example", OK],
  ["u@mass.example", true, "mass folds as maß.example", OK],
  ["u@ſun.example", true, "the long s folds to s", OK],
  ["u@x.WEISS.example", true, "a subdomain of weiß.example in relay_domains", OK],
  // ...but not the dotless i, which full case folding keeps apart.
  ["u@ıstanbul.example", true, "dotless i is not i", DENIED("u@ıstanbul.example")],
  ["u@İstanbul.example", true, "dotted capital I is not I", DENIED("u@İstanbul.example")],
  ["u@\u212Ailo.example", true, "the Kelvin sign folds to k", OK],
  // U-labels and A-labels are different names.
  ["u@bücher.example", true, "U-label, A-label listed", DENIED("u@bücher.example")],
  ["u@xn--bcher-kva.example", true, "A-label listed", OK],
  ["u@xn--zrich-kva.example", true, "A-label, U-label listed", DENIED("u@xn--zrich-kva.example")],
  [
    "u@x.xn--mnchen-3ya.example",
    true,
    "A-label under a relay domain",
    DENIED("u@x.xn--mnchen-3ya.example"),
  ],
  ["u@x.MÜNCHEN.example", true, "U-label under a relay domain, capitals", OK],
  ["u@ZÜRICH.EXAMPLE", true, "U-label in capitals", OK],
  ["u@zürich.example.", true, "a trailing dot", OK],
  // No normalization, no mapping of other dots.
  ["u@zu\u0308rich.example", true, "NFD form of an NFC entry", DENIED("u@zu\u0308rich.example")],
  ["u@zürich\u3002example", true, "ideographic full stop", DENIED("u@zürich\u3002example")],
  ["u@zürich\uff0eexample", true, "fullwidth full stop", DENIED("u@zürich\uff0eexample")],
  [
    "u@evil\uff0erelay.example",
    true,
    "fullwidth dot is no label separator",
    DENIED("u@evil\uff0erelay.example"),
  ],
  ["u@ｒｅｌａｙ.example", true, "fullwidth letters", DENIED("u@ｒｅｌａｙ.example")],
  // UTS #46 CheckHyphens, as ICU applies it in Postfix (domainToASCII() does not).
  ["u@-bücher.relay.example", true, "a U-label with a leading hyphen", SYNTAX],
  ["u@bücher-.relay.example", true, "a U-label with a trailing hyphen", SYNTAX],
  ["u@ab--cü.relay.example", true, "a U-label with hyphens in places 3 and 4", SYNTAX],
  ["u@ab--c.bücher.relay.example", true, "an ASCII label so, beside a U-label", SYNTAX],
  ["u@a-b.bücher.relay.example", true, "other hyphens are fine", OK],
  ["u@ü_b.relay.example", true, "a low line, as Postfix's valid_hostname()", OK],
];

/** A text as the latin-1 string of its UTF-8 bytes (what talk() sends). */
function wire(text: string): string {
  return String.fromCharCode(...new TextEncoder().encode(text));
}

/** The text of a reply read as latin-1 (its UTF-8 decoded). */
function unwire(text: string): string {
  return new TextDecoder().decode(Uint8Array.from(text, (c) => c.charCodeAt(0)));
}

const hasPostfix = await canRunPostfix();

const UNKNOWN = (rcpt: string) =>
  `550 5.1.1 <${rcpt}>: Recipient address rejected: User unknown in local recipient table`;
const REFUSED = (rcpt: string, text: string) =>
  `554 5.7.1 <${rcpt}>: Recipient address rejected: ${text}`;

const GROUPS: Group[] = [
  { name: "domains", params: DOMAINS, cases: DOMAIN_CASES },
  {
    // Keys written in any case: Postfix folds them when it reads the
    // table and folds the address it looks up.
    name: "tables",
    params: {
      myhostname: "mx.test.example",
      mydomain: "test.example",
      myorigin: "test.example",
      mydestination: "mx.test.example",
      "relay_domains": "relay.example",
      mynetworks: "127.0.0.1/32",
      "recipient_delimiter": "+",
      "local_recipient_maps": "texthash:%T/users",
      "smtpd_relay_restrictions":
        "check_recipient_access texthash:%T/access, reject_unauth_destination",
      "smtpd_error_sleep_time": "0",
    },
    tables: {
      access: [
        "straße.example OK",
        "STRASSE@mx.test.example REJECT k-ascii-upper",
        "Ärger@mx.test.example REJECT k-upper",
        "größe@mx.test.example REJECT k-sz",
        "σοφος@mx.test.example REJECT k-sigma",
        "",
      ].join("\n"),
      users: ["ünï@mx.test.example x", "STRASSE2@mx.test.example x", ""].join("\n"),
    },
    cases: [
      ["u@straße.example", true, "an OK key with ß", OK],
      ["u@STRASSE.example", true, "an OK key with ß, looked up as ss", OK],
      [
        "straße@mx.test.example",
        true,
        "an ASCII key, ß looked up",
        REFUSED("straße@mx.test.example", "k-ascii-upper"),
      ],
      [
        "ärger@mx.test.example",
        true,
        "a key in capitals",
        REFUSED("ärger@mx.test.example", "k-upper"),
      ],
      [
        "GRÖSSE@mx.test.example",
        true,
        "a key with ß, SS looked up",
        REFUSED("GRÖSSE@mx.test.example", "k-sz"),
      ],
      [
        "σοφοσ@mx.test.example",
        true,
        "a final sigma in the key",
        REFUSED("σοφοσ@mx.test.example", "k-sigma"),
      ],
      ["ÜNÏ+ext@mx.test.example", true, "a known user in capitals, with an extension", OK],
      ["straße2@mx.test.example", true, "a known user written in ASCII capitals", OK],
      [
        "ıni@mx.test.example",
        true,
        "the dotless i is another user",
        UNKNOWN("ıni@mx.test.example"),
      ],
    ],
  },
];

Deno.test({
  name: "relay control and tables judge UTF-8 addresses as Postfix does (side by side)",
  ...opts,
  fn: async (t) => {
    const dir = await makeWorkDir("utf8-domains");
    const { fill, pf, ports } = await startGroups(dir, GROUPS, {
      name: "u8domains",
      params: (g) => g.params,
      rewrite: true,
    });
    try {
      for (const g of GROUPS) {
        await t.step(g.name, async () => {
          const d = await startDaemon(oursToml(fill(g, g.params)), {
            dir: await makeWorkDir(`utf8-${g.name}`),
          });
          try {
            for (const [rcpt, utf8, does, reply] of g.cases) {
              const lines = [
                "EHLO client.example",
                `MAIL FROM:<a@sender.example>${utf8 ? " SMTPUTF8" : ""}`,
                wire(`RCPT TO:<${rcpt}>`),
                "QUIT",
              ];
              const ours = unwire((await talk(d.port, "127.0.0.2", lines))[2] ?? "");
              const theirs = pf
                ? unwire((await talk(ports.get(g.name)!, "127.0.0.2", lines))[2] ?? "")
                : undefined;
              if (RECORD) {
                note(`${g.name}: ${rcpt} (${does})\n  ours   ${ours}\n  theirs ${theirs}`);
                continue;
              }
              assert.equal(ours, reply, `${does}: ${rcpt} (ours)`);
              if (theirs !== undefined) assert.equal(theirs, reply, `${does}: ${rcpt} (Postfix)`);
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

Deno.test({
  name: "Postfix's queue manager routes the UTF-8 addresses we accept as we judged them",
  ignore: !hasPostfix,
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("utf8-routes");
    const pf = await startPostfix(dir, { name: "u8routes" });
    try {
      // Each address class gets a discard transport that names it in the log.
      const set = await run("postconf", [
        "-c",
        pf.conf,
        "-e",
        "mydestination = strasse.example, münchen.example",
        "relay_domains = weiß.example",
        "local_transport = discard:LOCAL",
        "relay_transport = discard:RELAY",
        "default_transport = discard:DEFAULT",
      ]);
      assert.equal(set.code, 0, set.stderr);
      await run("postfix", ["-c", pf.conf, "reload"]);
      await pf.waitForLog("the reload", /reload -- version/);
      const d = await startDaemon(
        [
          pf.smtpdConfig,
          'mydestination = ["strasse.example", "münchen.example"]',
          'relay_domains = ["weiß.example"]',
          'mynetworks = ["127.0.0.1/32"]',
        ].join("\n"),
        { dir },
      );
      try {
        const sent: [rcpt: string, route: string][] = [
          ["u@straße.example", "LOCAL"],
          ["ü@MÜNCHEN.example", "LOCAL"],
          ["u@x.WEISS.example", "RELAY"],
        ];
        for (const [rcpt] of sent) {
          const got = await talk(d.port, "127.0.0.2", [
            "EHLO client.example",
            "MAIL FROM:<a@sender.example> SMTPUTF8",
            wire(`RCPT TO:<${rcpt}>`),
            "DATA",
            "Subject: route\r\n\r\nbody\r\n.",
            "QUIT",
          ]);
          assert.match(got[4] ?? "", /^250 2\.0\.0 Ok: queued as /, `${rcpt}: ${got.join(" | ")}`);
        }
        for (const [rcpt, route] of sent) {
          await pf.waitForLog(
            `${rcpt} delivered as ${route}`,
            new RegExp(
              `to=<${rcpt.replaceAll(".", "\\.")}>, relay=none.*status=sent \\(${route}\\)`,
            ),
          );
        }
      } finally {
        await d.stop();
      }
    } finally {
      await pf.stop();
    }
  },
});
