import assert from "node:assert/strict";
import { inNetwork, parseIp, parseNetwork } from "./cidr.ts";

const V4 = 0xffffn << 32n;

// The address parser itself is tested in src/protocol/ip_test.ts.
const NETWORKS: [string, bigint, number][] = [
  ["127.0.0.0/8", V4 | 0x7f000000n, 104],
  ["10.0.0.0/8", V4 | 0x0a000000n, 104],
  ["10.1.2.3/8", V4 | 0x0a000000n, 104],
  ["192.0.2.1", V4 | 0xc0000201n, 128],
  ["0.0.0.0/0", V4, 96],
  ["[::1]/128", 1n, 128],
  ["::1/128", 1n, 128],
  ["[::1]", 1n, 128],
  ["::/0", 0n, 0],
  ["2001:db8::/32", 0x20010db8000000000000000000000000n, 32],
  ["2001:db8::ff/120", 0x20010db8000000000000000000000000n, 120],
];

for (const [text, base, bits] of NETWORKS) {
  Deno.test(`parseNetwork() parses ${text}`, () => {
    assert.deepEqual(parseNetwork(text), { base, bits, text, family: text.includes(":") ? 6 : 4 });
  });
}

const BAD_NETWORKS = [
  "",
  "10.0.0.0/",
  "10.0.0.0/33",
  "10.0.0.0/-1",
  "10.0.0.0/8x",
  "10.0.0.0/ 8",
  "10.0.0.0/8.0",
  "10.0.0/8",
  "::1/129",
  "[::1]/",
  "example.com/8",
  "/8",
  // Leading zeros are octal to inet_aton (issue 14): a syntax error, not 10.0.0.0/8.
  "010.0.0.0/8",
  "127.0.0.010",
  "[IPv6:::1]/128",
];

for (const text of BAD_NETWORKS) {
  Deno.test(`parseNetwork() refuses ${JSON.stringify(text)}`, () => {
    assert.equal(parseNetwork(text), undefined);
  });
}

const MATCHES: [string, [string, boolean][]][] = [
  ["127.0.0.0/8", [
    ["127.0.0.1", true],
    ["127.255.255.255", true],
    ["127.0.0.0", true],
    ["::ffff:127.0.0.1", true],
    ["126.255.255.255", false],
    ["128.0.0.0", false],
    ["::1", false],
    ["::7f00:1", false],
  ]],
  ["[::1]/128", [
    ["::1", true],
    ["[::1]", true],
    ["0:0:0:0:0:0:0:1", true],
    ["::2", false],
    ["::", false],
    ["127.0.0.1", false],
  ]],
  ["10.0.0.0/8", [
    ["10.0.0.0", true],
    ["10.1.2.3", true],
    ["10.255.255.255", true],
    ["9.255.255.255", false],
    ["11.0.0.0", false],
    ["2001:db8::a00:1", false],
  ]],
  ["0.0.0.0/0", [
    ["0.0.0.0", true],
    ["1.2.3.4", true],
    ["255.255.255.255", true],
    ["::1", false],
    ["2001:db8::1", false],
  ]],
  ["::/0", [
    ["::", true],
    ["::1", true],
    ["2001:db8::1", true],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true],
    // Families are kept apart, as in Postfix: ::/0 does not match IPv4 clients.
    ["1.2.3.4", false],
  ]],
  ["192.0.2.128/25", [
    ["192.0.2.128", true],
    ["192.0.2.255", true],
    ["192.0.2.127", false],
  ]],
];

for (const [net, cases] of MATCHES) {
  Deno.test(`inNetwork() matches addresses against ${net}`, () => {
    const n = parseNetwork(net);
    assert.ok(n, net);
    for (const [ip, expected] of cases) {
      const a = parseIp(ip);
      assert.ok(a !== undefined, ip);
      assert.equal(inNetwork(n, a), expected, `${ip} in ${net}`);
    }
  });
}
