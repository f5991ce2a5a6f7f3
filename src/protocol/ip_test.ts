import assert from "node:assert/strict";
import { canonicalIp, formatIp, parseIp, parseIpAddress, parseIpv4, parseIpv6 } from "./ip.ts";

const V4 = 0xffffn << 32n;

// Forms that inet_aton(3), and so Postfix and the C library, reads differently
// from a plain decimal reading, or reads at all: every one is a syntax error.
const AMBIGUOUS = [
  "127.0.0.010", // octal 8 to inet_aton, decimal 10 to a naive parser
  "127.0.0.01",
  "127.0.0.00",
  "010.0.0.1",
  "0127.0.0.1",
  "127.000.0.1",
  "0x7f.0.0.1",
  "127.1",
  "2130706433",
  "127.0.0.1.",
  "::ffff:127.0.0.010",
  "1.2.3.4 ",
  " 1.2.3.4",
  "1.2.3.\u0661", // Arabic-Indic digit one
  "1.2.3.+4",
  "1.2.3.4\r",
  "::1%eth0",
];

for (const text of AMBIGUOUS) {
  Deno.test(`parseIpAddress() refuses ambiguous or malformed ${JSON.stringify(text)}`, () => {
    assert.equal(parseIpAddress(text), undefined);
    assert.equal(canonicalIp(text), undefined);
  });
}

Deno.test("parseIpv4() reads four decimal parts 0-255 and nothing else", () => {
  assert.equal(parseIpv4("0.0.0.0"), 0n);
  assert.equal(parseIpv4("127.0.0.10"), 0x7f00000an);
  assert.equal(parseIpv4("255.255.255.255"), 0xffffffffn);
  assert.equal(parseIpv4("256.0.0.1"), undefined);
  assert.equal(parseIpv4("1.2.3"), undefined);
  assert.equal(parseIpv4("1..2.3"), undefined);
  assert.equal(parseIpv4("127.0.0.010"), undefined);
});

Deno.test("parseIpv6() reads RFC 4291 text, with a dotted-quad tail", () => {
  assert.equal(parseIpv6("::1"), 1n);
  assert.equal(parseIpv6("0000:0000:0000:0000:0000:0000:0000:0001"), 1n);
  assert.equal(parseIpv6("::ffff:192.0.2.1"), V4 | 0xc0000201n);
  assert.equal(parseIpv6("1.2.3.4"), undefined);
  assert.equal(parseIpv6("::ffff:192.0.2.01"), undefined);
  assert.equal(parseIpv6("1:2:3:4:5:6:7:8:9"), undefined);
  assert.equal(parseIpv6("00000::1"), undefined);
});

Deno.test("parseIpAddress() tells the family the text was written in", () => {
  assert.deepEqual(parseIpAddress("192.0.2.1"), { value: V4 | 0xc0000201n, family: 4 });
  assert.deepEqual(parseIpAddress("::ffff:192.0.2.1"), { value: V4 | 0xc0000201n, family: 6 });
  assert.deepEqual(parseIpAddress("2001:db8::1"), {
    value: 0x20010db8000000000000000000000001n,
    family: 6,
  });
  assert.equal(parseIpAddress("[::1]"), undefined, "no brackets in a bare address");
});

const IPS: [string, bigint | undefined][] = [
  ["127.0.0.1", V4 | 0x7f000001n],
  [" 10.1.2.3 ", V4 | 0x0a010203n],
  ["[192.0.2.1]", V4 | 0xc0000201n],
  ["[::1]", 1n],
  ["IPv6:::1", 1n],
  ["[IPv6:::1]", 1n],
  ["[IPv6:2001:DB8::1]", 0x20010db8000000000000000000000001n],
  ["[IPv6:192.0.2.1]", undefined], // an IPv6 literal holds IPv6 text
  ["[127.0.0.010]", undefined],
  ["[127.0.0.10]", V4 | 0x7f00000an],
  ["", undefined],
  ["example.com", undefined],
];

for (const [text, expected] of IPS) {
  Deno.test(`parseIp() reads ${JSON.stringify(text)}`, () => {
    assert.equal(parseIp(text), expected);
  });
}

const CANONICAL: [string, string][] = [
  ["192.0.2.1", "192.0.2.1"],
  ["::ffff:192.0.2.1", "192.0.2.1"],
  ["::FFFF:C000:0201", "192.0.2.1"],
  ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
  ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
  ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
  ["::", "::"],
  ["::1", "::1"],
  ["fe80::", "fe80::"],
];

for (const [text, expected] of CANONICAL) {
  Deno.test(`canonicalIp() prints ${text} as ${expected}`, () => {
    assert.equal(canonicalIp(text), expected);
    assert.equal(formatIp(parseIpAddress(text)!.value), expected);
  });
}
