import assert from "node:assert/strict";
import { ConfigError, type LoadedConfig, resolveConfigText } from "../config/mod.ts";
import {
  auditLists,
  compileBareNewlineExclusions,
  compileLists,
  compilePolicy,
} from "./compile.ts";
import { LIST_PARAMS } from "./lists.ts";
import type { DnsResolver } from "./resolver.ts";

const NO_DNS: DnsResolver = { query: () => Promise.resolve({ kind: "notFound" }) };

/** Scratch directory for table files (git-ignored var/). */
const SCRATCH = new URL("../../var/tests/", import.meta.url).pathname;

function load(text: string): LoadedConfig {
  return resolveConfigText(text, { systemHostname: "mx.example.com", file: "test.toml" });
}

function compileError(text: string): ConfigError {
  const loaded = load(text);
  try {
    compilePolicy(loaded, { dns: NO_DNS, warn: () => {} });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    return err;
  }
  assert.fail(`expected a ConfigError for:\n${text}`);
}

function withTableFile<T>(text: string, fn: (path: string) => T): T {
  Deno.mkdirSync(SCRATCH, { recursive: true });
  const path = Deno.makeTempFileSync({ dir: SCRATCH, prefix: "compile_test_" });
  Deno.writeTextFileSync(path, text);
  try {
    return fn(path);
  } finally {
    Deno.removeSync(path);
  }
}

const ERRORS: [what: string, toml: string, message: string][] = [
  [
    "an unknown restriction, with a suggestion",
    '# comment\n\nsmtpd_client_restrictions = ["permit_mynetworks", "reject_unknown_clinet_hostname"]',
    'test.toml:3: smtpd_client_restrictions: unknown restriction "reject_unknown_clinet_hostname"' +
    ' (did you mean "reject_unknown_client_hostname"?)',
  ],
  [
    "an unknown restriction in a list written over several lines: its own line",
    'smtpd_helo_restrictions = [\n  "permit_mynetworks",\n  "reject_unauth_destinaton",\n]\n' +
    'smtpd_recipient_restrictions = ["reject_unauth_destination"]',
    'test.toml:3: smtpd_helo_restrictions: unknown restriction "reject_unauth_destinaton"' +
    ' (did you mean "reject_unauth_destination"?)',
  ],
  [
    "an unknown restriction in a table value, the list over several lines: the table's line",
    'smtpd_client_restrictions = [\n  "permit_mynetworks",\n  "check_client_access",\n  "inline:{ 192.0.2.1 = REJEKT }",\n]',
    'test.toml:4: smtpd_client_restrictions: unknown restriction "REJEKT"',
  ],
  [
    "a bad table value, restriction and table in one string over several lines: that line",
    'smtpd_client_restrictions = [\n  "permit_mynetworks",\n  "check_client_access inline:{ 192.0.2.1 = REJEKT }",\n]',
    'test.toml:3: smtpd_client_restrictions: unknown restriction "REJEKT"',
  ],
  [
    "a missing argument, the list over several lines: the restriction's line",
    'smtpd_client_restrictions = [\n  "permit_mynetworks",\n  "reject_rbl_client", ]',
    'test.toml:3: smtpd_client_restrictions: restriction "reject_rbl_client" needs a zone argument',
  ],
  [
    "an unknown restriction with nothing close to it",
    'smtpd_helo_restrictions = ["frobnicate_everything"]',
    'test.toml:1: smtpd_helo_restrictions: unknown restriction "frobnicate_everything"',
  ],
  [
    "a check_*_access restriction at the end of the list",
    'mynetworks = ["127.0.0.0/8"]\nsmtpd_sender_restrictions = ["check_sender_access"]',
    'test.toml:2: smtpd_sender_restrictions: restriction "check_sender_access" needs a type:table argument',
  ],
  [
    "a check_*_access restriction followed by a restriction, not a table",
    'smtpd_recipient_restrictions = ["check_recipient_access", "permit_mynetworks", "reject"]',
    'test.toml:1: smtpd_recipient_restrictions: restriction "check_recipient_access" needs a type:table argument',
  ],
  [
    "reject_rbl_client without a zone",
    'smtpd_client_restrictions = ["reject_rbl_client"]',
    'test.toml:1: smtpd_client_restrictions: restriction "reject_rbl_client" needs a zone argument',
  ],
  [
    "reject_rbl_client with a malformed zone",
    'smtpd_client_restrictions = ["reject_rbl_client bad/zone"]',
    'test.toml:1: smtpd_client_restrictions: reject_rbl_client: bad zone "bad/zone"',
  ],
  [
    "reject_rbl_client with a malformed reply filter",
    'smtpd_client_restrictions = ["reject_rbl_client dnsbl.example=127.0.0.[x]"]',
    'test.toml:1: smtpd_client_restrictions: reject_rbl_client: bad reply filter "127.0.0.[x]"',
  ],
  [
    "a bad value in a bare table (Postfix's implied check_<stage>_access)",
    'smtpd_client_restrictions = ["inline:{ x=REDIRECT nobody }"]',
    'test.toml:1: smtpd_client_restrictions: inline:{ x=REDIRECT nobody }: action "REDIRECT nobody" requires user@domain target',
  ],
  [
    "an unsupported table type",
    'smtpd_client_restrictions = ["check_client_access hash:/etc/postfix/access"]',
    'test.toml:1: smtpd_client_restrictions: "hash:/etc/postfix/access": unsupported table type "hash"' +
    " (supported: inline, static, texthash, cidr, regexp, pcre, socketmap); hash: is the file" +
    " postmap builds from a text file: name that file as texthash:/etc/postfix/access",
  ],
  [
    "a bad smtpd_sender_login_maps table, at its own line (not the restriction's)",
    'smtpd_sasl_auth_enable = true\nsmtpd_sender_login_maps = ["bogus:/x"]\n' +
    'smtpd_sender_restrictions = ["reject_sender_login_mismatch"]',
    'test.toml:2: smtpd_sender_login_maps: "bogus:/x": unsupported table type "bogus"' +
    " (supported: inline, static, texthash, cidr, regexp, pcre, socketmap)",
  ],
  [
    "a bad smtpd_sender_login_maps table that no restriction uses",
    'smtpd_sender_login_maps = ["bogus:/x"]',
    'test.toml:1: smtpd_sender_login_maps: "bogus:/x": unsupported table type "bogus"' +
    " (supported: inline, static, texthash, cidr, regexp, pcre, socketmap)",
  ],
  [
    "a restriction class that is declared but not defined",
    'smtpd_client_restrictions = ["permit"]\nrestriction_classes = ["myclass"]',
    'test.toml:2: restriction_classes: class "myclass" is declared but has no definition',
  ],
  [
    "a class name used without declaring it",
    'smtpd_recipient_restrictions = ["myclass"]',
    'test.toml:1: smtpd_recipient_restrictions: unknown restriction "myclass"',
  ],
  [
    "a restriction class named like a restriction",
    'restriction_classes = ["reject"]\nreject = ["permit"]',
    'test.toml:1: restriction_classes: "reject" is the name of a restriction',
  ],
  [
    "restriction classes that refer to each other (a -> b -> a)",
    'restriction_classes = ["a", "b"]\n\na = ["permit_mynetworks", "b"]\nb = ["a"]',
    'test.toml:3: b: restriction class "a" refers to itself (a -> b -> a)',
  ],
  [
    "a restriction class that refers to itself",
    'restriction_classes = ["a"]\na = ["reject_unauth_pipelining", "a"]',
    'test.toml:2: a: restriction class "a" refers to itself (a -> a)',
  ],
  [
    "a restriction class that refers to itself through a table value",
    'restriction_classes = ["a"]\na = ["check_recipient_access inline:{ example.com=a }"]',
    'test.toml:2: a: restriction class "a" refers to itself (a -> a)',
  ],
  [
    'a FILTER without "transport:destination"',
    'smtpd_client_restrictions = ["check_client_access inline:{ bad.example=FILTER amavis }"]',
    'test.toml:1: smtpd_client_restrictions: inline:{ bad.example=FILTER amavis }: action "FILTER amavis" requires transport:destination',
  ],
  [
    'a BCC without "@" in a class',
    'restriction_classes = ["c"]\nc = ["check_sender_access inline:{ { x = BCC archive } }"]',
    'test.toml:2: c: inline:{ { x = BCC archive } }: action "BCC archive" requires user@domain target',
  ],
  [
    'a REDIRECT to "$1" in a table without patterns ($1 stays as written)',
    'smtpd_sender_restrictions = ["check_sender_access inline:{ { r@s.example = REDIRECT $1 } }"]',
    'test.toml:1: smtpd_sender_restrictions: inline:{ { r@s.example = REDIRECT $1 } }: action "REDIRECT $1" requires user@domain target',
  ],
  [
    "an access value naming an unknown restriction",
    'smtpd_client_restrictions = ["check_client_access inline:{ x=frobnicate }"]',
    'test.toml:1: smtpd_client_restrictions: unknown restriction "frobnicate"',
  ],
  [
    "warn_if_reject at the end of a list",
    'smtpd_client_restrictions = ["permit_mynetworks", "warn_if_reject"]',
    'test.toml:1: smtpd_client_restrictions: "warn_if_reject" must be followed by a restriction',
  ],
];

for (const [what, toml, message] of ERRORS) {
  Deno.test(`compilePolicy() refuses ${what} with file:line`, () => {
    const err = compileError(toml);
    assert.equal(err.message, message);
    assert.equal(err.file, "test.toml");
    assert.equal(err.line, Number(/^test\.toml:(\d+):/.exec(message)?.[1]));
  });
}

Deno.test("compilePolicy() refuses an unreadable texthash: file with file:line", () => {
  const missing = `${SCRATCH}compile_test_no_such_file`;
  const err = compileError(
    `\nsmtpd_sender_restrictions = ["check_sender_access texthash:${missing}"]`,
  );
  assert.ok(
    err.message.startsWith(
      `test.toml:2: smtpd_sender_restrictions: cannot open table "texthash:${missing}": `,
    ),
    err.message,
  );
});

Deno.test("compilePolicy() says where a relative table path was looked for when it is not found", () => {
  const err = compileError(
    'smtpd_client_restrictions = ["check_client_access texthash:no-such-access-table"]',
  );
  assert.ok(
    err.message.includes(
      `(a relative path is taken from ${Deno.cwd()}, the directory the program runs in, ` +
        "not from the configuration file's: name the file with an absolute path)",
    ),
    err.message,
  );
  // An absolute path needs no such words.
  const abs = compileError(
    'smtpd_client_restrictions = ["check_client_access texthash:/no-such-access-table"]',
  );
  assert.ok(!abs.message.includes("relative path"), abs.message);
});

Deno.test("compilePolicy() names both the config line and the table line for a bad texthash: file", () => {
  withTableFile("ok.example OK\nlonely\n", (path) => {
    const err = compileError(
      `smtpd_sender_restrictions = ["check_sender_access texthash:${path}"]`,
    );
    assert.equal(
      err.message,
      `test.toml:1: smtpd_sender_restrictions: ${path}:2: missing value for key "lonely"`,
    );
  });
});

Deno.test("compilePolicy() refuses a bad value in a texthash: file at start", () => {
  withTableFile("ok.example OK\nheld.example REDIRECT quarantine\n", (path) => {
    const err = compileError(
      `smtpd_client_restrictions = ["check_client_access texthash:${path}"]`,
    );
    assert.equal(
      err.message,
      `test.toml:1: smtpd_client_restrictions: ${path}:2: action "REDIRECT quarantine" requires user@domain target`,
    );
  });
});

for (const type of ["texthash", "cidr", "regexp", "pcre"]) {
  const table = {
    texthash: "ok.example OK\n# a comment\n\nbad.example REJECTX\n",
    cidr: "192.0.2.0/24 OK\n# a comment\n\n198.51.100.0/24 REJECTX\n",
    regexp: "/^ok/ OK\n# a comment\n\n/^bad/ REJECTX\n",
    pcre: "/^ok/ OK\n# a comment\n\n/^bad/ REJECTX\n",
  }[type] as string;
  Deno.test(`compilePolicy() names the ${type}: file and line of a value that is no action`, () => {
    withTableFile(table, (path) => {
      const err = compileError(
        `smtpd_client_restrictions = ["check_client_access ${type}:${path}"]`,
      );
      assert.equal(
        err.message,
        `test.toml:1: smtpd_client_restrictions: ${path}:4: unknown restriction "REJECTX"`,
      );
    });
  });
}

Deno.test("compilePolicy() names the lines of both tables for a bad value in a table a table names", () => {
  withTableFile("bad.example REJECTX\n", (inner) => {
    withTableFile(
      `ok.example OK\nlisted.example check_sender_access texthash:${inner}\n`,
      (outer) => {
        const err = compileError(
          `smtpd_client_restrictions = ["check_client_access texthash:${outer}"]`,
        );
        assert.equal(
          err.message,
          `test.toml:1: smtpd_client_restrictions: ${outer}:2: ${inner}:1: unknown restriction "REJECTX"`,
        );
      },
    );
  });
});

Deno.test("compilePolicy() names smtpd_policy_service_default_action when its action is bad", () => {
  const err = compileError(
    'smtpd_policy_service_default_action = "FOOBAR"\n' +
      'smtpd_recipient_restrictions = ["reject_unauth_destination", ' +
      '"check_policy_service inet:127.0.0.1:10099"]',
  );
  assert.equal(
    err.message,
    "test.toml:2: smtpd_recipient_restrictions: check_policy_service inet:127.0.0.1:10099: " +
      'its default action (smtpd_policy_service_default_action) "FOOBAR": unknown restriction "FOOBAR"',
  );
  const own = compileError(
    'smtpd_recipient_restrictions = ["reject_unauth_destination", ' +
      '"check_policy_service { inet:127.0.0.1:10099, default_action=FOOBAR }"]',
  );
  assert.equal(
    own.message,
    "test.toml:1: smtpd_recipient_restrictions: check_policy_service inet:127.0.0.1:10099: " +
      'its default_action "FOOBAR": unknown restriction "FOOBAR"',
  );
});

Deno.test("compilePolicy() refuses a malformed mynetworks entry when permit_mynetworks uses it", () => {
  const err = compileError(
    'mynetworks = ["bogus"]\nsmtpd_client_restrictions = ["permit_mynetworks"]',
  );
  assert.match(err.message, /mynetworks: cannot parse network "bogus"/);
});

Deno.test("compileLists() compiles the default configuration without warnings", () => {
  const warnings: string[] = [];
  const lists = compileLists(load(""), (w) => warnings.push(w));
  assert.deepEqual(warnings, []);
  assert.deepEqual(Object.keys(lists).sort(), [...LIST_PARAMS, "implicit"].sort());
  // smtpd_reject_unlisted_recipient is on by default, as in Postfix.
  assert.equal(lists.implicit?.recipient?.name, "smtpd_reject_unlisted_recipient");
  assert.equal(lists.implicit?.sender, undefined);
  // Postfix 3's default.
  assert.deepEqual(lists.smtpd_relay_restrictions.map((r) => r.name), [
    "permit_mynetworks",
    "permit_sasl_authenticated",
    "defer_unauth_destination",
  ]);
  assert.deepEqual(lists.smtpd_recipient_restrictions, []);
  assert.deepEqual(lists.smtpd_client_restrictions, []);
});

Deno.test("compileLists() names each restriction with its argument", () => {
  const lists = compileLists(
    load(
      'smtpd_client_restrictions = ["check_client_access inline:{ a=OK }", ' +
        '"reject_rbl_client dnsbl.example=127.0.0.2", "warn_if_reject", "reject"]',
    ),
    () => {},
  );
  assert.deepEqual(lists.smtpd_client_restrictions.map((r) => r.name), [
    "check_client_access inline:{ a=OK }",
    "reject_rbl_client dnsbl.example=127.0.0.2",
    "warn_if_reject reject",
  ]);
});

const OBSOLETE: [old: string, modern: RegExp][] = [
  [
    "reject_unknown_client",
    /"reject_unknown_client" is obsolete; use "reject_unknown_client_hostname"/,
  ],
  [
    "reject_invalid_hostname",
    /"reject_invalid_hostname" is obsolete; use "reject_invalid_helo_hostname"/,
  ],
  [
    "reject_unknown_hostname",
    /"reject_unknown_hostname" is obsolete; use "reject_unknown_helo_hostname"/,
  ],
  [
    "reject_non_fqdn_hostname",
    /"reject_non_fqdn_hostname" is obsolete; use "reject_non_fqdn_helo_hostname"/,
  ],
  ["check_relay_domains", /"check_relay_domains" is obsolete; use permit_auth_destination/],
  ["permit_naked_ip_address", /"permit_naked_ip_address" is obsolete; use permit_mynetworks/],
  ["reject_maps_rbl", /"reject_maps_rbl" is obsolete; use reject_rbl_client/],
];

for (const [old, modern] of OBSOLETE) {
  Deno.test(`compileLists() accepts the obsolete "${old}" and warns with its modern name`, () => {
    const warnings: string[] = [];
    compileLists(load(`smtpd_helo_restrictions = ["${old}"]`), (w) => warnings.push(w));
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(warnings[0] as string, /^smtpd_helo_restrictions: restriction /);
    assert.match(warnings[0] as string, modern);
  });
}

const AUDITS: [what: string, toml: string, expected: string[]][] = [
  ["nothing for the default configuration", "", []],
  [
    "nothing for a typical anti-relay list",
    'smtpd_recipient_restrictions = ["reject_non_fqdn_recipient", "permit_mynetworks",\n' +
    '  "reject_unauth_destination", "check_recipient_access inline:{ a=OK }", "permit"]',
    [],
  ],
  [
    "a recipient list without reject_unauth_destination",
    '# c\nsmtpd_recipient_restrictions = ["permit_mynetworks"]',
    [
      "test.toml:2: smtpd_recipient_restrictions: untrusted clients may relay to any domain: " +
      "add reject_unauth_destination before any permit",
    ],
  ],
  [
    '"permit" before reject_unauth_destination',
    'smtpd_recipient_restrictions = ["permit", "reject_unauth_destination"]',
    [
      'test.toml:1: smtpd_recipient_restrictions: "reject_unauth_destination" can never be reached after "permit"',
      "test.toml:1: smtpd_recipient_restrictions: untrusted clients may relay to any domain: " +
      "add reject_unauth_destination before any permit",
    ],
  ],
  [
    "permit_mx_backup before reject_unauth_destination",
    'smtpd_recipient_restrictions = ["permit_mx_backup", "reject_unauth_destination"]',
    [
      "test.toml:1: smtpd_recipient_restrictions: untrusted clients may relay to any domain: " +
      "add reject_unauth_destination before any permit",
    ],
  ],
  [
    'rules after "reject" that can never be reached',
    'smtpd_client_restrictions = ["permit_mynetworks", "reject", "reject_unknown_client_hostname", "permit"]',
    [
      'test.toml:1: smtpd_client_restrictions: "reject_unknown_client_hostname, permit" can never be reached after "reject"',
    ],
  ],
  [
    'rules after "defer" in a restriction class',
    'restriction_classes = ["c"]\nc = ["defer", "permit"]',
    ['test.toml:2: c: "permit" can never be reached after "defer"'],
  ],
  [
    "mynetworks = 0.0.0.0/0",
    'mynetworks = ["127.0.0.0/8", "0.0.0.0/0"]',
    ["mynetworks includes every address: every client may relay"],
  ],
  [
    "mynetworks = [::]/0",
    'mynetworks = ["[::]/0"]',
    ["mynetworks includes every address: every client may relay"],
  ],
];

for (const [what, toml, expected] of AUDITS) {
  Deno.test(`auditLists() warns about ${what}`, () => {
    assert.deepEqual(auditLists(load(toml)), expected);
  });
}

Deno.test("auditLists() takes defer_unauth_destination as a relay guard, as Postfix does", () => {
  assert.deepEqual(
    auditLists(
      load('smtpd_recipient_restrictions = ["permit_mynetworks", "defer_unauth_destination"]'),
    ),
    [],
  );
});

Deno.test("smtpd_forbid_bare_newline_exclusions: $mynetworks by default, else addresses, names and /files", async () => {
  const byDefault = compileBareNewlineExclusions(load('mynetworks = ["192.0.2.0/24"]'));
  assert.equal(await byDefault("unknown", "192.0.2.9"), true);
  assert.equal(await byDefault("unknown", "127.0.0.1"), false);
  await Deno.mkdir(SCRATCH, { recursive: true });
  const file = await Deno.makeTempFile({ dir: SCRATCH, prefix: "barelf-" });
  try {
    await Deno.writeTextFile(file, "# trusted\n198.51.100.0/24\n");
    const set = compileBareNewlineExclusions(
      load(`smtpd_forbid_bare_newline_exclusions = ["relay.example", "${file}"]`),
    );
    assert.equal(await set("a.relay.example", "203.0.113.1"), true);
    assert.equal(await set("unknown", "198.51.100.7"), true);
    assert.equal(await set("unknown", "192.0.2.9"), false);
    assert.equal(await set("relay.example.org", "203.0.113.1"), false);
    const none = compileBareNewlineExclusions(load("smtpd_forbid_bare_newline_exclusions = []"));
    assert.equal(await none("localhost", "127.0.0.1"), false);
  } finally {
    await Deno.remove(file);
  }
  assert.throws(
    () =>
      compileBareNewlineExclusions(
        load('\nsmtpd_forbid_bare_newline_exclusions = ["/nonexistent/barelf"]'),
      ),
    (e: unknown) =>
      e instanceof ConfigError && e.line === 2 &&
      /cannot read "\/nonexistent\/barelf"/.test(e.message),
  );
});
