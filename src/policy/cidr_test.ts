import assert from "node:assert/strict";
import { inNetwork, parseIp, parseNetwork } from "./cidr.ts";

const V4 = 0xffffn << 32n;

const IPS: [string, bigint | undefined][] = [
  ["127.0.0.1", V4 | 0x7f000001n],
  ["0.0.0.0", V4],
  ["255.255.255.255", V4 | 0xffffffffn],
  ["192.0.2.1", V4 | 0xc0000201n],
  [" 10.1.2.3 ", V4 | 0x0a010203n],
  ["[192.0.2.1]", V4 | 0xc0000201n],
  ["::1", 1n],
  ["::", 0n],
  ["[::1]", 1n],
  ["IPv6:::1", 1n],
  ["[IPv6:::1]", 1n],
  ["ipv6:::1", 1n],
  ["2001:db8::1", 0x20010db8000000000000000000000001n],
  ["2001:DB8:0:0:0:0:0:1", 0x20010db8000000000000000000000001n],
  ["fe80::", 0xfe800000000000000000000000000000n],
  ["1:2:3:4:5:6:7:8", 0x00010002000300040005000600070008n],
  ["::ffff:127.0.0.1", V4 | 0x7f000001n],
  ["::FFFF:7f00:1", V4 | 0x7f000001n],
  ["64:ff9b::192.0.2.1", 0x0064ff9b0000000000000000c0000201n],
  ["", undefined],
  ["1.2.3", undefined],
  ["1.2.3.4.5", undefined],
  ["256.0.0.1", undefined],
  ["1.2.3.-4", undefined],
  ["a.b.c.d", undefined],
  [":", undefined],
  [":::", undefined],
  ["1::2::3", undefined],
  ["12345::", undefined],
  ["1:2:3:4:5:6:7", undefined],
  ["1:2:3:4:5:6:7:8:9", undefined],
  ["1:2:3:4:5:6:7::8", undefined],
  ["g::1", undefined],
  ["::ffff:300.0.0.1", undefined],
  ["::1.2.3", undefined],
  ["example.com", undefined],
];

for (const [text, expected] of IPS) {
  Deno.test(`parseIp() parses ${JSON.stringify(text)}`, () => {
    assert.equal(parseIp(text), expected);
  });
}

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
