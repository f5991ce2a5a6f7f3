import assert from "node:assert/strict";
import { patternTable } from "./pattern_table.ts";
import { TableSyntaxError } from "./text_table.ts";
import { type Dialect, translatePattern } from "./regex_translate.ts";

async function get(dialect: Dialect, text: string, key: string): Promise<string | undefined> {
  const r = await patternTable(`${dialect}:test`, text, dialect).lookup(key);
  return r.kind === "found" ? r.value : undefined;
}

function syntaxError(dialect: Dialect, text: string): TableSyntaxError {
  try {
    patternTable(`${dialect}:test`, text, dialect);
  } catch (err) {
    assert.ok(err instanceof TableSyntaxError, String(err));
    return err;
  }
  assert.fail(`expected ${JSON.stringify(text)} to be refused`);
}

/** [feature, table, key, expected result (undefined: not found)] for both dialects. */
const COMMON: [string, string, string, string | undefined][] = [
  ["a match returns the result", "/^spam@/ REJECT", "spam@example.com", "REJECT"],
  ["no match is not found", "/^spam@/ REJECT", "ham@example.com", undefined],
  ["the first matching line wins", "/a/ first\n/a/ second", "a", "first"],
  ["matching is case-insensitive by default", "/^SPAM@/ REJECT", "spam@x", "REJECT"],
  ["flag i makes it case-sensitive", "/^SPAM@/i REJECT", "spam@x", undefined],
  ["flag i: the exact case still matches", "/^SPAM@/i REJECT", "SPAM@x", "REJECT"],
  [
    "!/pattern/ matches when the pattern does not",
    "!/@example\\.com$/ 554 outsider",
    "a@other.org",
    "554 outsider",
  ],
  [
    "!/pattern/ does not match when it does",
    "!/@example\\.com$/ 554 outsider",
    "a@example.com",
    undefined,
  ],
  [
    "$1 and $2 are substituted",
    "/^(.*)-outgoing@(.*)$/ 550 Use $1@$2 instead",
    "list-outgoing@example.com",
    "550 Use list@example.com instead",
  ],
  ["${1} and $(2) are substituted", "/^(.*)-out@(.*)$/ 550 ${1}x$(2)", "a-out@b", "550 axb"],
  ["$$ is a dollar sign", "/^(x)$/ 550 costs $$5 for $1", "x", "550 costs $5 for x"],
  ["substitution keeps the key's case", "/^(.*)@/ 550 no $1", "John@x", "550 no John"],
  [
    "if /.../ applies the inner lines only when it matches",
    "if /@example\\.com$/\n/^postmaster@/ OK\nendif\n/^postmaster@/ REJECT",
    "postmaster@example.com",
    "OK",
  ],
  [
    "if /.../ skips the inner lines otherwise",
    "if /@example\\.com$/\n/^postmaster@/ OK\nendif\n/^postmaster@/ REJECT",
    "postmaster@other.org",
    "REJECT",
  ],
  [
    "if !/.../ applies when the pattern does not match",
    "if !/^owner-/\n/^(.*)-outgoing@(.*)$/ 550 Use ${1}@${2} instead\nendif",
    "x-outgoing@y",
    "550 Use x@y instead",
  ],
  [
    "if !/.../ skips when it matches",
    "if !/^owner-/\n/-outgoing@/ 550 no\nendif",
    "owner-x-outgoing@y",
    undefined,
  ],
  ["if ... endif nests", "if /a/\nif /b/\n/c/ abc\nendif\n/d/ ad\nendif", "a-d", "ad"],
  ["nested if: all levels must match", "if /a/\nif /b/\n/c/ abc\nendif\nendif", "a-c", undefined],
  ["nested if: inner match", "if /a/\nif /b/\n/c/ abc\nendif\nendif", "abc", "abc"],
  ["any delimiter works", "#^a#x\n~b~ tilde\n|c| pipe", "b", "tilde"],
  ["an escaped delimiter is part of the pattern", "/a\\/b/ slash", "a/b", "slash"],
  ["comments and blank lines are skipped", "# comment\n\n   # indented comment\n/x/ X", "x", "X"],
  [
    "a continuation line extends the result",
    "/x/ 550 one\n  two\n\tthree",
    "x",
    "550 one two three",
  ],
  [
    "the pattern is applied to the whole key, unanchored",
    "/example/ hit",
    "user@sub.example.com",
    "hit",
  ],
  ["flag m: ^ matches after a newline", "/^b/m hit", "a\nb", "hit"],
  ["without flag m ^ is the start only", "/^b/ hit", "a\nb", undefined],
  ["[[:alpha:]] POSIX classes", "/^[[:digit:]]+\\.[[:alpha:]]+$/ hit", "123.abc", "hit"],
  ["[[:upper:]] is case-insensitive by default", "/^[[:upper:]]+$/ hit", "abc", "hit"],
  ["[[:upper:]] with flag i", "/^[[:upper:]]+$/i hit", "abc", undefined],
  ["bracket with ] first", "/^[]x]+$/ hit", "]x]", "hit"],
  ["negated bracket, case-insensitive", "/^[^a]+$/ hit", "AAA", undefined],
  ["a range folds case", "/^[a-c]+$/ hit", "ABC", "hit"],
  [
    "alternation and groups",
    "/^(mail|smtp)\\.example\\.(com|net)$/ $1",
    "SMTP.example.net",
    "SMTP",
  ],
  ["interval quantifier", "/^a{2,3}$/ hit", "aaa", "hit"],
  ["interval quantifier upper bound", "/^a{2,3}$/ hit", "aaaa", undefined],
  ["back-reference", "/^(.)\\1$/ hit", "xX", "hit"],
];

for (const dialect of ["regexp", "pcre"] as const) {
  for (const [feature, table, key, want] of COMMON) {
    Deno.test(`${dialect}: ${feature}`, async () => {
      assert.equal(await get(dialect, table, key), want);
    });
  }
}

const PCRE_ONLY: [string, string, string, string | undefined][] = [
  ["\\d \\w \\s escapes", "/^\\d+\\s\\w+$/ hit", "12 ab", "hit"],
  [
    "lookahead (?!...)",
    "/^(?!owner-)(.*)-outgoing@(.*)/ 550 Use ${1}@${2} instead",
    "list-outgoing@x",
    "550 Use list@x instead",
  ],
  [
    "lookahead refuses",
    "/^(?!owner-)(.*)-outgoing@(.*)/ 550 x",
    "owner-list-outgoing@x",
    undefined,
  ],
  ["lookbehind (?<=...)", "/(?<=@)example\\.com$/ hit", "a@example.com", "hit"],
  ["non-capturing group and lazy quantifier", "/^(?:a+?)(b)$/ $1", "aab", "b"],
  ["named group (?P<name>...)", "/^(?P<user>[^@]+)@/ $1", "joe@x", "joe"],
  ["\\Q...\\E quotes metacharacters", "/^\\Qa.b\\E$/ hit", "a.b", "hit"],
  ["\\Q...\\E: the dot is literal", "/^\\Qa.b\\E$/ hit", "axb", undefined],
  ["flag s (default on): . matches a newline", "/a.b/ hit", "a\nb", "hit"],
  ["flag s toggled off", "/a.b/s hit", "a\nb", undefined],
  ["flag x: white space in the pattern is ignored", "/^ a b c $/x hit", "abc", "hit"],
  ["flag A anchors at the start", "/b/A hit", "ab", undefined],
  ["flag A: a match at the start", "/a/A hit", "ab", "hit"],
  ["\\x41 hex escape", "/^\\x41$/i hit", "A", "hit"],
];

for (const [feature, table, key, want] of PCRE_ONLY) {
  Deno.test(`pcre: ${feature}`, async () => {
    assert.equal(await get("pcre", table, key), want);
  });
}

const REGEXP_ONLY: [string, string, string, string | undefined][] = [
  ["a backslash in a bracket is literal (POSIX)", "/^[\\.]+$/ hit", "\\.\\", "hit"],
  ["\\d is a literal d (POSIX), not a digit", "/^\\d$/ hit", "1", undefined],
  ["\\< and \\> word boundaries (glibc)", "/\\<spam\\>/ hit", "no spam here", "hit"],
  ["\\< does not match inside a word", "/\\<spam/ hit", "nospam", undefined],
];

for (const [feature, table, key, want] of REGEXP_ONLY) {
  Deno.test(`regexp: ${feature}`, async () => {
    assert.equal(await get("regexp", table, key), want);
  });
}

const PCRE_REFUSED: [string, RegExp][] = [
  ["/a++/ x", /possessive quantifiers/],
  ["/a{2}+/ x", /possessive quantifiers/],
  ["/(?>a)/ x", /atomic groups/],
  ["/\\Aabc/ x", /\\A/],
  ["/abc\\Z/ x", /\\Z/],
  ["/abc\\z/ x", /\\z/],
  ["/(?i)abc/ x", /inline option settings/],
  ["/(?i:abc)/ x", /inline option settings/],
  ["/(a|(?R))/ x", /recursion/],
  ["/(a)(?1)/ x", /recursion/],
  ["/foo\\Kbar/ x", /\\K/],
  ["/(?C1)a/ x", /callouts/],
  ["/(?(1)a|b)/ x", /conditional/],
  ["/(*FAIL)/ x", /backtracking verbs/],
  ["/(?|(a)|(b))/ x", /branch reset/],
  ["/\\p{L}/ x", /Unicode properties/],
  ["/[[:^alpha:]]/ x", /\[\[:\^alpha:\]\]/],
  ["/a/U x", /ungreedy/],
  ["/\\h/ x", /horizontal space/],
  ["/\\R/ x", /newline sequence/],
];

for (const [line, message] of PCRE_REFUSED) {
  Deno.test(`pcre: ${line} is refused at start with its line number`, () => {
    const err = syntaxError("pcre", `# c\n/ok/ OK\n${line}\n`);
    assert.equal(err.line, 3);
    assert.match(err.message, message);
  });
}

const SYNTAX_ERRORS: [Dialect, string, number, RegExp][] = [
  ["pcre", "/a/ OK\nendif\n", 2, /"endif" without "if"/],
  ["pcre", "if /a/\n/b/ OK\n", 1, /"if" without "endif"/],
  ["regexp", "/a/\n", 1, /missing result/],
  ["regexp", "/a OK\n", 1, /missing closing "\/"/],
  ["regexp", "/a/q OK\n", 1, /unknown flag "q"/],
  ["regexp", "/a/x OK\n", 1, /flag "x"/],
  ["regexp", "/(?:a)/ OK\n", 1, /not POSIX/],
  ["pcre", "!/(a)/ 550 $1\n", 1, /negated pattern/],
  ["pcre", "/(a)/ 550 $2\n", 1, /has 1 group/],
  ["pcre", "/(a)/ 550 $x\n", 1, /"\$" in the result/],
  ["pcre", "if /a/ OK\nendif\n", 1, /text after the pattern/],
  ["pcre", "/[a/ OK\n", 1, /missing "\]"/],
  ["pcre", "/(a/ OK\n", 1, /pattern \/\(a\/:/],
  ["regexp", "abc OK\n", 1, /expected a pattern/],
  ["pcre", "  /a/ OK\n", 1, /continuation line without an entry/],
];

for (const [dialect, text, line, message] of SYNTAX_ERRORS) {
  Deno.test(`${dialect}: ${JSON.stringify(text)} is refused at line ${line}`, () => {
    const err = syntaxError(dialect, text);
    assert.equal(err.line, line);
    assert.match(err.message, message);
  });
}

Deno.test("pcre: values lists every result as written (templates included)", () => {
  const t = patternTable("pcre:t", "/(a)/ 550 $1\nif /b/\n/c/ OK\nendif\n", "pcre");
  assert.deepEqual(t.values, ["550 $1", "OK"]);
});

Deno.test("pcre: a found substitution carries its template", async () => {
  const t = patternTable("pcre:t", "/^(.*)@/ 550 no $1\n", "pcre");
  assert.deepEqual(await t.lookup("joe@x"), {
    kind: "found",
    value: "550 no joe",
    template: "550 no $1",
  });
});

Deno.test("translatePattern() writes case-insensitive patterns without the i flag (V8's linear fallback cannot run i)", () => {
  const o = { ignoreCase: true, multiline: false, dotAll: true, extended: false, anchored: false };
  const t = translatePattern("^(a+)+[x-z]$", "pcre", o);
  assert.equal(t.regex.flags, "s");
  assert.equal(t.regex.source, "^([aA]+)+[x-zX-Z]$");
  // With a back-reference the i flag stays (case-insensitive back-references).
  assert.equal(translatePattern("^(a)\\1$", "pcre", o).regex.flags, "is");
});
