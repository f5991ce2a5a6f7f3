import assert from "node:assert/strict";
import { rawByteChar } from "../io/wire_text.ts";
import {
  type Address,
  addressText,
  compactPath,
  isDomain,
  isNullAddress,
  isUtf8Domain,
  NULL_ADDRESS,
  parseMailbox,
  parsePath,
} from "./address.ts";

function addr(local: string, domain: string, route: string[] = [], quoted = false): Address {
  return { local, domain, route, quoted };
}

// [input, expected address, expected params]; accepted in both modes.
const ACCEPTED: [string, Address, string][] = [
  ["<a@b>", addr("a", "b"), ""],
  [" <a@b> SIZE=1", addr("a", "b"), "SIZE=1"],
  ["\t<a@b>\tSIZE=1 BODY=8BITMIME  ", addr("a", "b"), "SIZE=1 BODY=8BITMIME"],
  // Blanks are SP and HT only: a U+00A0 or U+FEFF stays part of the parameter.
  ["<a@b> SMTPUTF8\u00a0", addr("a", "b"), "SMTPUTF8\u00a0"],
  ["<a@b> NOTIFY=NEVER\ufeff ", addr("a", "b"), "NOTIFY=NEVER\ufeff"],
  ["<user.name+tag@sub.example.com>", addr("user.name+tag", "sub.example.com"), ""],
  ["<postmaster>", addr("postmaster", ""), ""],
  ["<@x,@y:u@d>", addr("u", "d", ["x", "y"]), ""],
  ["<@relay.example:u@d> SIZE=5", addr("u", "d", ["relay.example"]), "SIZE=5"],
  ['<"a b"@d>', addr("a b", "d", [], true), ""],
  ['<"a\\"b"@d>', addr('a"b', "d", [], true), ""],
  ['<"a>b"@d>', addr("a>b", "d", [], true), ""],
  ["<u@[192.0.2.1]>", addr("u", "[192.0.2.1]"), ""],
  ["<u@[IPv6:2001:db8::1]>", addr("u", "[IPv6:2001:db8::1]"), ""],
  // Sender-specified routing (u@v@w) is kept whole in the local part.
  ["<u@v@w>", addr("u@v", "w"), ""],
];

for (const strict of [true, false]) {
  for (const [input, expected, params] of ACCEPTED) {
    Deno.test(`parsePath() accepts ${JSON.stringify(input)} (strict: ${strict})`, () => {
      const sent = input.slice(input.indexOf("<") + 1, input.lastIndexOf(">"));
      assert.deepEqual(parsePath(input, { strict }), { ok: true, address: expected, params, sent });
    });
  }
}

for (const strict of [true, false]) {
  Deno.test(`parsePath() returns the null address for "<>" (strict: ${strict})`, () => {
    const r = parsePath("<>", { strict });
    assert.ok(r.ok);
    assert.deepEqual(r.address, NULL_ADDRESS);
    assert.ok(isNullAddress(r.address));
    assert.equal(addressText(r.address), "");
  });
}

// Forms only strict_rfc821_envelopes = no allows.
const LOOSE: [string, Address, string][] = [
  ["a@b", addr("a", "b"), ""],
  [" a@b SIZE=10", addr("a", "b"), "SIZE=10"],
  ["Name <a@b>", addr("a", "b"), ""],
  ['"Some Name" <a@b> SIZE=1', addr("a", "b"), "SIZE=1"],
  ['"x<y" <a@b>', addr("a", "b"), ""],
];

Deno.test("parsePath() without brackets: a word ends at SP or HT only, as Postfix's tokens", () => {
  // With SMTPUTF8 U+00A0 and U+2028 are characters of the local part, not blanks.
  for (const blank of ["\u00a0", "\u2028", "\u3000"]) {
    const r = parsePath(` a${blank}b@x.example SMTPUTF8`, { strict: false, utf8: true });
    assert.ok(r.ok, JSON.stringify(blank));
    assert.deepEqual({ local: r.address.local, params: r.params }, {
      local: `a${blank}b`,
      params: "SMTPUTF8",
    });
  }
});

for (const [input, expected, params] of LOOSE) {
  Deno.test(`parsePath() accepts ${JSON.stringify(input)} only when not strict`, () => {
    const r = parsePath(input, { strict: false });
    assert.ok(r.ok);
    assert.deepEqual({ address: r.address, params: r.params }, { address: expected, params });
    assert.deepEqual(parsePath(input, { strict: true }), { ok: false });
  });
}

// RFC 822 forms inside the brackets that Postfix 3.7's smtpd accepts (its
// address parser drops comments and white space between tokens), checked
// side by side in tests/session_edges_postfix_test.ts. With
// strict_rfc821_envelopes Postfix refuses the comments but not the blanks.
const RFC822_FORMS: [string, Address][] = [
  ["<a(comment)@x.example>", addr("a", "x.example")],
  ["< u@x.example >", addr("u", "x.example")],
  ["<\tu@x.example\t>", addr("u", "x.example")],
  ["<u@(c)x.example>", addr("u", "x.example")],
  ["<u@x.example(c)>", addr("u", "x.example")],
  ["<(c)u@x.example>", addr("u", "x.example")],
  ["<u @ x.example>", addr("u", "x.example")],
  ["<u . v @ x . example>", addr("u.v", "x.example")],
  ["<u(a(b)c)@x.example>", addr("u", "x.example")],
  ["<u(a\\)b)@x.example>", addr("u", "x.example")],
  ["<u(a\\(b)@x.example>", addr("u", "x.example")],
  ['<"a b" (c) @x.example>', addr("a b", "x.example", [], true)],
  ['<(c) "x\\\\y"@x.example>', addr("x\\y", "x.example", [], true)],
  ["<u@[192.0.2.1] (c)>", addr("u", "[192.0.2.1]")],
  ["<@r.example:u(c)@x.example>", addr("u", "x.example", ["r.example"])],
  ["<@r.example: u @x.example>", addr("u", "x.example", ["r.example"])],
  ["< >", NULL_ADDRESS],
  ["<(c)>", NULL_ADDRESS],
];

for (const [input, expected] of RFC822_FORMS) {
  Deno.test(`parsePath() reads ${JSON.stringify(input)} as Postfix does (comments only when not strict)`, () => {
    const r = parsePath(input, { strict: false });
    assert.ok(r.ok, input);
    assert.deepEqual(r.address, expected);
    assert.equal(r.sent, input.slice(1, -1));
    const strict = parsePath(input, { strict: true });
    if (input.includes("(")) assert.deepEqual(strict, { ok: false });
    else assert.deepEqual(strict.ok && strict.address, expected);
  });
}

// Odd inputs: unbalanced or misplaced parentheses, quotes, backslashes,
// brackets, words in a row, a route that is no route, 8-bit in a comment.
// Each is refused (some Postfix reads in a way of its own, noted).
const RFC822_REFUSED: string[] = [
  "<u(a@x.example>", // Postfix: the comment runs to the end, the address is "u"
  "<u)a@x.example>", // Postfix: quotes it, "u)a"@x.example
  "<u((a)@x.example>",
  "<u(a))@x.example>",
  "<(>",
  '<u("q)@x.example>', // a quote in a comment hides the closing bracket
  "<)>",
  "<u(a\\)@x.example>",
  "<u\\(a)@x.example>",
  '<"a@x.example>',
  '<"a\\"@x.example>',
  '<a"b"@x.example>',
  '<"a" "b"@x.example>',
  "<a (c) b@x.example>",
  "<a(c)b@x.example>",
  "<u@x .example b>",
  "<u@[192.0.2.1>",
  "<u@192.0.2.1]>",
  "<u@[192.0.2.1] [192.0.2.2]>",
  "< @r.example:u@x.example>",
  "<(c)@r.example:u@x.example>",
  "<@r.example(c):u@x.example>",
  "<u@x.example (\u00e9)>",
  "<u(\u00e9)@x.example>",
  "<u\x00(c)@x.example>",
  "<u(\x01)@x.example>",
  "<@r\r:u@x.example>", // found by the fuzzer: the route's trim() took the CR
  "<@r\x0b,@s:u@x.example>",
  "<u@x.example (c) (>",
  "<" + "(".repeat(5000) + "u@x.example>",
  "<" + "(a)".repeat(5000) + "u u@x.example>",
];

for (const input of RFC822_REFUSED) {
  Deno.test(`parsePath() refuses ${JSON.stringify(input.slice(0, 60))} (RFC 822 forms)`, () => {
    assert.deepEqual(parsePath(input, { strict: false }), { ok: false });
    assert.deepEqual(parsePath(input, { strict: true }), { ok: false });
  });
}

Deno.test("compactPath() takes 8-bit comments and words only with SMTPUTF8", () => {
  assert.equal(compactPath("u(\u00e9)@x.example", true), "u@x.example");
  assert.equal(compactPath("\u00e9 @ x.example", true), "\u00e9@x.example");
  assert.equal(compactPath("u(\u00e9)@x.example"), undefined);
});

Deno.test("parsePath() with eightBit (smtputf8_enable off): any 8-bit local part, an ASCII domain", () => {
  const raw = rawByteChar(0xf6);
  for (
    const [input, local] of [
      [`<j${raw}@x.example>`, `j${raw}`],
      ["<j\u00f6\u0085@x.example>", "j\u00f6\u0085"],
      [`<"a ${raw}"@x.example>`, `a ${raw}`],
      [`<a(${raw})@x.example>`, "a"],
      [`<${raw}>`, raw],
    ] as const
  ) {
    const r = parsePath(input, { strict: false, eightBit: true });
    assert.ok(r.ok, input);
    assert.equal(r.address.local, local);
    assert.deepEqual(parsePath(input, { strict: false }), { ok: false });
  }
  for (const input of [`<j@x${raw}.example>`, "<j@\u00e9.example>", "<j\u00f6\x01@x>"]) {
    assert.deepEqual(parsePath(input, { strict: false, eightBit: true }), { ok: false }, input);
  }
});

Deno.test("compactPath() is linear on long runs of comments and blanks", () => {
  const start = performance.now();
  for (const s of ["(a)".repeat(100_000), " ".repeat(300_000), "(".repeat(300_000)]) {
    compactPath(`${s}u@x.example`);
  }
  assert.ok(performance.now() - start < 2000);
});

const REJECTED: string[] = [
  "",
  "<a@b",
  "<a@@b>",
  "<@a@b>",
  "<a@b@>",
  "<a@b>x",
  "<a@b>SIZE=1",
  "<a@-b>",
  "<a@b->",
  "<a@b..c>",
  "<a@>",
  "<@b>",
  "<@x:>",
  "<@x>",
  "<@x,y:u@d>",
  "<@-x:u@d>",
  "<a b@c>",
  '<"a b>',
  '<"a"b@c>',
  '<"a\\',
  "<a\x00b@c>",
  "<a\x01b@c>",
  "<a@b\x7fc>",
  '<"a\x01b"@c>',
  '<"a\x7f"@c>',
  "<a@b\tc>",
  "<a@[1.2.3]>",
  "<a@[IPv6:zz]>",
];

for (const strict of [true, false]) {
  for (const input of REJECTED) {
    Deno.test(`parsePath() refuses ${JSON.stringify(input)} (strict: ${strict})`, () => {
      assert.deepEqual(parsePath(input, { strict }), { ok: false });
    });
  }
}

Deno.test("parseMailbox() parses the inside of a path", () => {
  const cases: [string, Address | undefined][] = [
    ["", NULL_ADDRESS],
    ["u@d", addr("u", "d")],
    ["u", addr("u", "")],
    ["@a,@b:u@d", addr("u", "d", ["a", "b"])],
    ["@a, @b:u@d", addr("u", "d", ["a", "b"])],
    ["@192.0.2.1:u@d", addr("u", "d", ["192.0.2.1"])],
    ["u@192.0.2.1", undefined],
    ['"x y"', addr("x y", "", [], true)],
    ['"x\\\\y"@d', addr("x\\y", "d", [], true)],
    ['""@d', addr("", "d", [], true)],
    ["u@d.", addr("u", "d.")],
    ["@a:", undefined],
    ["@a", undefined],
    ["u@", undefined],
    ["u@d e", undefined],
    ['"x"y', undefined],
    ['"unterminated', undefined],
    ['"x\u00e9"@d', undefined],
  ];
  for (const [inner, expected] of cases) {
    assert.deepEqual(parseMailbox(inner), expected, JSON.stringify(inner));
  }
});

Deno.test("isDomain() accepts host names and address literals", () => {
  const cases: [string, boolean][] = [
    ["example.com", true],
    ["a", true],
    ["a-b.c_d.example", true],
    ["example.com.", true],
    ["[192.0.2.1]", true],
    ["[0.0.0.0]", true],
    ["[IPv6:::1]", true],
    ["[IPv6:2001:db8::1]", true],
    ["[IPv6:::ffff:192.0.2.1]", true],
    ["", false],
    ["-a.example", false],
    ["a-.example", false],
    ["a..example", false],
    [".example", false],
    ["exa mple", false],
    ["[192.0.2]", false],
    ["[192.0.2.1.5]", false],
    ["192.0.2.1]", false],
    ["[192.0.2.1", false],
    ["[2001:db8::1]", false],
    ["[IPv6:]", false],
    ["[IPv6:g::1]", false],
    ["[1234.0.0.1]", false],
    // IPv4 as Postfix's valid_ipv4_hostaddr: leading zeros allowed, a first
    // part of 0 only in 0.0.0.0.
    ["[01.2.3.4]", true],
    ["[192.0.2.010]", true],
    ["[0001.2.3.4]", true],
    ["[0.1.2.3]", false],
    ["[00.1.2.3]", false],
    ["[1.2.3.0256]", false],
    ["a".repeat(256), false],
    [`x.${"a".repeat(63)}.example`, true],
    // As Postfix's valid_hostname: a label of 64 characters, an all-numeric name.
    [`x.${"a".repeat(64)}.example`, false],
    ["a".repeat(64), false],
    ["192.0.2.1", false],
    ["123", false],
    ["a.123", true],
  ];
  for (const [d, expected] of cases) {
    assert.equal(isDomain(d), expected, d);
  }
});

// Regression (found by these tests, fixed): LITERAL checks only the shape of an IPv4 literal, not the range of
// each octet (RFC 5321 §4.1.3 Snum is 0-255), and any hex/colon text passes
// as an IPv6 literal. See the report.
Deno.test({
  name: "isDomain() refuses address literals that are not addresses",
  fn: () => {
    for (const d of ["[300.1.1.1]", "[256.0.0.1]", "[IPv6:1:2]", "[IPv6:::::]"]) {
      assert.equal(isDomain(d), false, d);
    }
  },
});

Deno.test("addressText() renders the internal form", () => {
  const cases: [Address, string][] = [
    [addr("a", "b"), "a@b"],
    [addr("postmaster", ""), "postmaster"],
    [NULL_ADDRESS, ""],
    [addr("a b", "d", [], true), "a b@d"],
    [addr("u", "d", ["x", "y"]), "u@d"],
  ];
  for (const [a, expected] of cases) assert.equal(addressText(a), expected);
});

Deno.test("isNullAddress() is true only for the empty path", () => {
  assert.ok(isNullAddress(NULL_ADDRESS));
  assert.ok(!isNullAddress(addr("a", "")));
  assert.ok(!isNullAddress(addr("", "d", [], true)));
});

Deno.test("parsePath() without brackets keeps a quoted string with blanks in the address, as Postfix's tokenizer", () => {
  const loose = { strict: false };
  const r = parsePath('"a b"@x.example SIZE=10', loose);
  assert.ok(r.ok);
  assert.equal(r.address.local, "a b");
  assert.equal(r.address.quoted, true);
  assert.equal(r.address.domain, "x.example");
  assert.equal(r.params, "SIZE=10");
  const escaped = parsePath('"a\\" b"@x.example', loose);
  assert.ok(escaped.ok && escaped.address.local === 'a" b' && escaped.params === "");
  // Words after the quoted string are still parameters; an unclosed quote is refused.
  const more = parsePath('"a b"@x.example extra', loose);
  assert.ok(more.ok && more.params === "extra");
  assert.equal(parsePath('"a b@x.example', loose).ok, false);
});

Deno.test("parsePath() with strict_rfc821_envelopes = no drops RFC 822 comments after the address", () => {
  const loose = { strict: false };
  const r = parsePath("<a@b.example> (the manual's example)", loose);
  assert.ok(r.ok);
  assert.equal(r.address.local, "a");
  assert.equal(r.address.domain, "b.example");
  assert.equal(r.params, "");
  // Nested comments, a quoted ")" and parameters after them.
  const p = parsePath("<a@b.example> (one (two) \\) three) (four) SIZE=10", loose);
  assert.ok(p.ok);
  assert.equal(p.params, "SIZE=10");
  // The bare form, and a phrase whose comment holds a "<".
  const bare = parsePath("a@b.example (comment)", loose);
  assert.ok(bare.ok && bare.address.domain === "b.example" && bare.params === "");
  const phrase = parsePath("Some One (not <this>) <c@d.example>", loose);
  assert.ok(phrase.ok && phrase.address.local === "c");
  // An unclosed comment is left as a parameter (MAIL and RCPT refuse it), as in strict mode.
  const unclosed = parsePath("<a@b.example> (unclosed", loose);
  assert.ok(unclosed.ok);
  assert.equal(unclosed.params, "(unclosed");
  // strict_rfc821_envelopes = yes leaves the comment as a parameter (MAIL refuses it).
  const strict = parsePath("<a@b.example> (comment)", { strict: true });
  assert.ok(strict.ok);
  assert.equal(strict.params, "(comment)");
});

Deno.test("isUtf8Domain() applies UTS #46 CheckHyphens to every label, as Postfix's ICU does", () => {
  for (
    const d of ["-bücher.example", "bücher-.example", "ab--cü.example", "ab--c.bücher.example"]
  ) {
    assert.equal(isUtf8Domain(d), false, d);
  }
  for (
    const d of ["bücher.example", "a-b.bücher.example", "xn--bcher-kva.example", "bücher.example."]
  ) {
    assert.equal(isUtf8Domain(d), true, d);
  }
});

/**
 * compactPath() as it read every path before it had a shortcut for plain
 * text and a regular expression for atoms: token by token, one character
 * at a time. The rewrite must agree with it everywhere.
 */
function compactPathByCharacter(inner: string, utf8: boolean, strict: boolean): string | undefined {
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(inner)) return undefined;
  // deno-lint-ignore no-control-regex
  if (!utf8 && /[^\x00-\x7f]/.test(inner)) return undefined;
  const specials = "@.,:;<>";
  const atomEnd = ` \t()"[]${specials}`;
  let out = "";
  let afterWord = false;
  let i = 0;
  while (i < inner.length) {
    const c = inner[i] as string;
    if (c === " " || c === "\t") {
      i++;
      continue;
    }
    if (c === "(") {
      if (strict) return undefined;
      let depth = 0;
      let end = -1;
      for (let j = i; j < inner.length && end < 0; j++) {
        if (inner[j] === "\\") j++;
        else if (inner[j] === "(") depth++;
        else if (inner[j] === ")" && --depth === 0) end = j + 1;
      }
      if (end < 0) return undefined;
      i = end;
      continue;
    }
    if (c === ")" || c === "]") return undefined;
    if (specials.includes(c)) {
      out += c;
      afterWord = false;
      i++;
      continue;
    }
    let end = -1;
    if (c === '"') {
      for (let j = i + 1; j < inner.length && end < 0; j++) {
        if (inner[j] === "\\") j++;
        else if (inner[j] === '"') end = j + 1;
      }
    } else if (c === "[") end = inner.indexOf("]", i) + 1;
    else {
      end = i + 1;
      while (end < inner.length && !atomEnd.includes(inner[end] as string)) end++;
    }
    if (end <= 0 || afterWord) return undefined;
    out += inner.slice(i, end);
    afterWord = true;
    i = end;
  }
  return out;
}

Deno.test("compactPath() agrees with a character-by-character reading on 30,000 random paths", () => {
  // A small alphabet, so that every token kind and every mistake is common.
  const alphabet = [
    "a",
    "b",
    "\u0436",
    "@",
    ".",
    ",",
    ":",
    ";",
    "<",
    ">",
    " ",
    "\t",
    "(",
    ")",
    '"',
    "\\",
    "[",
    "]",
    "1",
    "\u00e9",
  ];
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  let plain = 0;
  for (let n = 0; n < 30_000; n++) {
    // Half of them from letters and specials alone (the shortcut's inputs).
    const letters = n % 2 === 0 ? alphabet.slice(0, 10) : alphabet;
    let s = "";
    const len = 1 + Math.floor(next() * 24);
    for (let k = 0; k < len; k++) s += letters[Math.floor(next() * letters.length)];
    for (const [utf8, strict] of [[false, false], [true, false], [true, true]] as const) {
      const want = compactPathByCharacter(s, utf8, strict);
      assert.equal(compactPath(s, utf8, strict), want, JSON.stringify({ s, utf8, strict }));
      if (want === s) plain++;
    }
  }
  // Both branches were taken: many inputs came back as they were, and many did not.
  assert.ok(plain > 10_000 && plain < 80_000, `${plain} unchanged`);
});
