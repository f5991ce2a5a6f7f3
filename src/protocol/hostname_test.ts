import assert from "node:assert/strict";
import {
  isNumericForm,
  isValidAddressLiteral,
  isValidHostAddress,
  isValidHostname,
  withoutTrailingDot,
} from "./hostname.ts";

// Postfix's valid_hostname, valid_hostaddr and valid_mailhost_literal.
const CASES: [fn: (s: string) => boolean, name: string, valid: string[], invalid: string[]][] = [
  [
    isValidHostname,
    "isValidHostname",
    ["foo", "foo.", "foo_bar.example", "a-b.example", "x1.example"],
    ["", "192.0.2.1", "foo bar", "foo..example", "-foo.example", `${"a".repeat(64)}.example`],
  ],
  [
    isValidHostAddress,
    "isValidHostAddress",
    // Leading zeros as Postfix's valid_ipv4_hostaddr takes them (syntax only).
    ["192.0.2.1", "0.0.0.0", "00.0.0.000", "2001:db8::1", "::", "192.0.2.010", "01.2.3.0004"],
    ["0.255.255.255", "00.1.2.3", "321.1.1.1", "1.2.3.0256", "1.2.3", "1..2.3.4", "1.2.3.4.5"]
      .concat(["1.2.3.", "1.2.3.+4", "::ffff:x"]),
  ],
  [
    isValidAddressLiteral,
    "isValidAddressLiteral",
    ["[192.0.2.1]", "[IPv6:2001:db8::1]", "[ipv6:::]", "[0.0.0.0]", "[01.2.3.4]"],
    ["[::]", "[::1]", "[ipv6::::]", "[0.255.255.255]", "[1.2.3]", "[.1.2.3.4]", "[]", "192.0.2.1"],
  ],
];

for (const [fn, name, valid, invalid] of CASES) {
  Deno.test(`${name}() accepts what Postfix accepts and refuses the rest`, () => {
    for (const v of valid) assert.equal(fn(v), true, `${v} should be valid`);
    for (const v of invalid) assert.equal(fn(v), false, `${v} should be invalid`);
  });
}

Deno.test("withoutTrailingDot() drops one dot but keeps a double dot", () => {
  assert.equal(withoutTrailingDot("foo."), "foo");
  assert.equal(withoutTrailingDot("foo.."), "foo..");
  assert.equal(withoutTrailingDot("."), ".");
});

Deno.test("isNumericForm() is true only for digits, dots and colons", () => {
  assert.equal(isNumericForm("1.2.3.4.5."), true);
  assert.equal(isNumericForm("::1"), true);
  assert.equal(isNumericForm("[1.2.3.4]"), false);
  assert.equal(isNumericForm("a1.2"), false);
});
