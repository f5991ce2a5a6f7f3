import assert from "node:assert/strict";
import { ConfigError } from "./config_error.ts";
import {
  findItemLine,
  findKeyLine,
  firstNonUtf8Line,
  hostnameProblem,
  readConfigFile,
  resolveConfigText,
} from "./load.ts";
import { type ParamName, PARAMS } from "./schema.ts";

const HOST = { systemHostname: "mx.example.com" };

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    return err;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("resolveConfigText() fills every parameter with its default", () => {
  const { config, explicit, file } = resolveConfigText("", HOST);
  assert.equal(explicit.size, 0);
  assert.equal(file, undefined);
  assert.deepEqual(Object.keys(config).sort(), Object.keys(PARAMS).sort());
  assert.equal(config.queue_directory, "var/spool");
  assert.deepEqual(config.smtpd_listen, ["127.0.0.1:2525"]);
  assert.equal(config.myhostname, "mx.example.com");
  assert.equal(config.mydomain, "example.com");
  assert.equal(config.myorigin, "mx.example.com");
  assert.deepEqual(config.mydestination, ["mx.example.com", "localhost.example.com", "localhost"]);
  assert.deepEqual(config.mynetworks, ["127.0.0.0/8", "[::1]/128"]);
  assert.equal(config.smtpd_banner, "mx.example.com ESMTP deno-smtpd");
  assert.equal(config.smtpd_timeout, 300);
  assert.equal(config.message_size_limit, 10240000);
  assert.equal(config.strict_rfc821_envelopes, false);
  assert.equal(config.smtpd_forbid_bare_newline, "normalize");
  assert.ok(Object.isFrozen(config));
  assert.ok(Object.isFrozen(config.mydestination));
});

Deno.test("resolveConfigText() uses localhost and localdomain without a system host name", () => {
  const { config } = resolveConfigText("");
  assert.equal(config.myhostname, "localhost.localdomain");
  assert.equal(config.mydomain, "localdomain");
  assert.equal(config.smtpd_banner, "localhost.localdomain ESMTP deno-smtpd");
});

Deno.test("resolveConfigText() reads typed values and records them as explicit", () => {
  const { config, explicit } = resolveConfigText(
    [
      'myhostname = "smtp.example.org"',
      "message_size_limit = 2048000",
      "smtpd_helo_required = true",
      'smtpd_timeout = "5m"',
      'mynetworks = ["10.0.0.0/8", "192.168.0.0/16 172.16.0.0/12"]',
      'smtpd_forbid_bare_newline = "reject"',
    ].join("\n"),
    HOST,
  );
  assert.equal(config.myhostname, "smtp.example.org");
  assert.equal(config.mydomain, "example.org");
  assert.equal(config.message_size_limit, 2048000);
  assert.equal(config.smtpd_helo_required, true);
  assert.equal(config.smtpd_timeout, 300);
  assert.deepEqual(config.mynetworks, ["10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12"]);
  assert.equal(config.smtpd_forbid_bare_newline, "reject");
  assert.deepEqual([...explicit].sort(), [
    "message_size_limit",
    "myhostname",
    "mynetworks",
    "smtpd_forbid_bare_newline",
    "smtpd_helo_required",
    "smtpd_timeout",
  ]);
});

Deno.test("resolveConfigText() accepts a list as a comma/space separated string", () => {
  const { config } = resolveConfigText('relay_domains = "a.example, b.example  c.example,"', HOST);
  assert.deepEqual(config.relay_domains, ["a.example", "b.example", "c.example"]);
});

Deno.test("resolveConfigText() names the line of an unknown key", () => {
  const text = [
    "# comment",
    "",
    'queue_directory = "/var/spool/x"',
    "",
    "# another comment",
    "smtpd_timeout = 60",
    'mail_nam = "x"',
    "hopcount_limit = 20",
  ].join("\n");
  const err = configError(() => resolveConfigText(text, { file: "smtpd.toml" }));
  assert.equal(err.line, 7);
  assert.equal(err.file, "smtpd.toml");
  assert.equal(err.key, "mail_nam");
  assert.match(err.message, /^smtpd\.toml:7: /);
  assert.match(err.message, /unknown parameter "mail_nam"/);
  assert.match(err.message, /did you mean "mail_name"/);
});

Deno.test("resolveConfigText() uses <config> as the file name when none is given", () => {
  const err = configError(() => resolveConfigText("\n\nbogus_parameter_name = 1"));
  assert.match(err.message, /^<config>:3: unknown parameter "bogus_parameter_name"$/);
});

Deno.test("resolveConfigText() refuses an unknown table", () => {
  const err = configError(() => resolveConfigText("hopcount_limit = 5\n[smtpd]\nx = 1"));
  assert.equal(err.line, 2);
  assert.match(err.message, /unknown parameter "smtpd"/);
});

const BAD_VALUES: [string, string, number, RegExp][] = [
  ["a number for a string", "\nmail_name = 5", 2, /mail_name: expected a string, got number 5/],
  ["a string for an integer", 'message_size_limit = "10"', 1, /expected an integer/],
  ["a float for an integer", "message_size_limit = 1.5", 1, /expected an integer/],
  ["a string for a boolean", 'smtpd_helo_required = "maybe"', 1, /expected true\/false/],
  ["a bad time", 'smtpd_timeout = "5x"', 1, /expected a time/],
  ["a negative time", "smtpd_timeout = -5", 1, /expected a time/],
  ["a number list", "mynetworks = [1, 2]", 1, /expected an array of strings/],
  ["a table for a list", "\n\nmynetworks = { a = 1 }", 3, /got a table/],
  [
    "an enum outside its choices",
    'smtpd_forbid_bare_newline = "drop"',
    1,
    /one of normalize, yes, reject/,
  ],
  [
    "a misspelt notify class",
    '\nnotify_classes = ["resource", "sofware"]',
    2,
    /"sofware" is not one of policy/,
  ],
  [
    "a misspelt notify class in a string",
    'notify_classes = "protocol,polcy"',
    1,
    /"polcy" is not one/,
  ],
  [
    "a 4xx bare LF reject code (Postfix takes 500-599)",
    "\nsmtpd_forbid_bare_newline_reject_code = 450",
    2,
    /smtpd_forbid_bare_newline_reject_code: value 450 is out of range: must be at least 500/,
  ],
  [
    "a bare LF reject code past 599",
    "smtpd_forbid_bare_newline_reject_code = 600",
    1,
    /value 600 is out of range/,
  ],
  ["an integer below min", "\nline_length_limit = 79", 2, /out of range: must be at least 80/],
  ["a time below min", "smtpd_timeout = 0", 1, /value 0 is out of range: must be at least 1/],
  ["a recipient limit of 0", "smtpd_recipient_limit = 0", 1, /must be at least 1/],
  ["a slow-client wait of 0", "\nsmtpd_slow_client_wait = 0", 2, /must be at least 1/],
  ["a bad slow-client wait", 'smtpd_slow_client_wait = "10q"', 1, /expected a time/],
  ["a negative slow-client rate", "smtpd_slow_client_rate = -1", 1, /must be at least 0/],
  ["a slow-client rate in text", 'smtpd_slow_client_rate = "fast"', 1, /expected an integer/],
  [
    "an IPv6 prefix length over 128",
    "\nsmtpd_client_ipv6_prefix_length = 129",
    2,
    /value 129 is out of range: must be at most 128/,
  ],
  [
    "an IPv4 prefix length over 32",
    "smtpd_client_ipv4_prefix_length = 33",
    1,
    /value 33 is out of range: must be at most 32/,
  ],
  // main.cf habits: values without quotes.
  [
    "an unquoted text value (main.cf style)",
    "\nmyhostname = mail.example.com",
    2,
    /invalid value \(a text value is quoted in TOML, unlike main\.cf: myhostname = "mail\.example\.com"\)$/,
  ],
  [
    "an unquoted time",
    "smtpd_timeout = 5m # five minutes",
    1,
    /illegal character in numeric literal \(a text value is quoted in TOML, unlike main\.cf: smtpd_timeout = "5m"\)$/,
  ],
  // A key pasted into the file: its text is not repeated into the log.
  [
    "a private key's line pasted as a value",
    "smtpd_tls_key_file = MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQChffpBxtW2ddRz",
    1,
    /^f\.toml:1: invalid value$/,
  ],
  [
    "unquoted list items",
    'mynetworks = [127.0.0.0/8, "10.0.0.0/8"]',
    1,
    /\(each list item is quoted in TOML, unlike main\.cf: mynetworks = \["127\.0\.0\.0\/8", "10\.0\.0\.0\/8"\]\)$/,
  ],
  [
    "a TOML time where a time in seconds belongs",
    "smtpd_timeout = 10:00:00",
    1,
    /smtpd_timeout: expected a time such as .*, got a TOML date or time$/,
  ],
  // A timer of 2^31 ms or more fires at once: a session would be timed out
  // in a busy loop of 1 ms timers instead of waiting.
  [
    "a time in milliseconds (past the longest timer)",
    "smtpd_timeout = 3000000",
    1,
    /value 3000000 is out of range: must be at most 2147483 seconds \(24 days\)/,
  ],
  [
    "a time in weeks past the longest timer",
    '\nsmtpd_policy_service_max_idle = "4w"',
    2,
    /smtpd_policy_service_max_idle: value 2419200 is out of range: must be at most 2147483/,
  ],
];

for (const [what, text, line, re] of BAD_VALUES) {
  Deno.test(`resolveConfigText() refuses ${what} and names its line`, () => {
    const err = configError(() => resolveConfigText(text, { file: "f.toml" }));
    assert.equal(err.line, line);
    assert.match(err.message, new RegExp(`^f\\.toml:${line}: `));
    assert.match(err.message, re);
  });
}

Deno.test("resolveConfigText() accepts the longest time a timer takes", () => {
  const { config } = resolveConfigText('smtpd_timeout = "24d"\nanvil_rate_time_unit = 2147483');
  assert.equal(config.smtpd_timeout, 24 * 86400);
  assert.equal(config.anvil_rate_time_unit, 2147483);
  const err = configError(() => resolveConfigText("", { overrides: ["smtpd_timeout=25d"] }));
  assert.match(err.message, /-o smtpd_timeout: value 2160000 is out of range/);
});

Deno.test("resolveConfigText() accepts the minimum itself", () => {
  const { config } = resolveConfigText("line_length_limit = 80\nsmtpd_timeout = 1", HOST);
  assert.equal(config.line_length_limit, 80);
  assert.equal(config.smtpd_timeout, 1);
});

const OVERRIDES: [string, ParamName, unknown][] = [
  ["smtpd_helo_required=yes", "smtpd_helo_required", true],
  ["smtpd_helo_required=no", "smtpd_helo_required", false],
  ["disable_vrfy_command=TRUE", "disable_vrfy_command", true],
  ["smtpd_timeout=5m", "smtpd_timeout", 300],
  ["smtpd_timeout=1h", "smtpd_timeout", 3600],
  ["smtpd_slow_client_wait=2m", "smtpd_slow_client_wait", 120],
  ["smtpd_slow_client_rate=100", "smtpd_slow_client_rate", 100],
  ["smtpd_timeout=1d", "smtpd_timeout", 86400],
  ["smtpd_timeout=1w", "smtpd_timeout", 604800],
  ["smtpd_timeout=45s", "smtpd_timeout", 45],
  ["smtpd_timeout=45", "smtpd_timeout", 45],
  ["message_size_limit=5000", "message_size_limit", 5000],
  ["mynetworks=10.0.0.0/8, [::1]/128", "mynetworks", ["10.0.0.0/8", "[::1]/128"]],
  ["mynetworks=", "mynetworks", []],
  ["mail_name=a=b", "mail_name", "a=b"],
  ["smtpd_forbid_bare_newline=reject", "smtpd_forbid_bare_newline", "reject"],
  // Blanks around "=" as in main.cf (Postfix's split_nameval trims both sides).
  ["smtpd_tls_security_level = may", "smtpd_tls_security_level", "may"],
  ["smtpd_timeout =\t5m ", "smtpd_timeout", 300],
];

for (const [o, key, value] of OVERRIDES) {
  Deno.test(`resolveConfigText() applies -o ${o}`, () => {
    const { config, explicit } = resolveConfigText("", { ...HOST, overrides: [o] });
    assert.deepEqual(config[key], value);
    assert.ok(explicit.has(key));
  });
}

Deno.test("resolveConfigText() lets -o override the file, last one winning", () => {
  const { config } = resolveConfigText("smtpd_timeout = 10", {
    ...HOST,
    overrides: ["smtpd_timeout=20", "smtpd_timeout=2m"],
  });
  assert.equal(config.smtpd_timeout, 120);
});

const BAD_OVERRIDES: [string, RegExp][] = [
  ["smtpd_timeout", /-o smtpd_timeout: expected name=value/],
  ["no_such_thing=1", /unknown parameter "no_such_thing"/],
  [
    "smtpd_timout=1",
    /^-o smtpd_timout=1: unknown parameter "smtpd_timout" \(did you mean "smtpd_timeout"\?\)$/,
  ],
  ["smtpd_helo_required=maybe", /-o smtpd_helo_required: expected true\/false/],
  ["message_size_limit=10k", /-o message_size_limit: expected an integer/],
  ["message_size_limit=100", /must be at least 1024/],
  ["smtpd_timeout=soon", /expected a time/],
];

for (const [o, re] of BAD_OVERRIDES) {
  Deno.test(`resolveConfigText() refuses -o ${o}`, () => {
    const err = configError(() => resolveConfigText("", { overrides: [o] }));
    assert.match(err.message, re);
    assert.equal(err.line, undefined);
  });
}

Deno.test("resolveConfigText() expands $name and ${name} references", () => {
  const { config } = resolveConfigText(
    [
      'mail_name = "Mailer"',
      'smtpd_banner = "${myhostname} ESMTP $mail_name ($mydomain)"',
      'always_bcc = "archive@$mydomain"',
      'relay_domains = ["relay.$mydomain"]',
    ].join("\n"),
    HOST,
  );
  assert.equal(config.smtpd_banner, "mx.example.com ESMTP Mailer (example.com)");
  assert.equal(config.always_bcc, "archive@example.com");
  assert.deepEqual(config.relay_domains, ["relay.example.com"]);
});

Deno.test("resolveConfigText() expands the default banner from the system host name", () => {
  const { config } = resolveConfigText("", HOST);
  assert.equal(PARAMS.smtpd_banner.default, "$myhostname ESMTP $mail_name");
  assert.equal(config.smtpd_banner, "mx.example.com ESMTP deno-smtpd");
});

Deno.test("resolveConfigText() expands references in -o values", () => {
  const { config } = resolveConfigText("", { ...HOST, overrides: ["myorigin=$mydomain"] });
  assert.equal(config.myorigin, "example.com");
});

// Regression (found by these tests, fixed): a list item that refers to a list parameter stays one item with
// spaces in it ("a b c"), so relay_domains = "$mydestination" (Postfix's
// old default) matches no domain. See the report.
Deno.test({
  name: "resolveConfigText() splits a list item that expands to a list",
  fn: () => {
    const { config } = resolveConfigText('relay_domains = ["$mydestination"]', HOST);
    assert.deepEqual(config.relay_domains, [
      "mx.example.com",
      "localhost.example.com",
      "localhost",
    ]);
  },
});

Deno.test("resolveConfigText() refuses a recursive $name reference", () => {
  const text = 'mail_name = "x"\nsmtpd_banner = "$myhostname"\nmyhostname = "$smtpd_banner"';
  const err = configError(() => resolveConfigText(text, { file: "f.toml" }));
  assert.match(err.message, /recursive \$name reference/);
  assert.ok(err.line === 2 || err.line === 3, `line ${err.line}`);
});

Deno.test("resolveConfigText() refuses a self reference", () => {
  const err = configError(() => resolveConfigText('\nmail_name = "x $mail_name"', { file: "f" }));
  assert.match(err.message, /^f:2: mail_name: recursive \$name reference$/);
});

Deno.test("resolveConfigText() refuses an undefined $name reference", () => {
  const err = configError(() =>
    resolveConfigText('\n\nsmtpd_banner = "$myhostname $no_such_param"', { file: "f" })
  );
  assert.equal(err.line, 3);
  assert.equal(err.key, "smtpd_banner");
  assert.match(err.message, /undefined parameter "\$no_such_param"/);
});

Deno.test("resolveConfigText() reports a TOML syntax error with its line", () => {
  const cases: [string, number][] = [
    ['mail_name = "x"\n\nsmtpd_timeout = ', 3],
    ["hopcount_limit = 5\nmynetworks = [1,", 2],
    ['mail_name = "a"\nhopcount_limit = 1\nmail_name = "b"', 3],
    ['mail_name = "unterminated', 1],
  ];
  for (const [text, line] of cases) {
    const err = configError(() => resolveConfigText(text, { file: "f.toml" }));
    assert.equal(err.line, line, text);
    assert.match(err.message, new RegExp(`^f\\.toml:${line}: `), text);
    assert.ok(!err.message.includes("\n"), "one line");
  }
});

Deno.test("findKeyLine() finds bare, quoted and dotted keys, not comments", () => {
  const text = '# mail_name = "no"\nhopcount_limit = 1\n  "mail_name" = "x"\nmynetworks.x = 1';
  assert.equal(findKeyLine(text, "mail_name"), 3);
  assert.equal(findKeyLine(text, "hopcount_limit"), 2);
  assert.equal(findKeyLine(text, "mynetworks"), 4);
  assert.equal(findKeyLine(text, "always_bcc"), undefined);
});

const SAMPLE = new URL("../../config/smtpd.toml", import.meta.url);

Deno.test("config/smtpd.toml lists every parameter of PARAMS with its description", async () => {
  const text = await Deno.readTextFile(SAMPLE);
  const lines = text.split("\n");
  for (const [name, spec] of Object.entries(PARAMS)) {
    const at = lines.findIndex((l) => new RegExp(`^#?${name} = `).test(l));
    assert.ok(at > 0, `${name} is missing from config/smtpd.toml`);
    assert.equal(lines[at - 1], `# ${spec.doc}`, `${name}: description above it`);
  }
  const listed = lines.map((l) => /^#?([a-z_0-9]+) = /.exec(l)?.[1]).filter((n) => n);
  assert.deepEqual(listed.sort(), Object.keys(PARAMS).sort(), "no extra or repeated keys");
});

Deno.test("config/smtpd.toml loads, and uncommented gives the defaults", async () => {
  const text = await Deno.readTextFile(SAMPLE);
  const asIs = resolveConfigText(text, { ...HOST, file: "config/smtpd.toml" });
  const defaults = resolveConfigText("", HOST);
  assert.deepEqual(asIs.config, defaults.config);
  const uncommented = text.replace(/^#([a-z_0-9]+ = )/gm, "$1");
  const all = resolveConfigText(uncommented, HOST);
  assert.equal(all.explicit.size, Object.keys(PARAMS).length);
  assert.deepEqual(all.config, defaults.config);
});

// Regression: a file value that -o replaces was still judged, and its
// error, thrown with the parameter's key, was then said as the override's
// ("-o smtpd_listen_threads=2: value 100 is out of range"): the override
// named for a value it does not hold. As Postfix's -o, the override
// replaces the file's value, which is then not judged.
Deno.test("resolveConfigText() does not judge a file value that -o replaces", () => {
  const { config, explicit } = resolveConfigText(
    'smtpd_listen_threads = 100\nsmtpd_tls_security_level = "sometimes"',
    { ...HOST, overrides: ["smtpd_listen_threads=2", " smtpd_tls_security_level =none"] },
  );
  assert.equal(config.smtpd_listen_threads, 2);
  assert.equal(config.smtpd_tls_security_level, "none");
  assert.ok(explicit.has("smtpd_listen_threads"));
  // Not replaced: still judged, at the file's line.
  const err = configError(() =>
    resolveConfigText("\nsmtpd_listen_threads = 100", {
      ...HOST,
      overrides: ["smtpd_timeout=20"],
    })
  );
  assert.equal(err.line, 2);
  assert.match(err.message, /smtpd_listen_threads: value 100 is out of range/);
});

Deno.test("findItemLine() finds a quoted item on its own line of the key's value, not past it", () => {
  const text = [
    "smtpd_helo_restrictions = [",
    '  "permit_mynetworks",',
    "  'reject_x',",
    "]",
    'smtpd_recipient_restrictions = ["permit", "reject_y"]',
    "[smtpd_restriction_classes_table]",
    'z = ["reject_z"]',
  ].join("\n");
  assert.equal(findItemLine(text, "smtpd_helo_restrictions", "reject_x"), 3);
  assert.equal(findItemLine(text, "smtpd_recipient_restrictions", "reject_y"), 5);
  // Not in the key's value (only in a later key's): the key's line.
  assert.equal(findItemLine(text, "smtpd_helo_restrictions", "reject_y"), 1);
  assert.equal(findItemLine(text, "smtpd_recipient_restrictions", "reject_z"), 5);
  assert.equal(findItemLine(text, "smtpd_helo_restrictions"), 1);
  assert.equal(findItemLine(text, "mail_name", "x"), undefined);
});

Deno.test("findItemLine() finds an item that is a word of a quoted string (restriction and table in one)", () => {
  const text = [
    "smtpd_client_restrictions = [",
    "  # check_client_access texthash:/etc/old",
    '  "permit_mynetworks",',
    '  "check_client_access texthash:/etc/a.map",',
    '  "check_client_access inline:{ 192.0.2.1 = REJEKT }", "reject_rbl_client zen.example"',
    "]",
  ].join("\n");
  const key = "smtpd_client_restrictions";
  assert.equal(findItemLine(text, key, "texthash:/etc/a.map"), 4);
  assert.equal(findItemLine(text, key, "inline:{ 192.0.2.1 = REJEKT }"), 5);
  assert.equal(findItemLine(text, key, "zen.example"), 5);
  // A comment is no item; part of a word is no word.
  assert.equal(findItemLine(text, key, "texthash:/etc/old"), 1);
  assert.equal(findItemLine(text, key, "texthash:/etc/a"), 1);
  // The item quoted on its own comes first, a word of a table value after.
  const own = 'x = [\n  "inline:{ a = reject_rbl_client }",\n  "reject_rbl_client",\n]';
  assert.equal(findItemLine(own, "x", "reject_rbl_client"), 3);
});

Deno.test("placeOf() names the -o that set a key, else the file's line of the key or item", () => {
  const loaded = resolveConfigText(
    'smtpd_listen = ["127.0.0.1:25"]\nmynetworks = [\n  "10.0.0.0/8",\n]',
    {
      ...HOST,
      file: "f.toml",
      overrides: ["smtpd_listen = 127.0.0.1:26", "smtpd_listen=[::1]:25"],
    },
  );
  assert.equal(loaded.placeOf("smtpd_listen"), "-o smtpd_listen=[::1]:25: ");
  assert.equal(loaded.placeOf("mynetworks", "10.0.0.0/8"), "f.toml:3: ");
  assert.equal(loaded.placeOf("mail_name"), "f.toml: ");
  assert.equal(resolveConfigText("", HOST).placeOf("mail_name"), "<config>: ");
});

// Before, a file saved as Latin-1 was read with U+FFFD in place of each such
// byte, and "configuration OK": mail_name = "caf\xe9" became "caf\uFFFD".
Deno.test("readConfigFile() refuses a file that is not UTF-8, at the line of the first bad byte", async () => {
  const file = await Deno.makeTempFile({ suffix: ".toml" });
  try {
    const latin1 = new Uint8Array([...new TextEncoder().encode('a = "x"\nb = "caf'), 0xe9, 0x22]);
    await Deno.writeFile(file, latin1);
    const err = await readConfigFile(file).then(() => assert.fail("read"), (e) => e);
    assert.ok(err instanceof ConfigError);
    assert.equal(
      err.message,
      `${file}:2: not UTF-8 (a TOML file is UTF-8: save it so, e.g. iconv -f latin1 -t utf-8)`,
    );
    await Deno.writeTextFile(file, 'mail_name = "café ✓"\n');
    assert.equal(await readConfigFile(file), 'mail_name = "café ✓"\n');
  } finally {
    await Deno.remove(file);
  }
});

// Before, a FIFO renamed over the file between the stat and the read kept
// the read waiting for a writer for ever: the start, or this reload and
// every later one (each SIGHUP waits for the one before).
Deno.test("readConfigFile() gives up on a FIFO put at the path between the stat and the read", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/smtpd.toml`;
  await Deno.writeTextFile(file, 'mail_name = "x"\n');
  const read = Deno.readFile;
  Deno.readFile = (path, options) => {
    Deno.removeSync(file);
    new Deno.Command("mkfifo", { args: [file] }).outputSync();
    return read(path, options);
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const reading = readConfigFile(file, 200).then(() => "read", (e: Error) => e.message);
  try {
    const outcome = await Promise.race([
      reading,
      new Promise((r) => (timer = setTimeout(() => r("still reading after 5 s"), 5_000))),
    ]);
    assert.equal(outcome, "no data within 0.2 s: not a regular file now?");
  } finally {
    clearTimeout(timer);
    Deno.readFile = read;
    // A writer that comes and goes ends the open still waiting on the FIFO.
    await new Deno.Command("timeout", { args: ["5", "sh", "-c", `: > "$1"`, "sh", file] })
      .output();
    await reading;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("firstNonUtf8Line() counts lines up to the first byte sequence that is not UTF-8", () => {
  const enc = (s: string) => [...new TextEncoder().encode(s)];
  assert.equal(firstNonUtf8Line(new Uint8Array([0xff])), 1);
  assert.equal(firstNonUtf8Line(new Uint8Array([...enc("é\n\n# "), 0xc3, 0x0a])), 3);
  // A sequence cut at the line's end is the line's, not the next one's.
  assert.equal(firstNonUtf8Line(new Uint8Array([...enc("x\n"), 0xe2, 0x9c])), 2);
});

Deno.test("hostnameProblem() follows Postfix's valid_hostname()", () => {
  for (const ok of ["mx.example.com", "localhost", "mx_1.example", "a-b.example", "x1"]) {
    assert.equal(hostnameProblem(ok), undefined, ok);
  }
  assert.equal(hostnameProblem(""), "empty");
  assert.equal(hostnameProblem("mx.example.com."), "misplaced dot");
  assert.equal(hostnameProblem(".example"), "misplaced dot");
  assert.equal(hostnameProblem("-mx.example"), "misplaced hyphen");
  assert.equal(hostnameProblem("mx-.example"), "misplaced hyphen");
  assert.equal(hostnameProblem("192.0.2.1"), "numeric");
  assert.equal(hostnameProblem("mx example"), "only letters, digits, - and _ in a label");
  assert.equal(hostnameProblem("mx.exämple"), "only letters, digits, - and _ in a label");
  assert.equal(hostnameProblem(`${"a".repeat(64)}.example`), "a label longer than 63 characters");
  assert.equal(hostnameProblem(`${"a.".repeat(128)}b`), "longer than 255 characters");
});

Deno.test("resolveConfigText() refuses a control character in a text value, not a tab", () => {
  const err = configError(() =>
    resolveConfigText('mail_name = "a"\nsmtpd_banner = "x\\r\\n250 y"', { ...HOST, file: "f" })
  );
  assert.equal(err.line, 2);
  assert.match(err.detail, /^smtpd_banner: control character U\+000D in the text/);
  assert.equal(resolveConfigText('smtpd_banner = "a\\tb"', HOST).config.smtpd_banner, "a\tb");
  // A list string may span lines: whitespace separates its items.
  assert.deepEqual(
    resolveConfigText('mynetworks = """\n127.0.0.0/8\n10.0.0.0/8"""', HOST).config.mynetworks,
    ["127.0.0.0/8", "10.0.0.0/8"],
  );
});

Deno.test("resolveConfigText(): a system host name without a dot gets mydomain as set, else localdomain (Postfix's check_myhostname)", () => {
  const vm = { systemHostname: "vm" };
  let { config } = resolveConfigText("", vm);
  assert.equal(config.myhostname, "vm.localdomain");
  assert.equal(config.mydomain, "localdomain");
  assert.deepEqual(config.mydestination, ["vm.localdomain", "localhost.localdomain", "localhost"]);
  ({ config } = resolveConfigText('mydomain = "example.net"', vm));
  assert.equal(config.myhostname, "vm.example.net");
  assert.equal(config.myorigin, "vm.example.net");
  // A name with a dot is taken as it is, and mydomain set does not change it.
  ({ config } = resolveConfigText('mydomain = "example.net"', {
    systemHostname: "mx.example.org",
  }));
  assert.equal(config.myhostname, "mx.example.org");
  // Set by hand, myhostname is never completed.
  ({ config } = resolveConfigText('myhostname = "mx"', vm));
  assert.equal(config.myhostname, "mx");
});
