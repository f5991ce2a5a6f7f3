import assert from "node:assert/strict";
import type { Config } from "../config/mod.ts";
import { LineReader } from "../io/line_reader.ts";
import { parseV1, type ProxyResult, readProxyHeader, upstreamAllowed } from "./proxy_protocol.ts";

/** A source over the given bytes, then EOF: its reader, how much is unread, how many reads. */
function sourceOf(
  bytes: Uint8Array | string,
): { reader: LineReader; left: () => number; reads: () => number } {
  let data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  let reads = 0;
  const reader = new LineReader({
    read(p: Uint8Array): Promise<number | null> {
      reads++;
      if (data.length === 0) return Promise.resolve(null);
      const n = Math.min(p.length, data.length);
      p.set(data.subarray(0, n));
      data = data.subarray(n);
      return Promise.resolve(n);
    },
  });
  return { reader, left: () => data.length, reads: () => reads };
}

/** A reader over the given bytes, then EOF. */
function readerOf(bytes: Uint8Array | string): LineReader {
  return sourceOf(bytes).reader;
}

const V1_OK: [string, ProxyResult][] = [
  ["PROXY TCP4 192.0.2.1 127.0.0.1 40001 25", {
    kind: "proxied",
    address: "192.0.2.1",
    port: "40001",
    server: { hostname: "127.0.0.1", port: 25 },
  }],
  ["PROXY TCP4 192.0.2.1 198.51.100.2 0 65535", {
    kind: "proxied",
    address: "192.0.2.1",
    port: "0",
    server: { hostname: "198.51.100.2", port: 65535 },
  }],
  ["PROXY TCP6 2001:DB8:0:0:0:0:0:1 2001:db8::0:25 1 587", {
    kind: "proxied",
    address: "2001:db8::1",
    port: "1",
    server: { hostname: "2001:db8::25", port: 587 },
  }],
  ["PROXY TCP6 ::ffff:192.0.2.9 ::1 1 25", {
    kind: "proxied",
    address: "192.0.2.9",
    port: "1",
    server: { hostname: "::1", port: 25 },
  }],
];

for (const [line, expected] of V1_OK) {
  Deno.test(`readProxyHeader() reads v1 "${line}"`, async () => {
    assert.deepEqual(await readProxyHeader(readerOf(`${line}\r\nEHLO x\r\n`)), expected);
    assert.deepEqual(parseV1(line), expected);
  });
}

// Each must be refused; none may come back as an address.
const V1_BAD: [string, string][] = [
  ["bad family", "PROXY UDP4 192.0.2.1 127.0.0.1 40001 25\r\n"],
  ["lower-case family", "PROXY tcp4 192.0.2.1 127.0.0.1 40001 25\r\n"],
  ["escape codes in the address", "PROXY TCP4 \x1b[31m1.2.3.4 127.0.0.1 40001 25\r\n"],
  ["a bare CR in the address", "PROXY TCP4 1.2.3.4\rX 127.0.0.1 40001 25\r\n"],
  ["a NUL", "PROXY TCP4 1.2.3.4\0 127.0.0.1 40001 25\r\n"],
  ["an 8-bit byte", "PROXY TCP4 1.2.3.4\xe9 127.0.0.1 40001 25\r\n"],
  ["a tab for a space", "PROXY TCP4\t1.2.3.4 127.0.0.1 40001 25\r\n"],
  ["two spaces", "PROXY TCP4  1.2.3.4 127.0.0.1 40001 25\r\n"],
  ["a trailing space", "PROXY TCP4 1.2.3.4 127.0.0.1 40001 25 \r\n"],
  ["a source port above 65535", "PROXY TCP4 1.2.3.4 127.0.0.1 65536 25\r\n"],
  ["a destination port above 65535", "PROXY TCP4 1.2.3.4 127.0.0.1 1 99999\r\n"],
  ["a negative port", "PROXY TCP4 1.2.3.4 127.0.0.1 -1 25\r\n"],
  ["a port with a leading zero", "PROXY TCP4 1.2.3.4 127.0.0.1 025 25\r\n"],
  ["a six-digit port", "PROXY TCP4 1.2.3.4 127.0.0.1 000025 25\r\n"],
  ["an IPv6 source in TCP4", "PROXY TCP4 ::1 127.0.0.1 40001 25\r\n"],
  ["an IPv4 source in TCP6", "PROXY TCP6 1.2.3.4 ::1 40001 25\r\n"],
  ["an IPv4 destination in TCP6", "PROXY TCP6 ::1 127.0.0.1 40001 25\r\n"],
  ["leading zeros in the source", "PROXY TCP4 127.0.0.010 127.0.0.1 40001 25\r\n"],
  ["leading zeros in the destination", "PROXY TCP4 192.0.2.1 127.000.0.1 40001 25\r\n"],
  ["a short IPv4 form", "PROXY TCP4 127.1 127.0.0.1 40001 25\r\n"],
  ["a host name", "PROXY TCP4 mx.example 127.0.0.1 40001 25\r\n"],
  ["an IPv6 zone", "PROXY TCP6 fe80::1%eth0 ::1 40001 25\r\n"],
  ["a missing field", "PROXY TCP4 192.0.2.1 127.0.0.1 40001\r\n"],
  ["an extra field", "PROXY TCP4 192.0.2.1 127.0.0.1 40001 25 x\r\n"],
  ["LF without CR", "PROXY TCP4 192.0.2.1 127.0.0.1 40001 25\n"],
  ["a line over 107 bytes", `PROXY UNKNOWN ${"x".repeat(92)}\r\n`],
  ["no end of line in 107 bytes", `PROXY UNKNOWN ${"x".repeat(120)}`],
  ["a control byte after UNKNOWN", "PROXY UNKNOWN \x1b]0;x\x07\r\n"],
  // HAProxy's line for a client it has no address for (a UNIX-socket
  // frontend): refused as by Postfix, or the balancer's own address (in
  // mynetworks) would be the client.
  ["protocol UNKNOWN", "PROXY UNKNOWN\r\n"],
  ["protocol UNKNOWN and addresses", "PROXY UNKNOWN ffff::1 ::1 1 2\r\n"],
];

for (const [what, input] of V1_BAD) {
  Deno.test(`readProxyHeader() refuses a v1 header with ${what}`, async () => {
    const bytes = Uint8Array.from(input, (c) => c.charCodeAt(0));
    const r = await readProxyHeader(readerOf(bytes));
    assert.equal(r.kind, "error", JSON.stringify(r));
    // The reason quotes nothing from the header.
    assert.match((r as { reason: string }).reason, /^[a-z0-9 -]+$/i);
  });
}

Deno.test("readProxyHeader() reads a v1 line of exactly 107 bytes to its end", async () => {
  // 107 bytes are reached only by UNKNOWN: it is refused for what it says, not its length.
  const line = `PROXY UNKNOWN ${"x".repeat(91)}\r\n`;
  assert.equal(line.length, 107);
  assert.deepEqual(await readProxyHeader(readerOf(line)), {
    kind: "error",
    reason: "v1 header with protocol UNKNOWN",
  });
  // The longest TCP6 line: two addresses of 39 characters, two 5-digit ports.
  const v6 = "2001:db8:1111:2222:3333:4444:5555:6666".replace("db8", "0db8");
  const longest = `PROXY TCP6 ${v6} ${v6} 65535 65535\r\n`;
  assert.equal(longest.length, 104);
  assert.equal((await readProxyHeader(readerOf(longest))).kind, "proxied");
});

const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

function v2(verCmd: number, fam: number, body: number[], len = body.length): Uint8Array {
  return new Uint8Array([...SIG, verCmd, fam, len >> 8, len & 255, ...body]);
}

const V4_BODY = [192, 0, 2, 44, 127, 0, 0, 1, 0x9c, 0x41, 0x00, 0x19];
const V6_BODY = [
  ...[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
  ...[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
  ...[0x9c, 0x41, 0x00, 0x19],
];

const V2_CASES: [string, Uint8Array, ProxyResult | "error"][] = [
  ["TCP over IPv4", v2(0x21, 0x11, V4_BODY), {
    kind: "proxied",
    address: "192.0.2.44",
    port: "40001",
    server: { hostname: "127.0.0.1", port: 25 },
  }],
  ["TCP over IPv6", v2(0x21, 0x21, V6_BODY), {
    kind: "proxied",
    address: "2001:db8::1",
    port: "40001",
    server: { hostname: "::1", port: 25 },
  }],
  ["LOCAL", v2(0x20, 0x00, []), { kind: "local" }],
  // As Postfix: the balancer's own address would sidestep access control.
  ["PROXY with AF_UNSPEC", v2(0x21, 0x00, []), "error"],
  ["version 1 in the v2 signature", v2(0x11, 0x11, V4_BODY), "error"],
  ["an unknown command", v2(0x22, 0x11, V4_BODY), "error"],
  ["an unknown family", v2(0x21, 0x41, V4_BODY), "error"],
  ["AF_UNIX", v2(0x21, 0x31, new Array(216).fill(0x41)), "error"],
  ["UDP", v2(0x21, 0x12, V4_BODY), "error"],
  ["an IPv4 block too short", v2(0x21, 0x11, V4_BODY.slice(0, 11)), "error"],
  ["an IPv6 block too short", v2(0x21, 0x21, V4_BODY), "error"],
  ["a length past the end", v2(0x21, 0x11, V4_BODY, 40), "error"],
  ["a length over 2048", v2(0x21, 0x11, V4_BODY, 4096), "error"],
];

for (const [what, bytes, expected] of V2_CASES) {
  Deno.test(`readProxyHeader() on a v2 header with ${what}`, async () => {
    const r = await readProxyHeader(readerOf(bytes));
    if (expected === "error") assert.equal(r.kind, "error", JSON.stringify(r));
    else assert.deepEqual(r, expected);
  });
}

Deno.test("upstreamAllowed() admits only balancers in smtpd_upstream_proxy_networks", () => {
  const config = {
    smtpd_upstream_proxy_networks: ["192.0.2.0/24", "[::1]/128"],
  } as unknown as Config;
  assert.equal(upstreamAllowed(config, "192.0.2.7"), true);
  assert.equal(upstreamAllowed(config, "::1"), true);
  assert.equal(upstreamAllowed(config, "127.0.0.1"), false);
  assert.equal(upstreamAllowed(config, "198.51.100.1"), false);
  assert.equal(upstreamAllowed(config, "garbage"), false);
});

Deno.test("readProxyHeader() reads not a byte past the header (the ClientHello behind it)", async () => {
  // A wrapper-mode port: the TLS ClientHello may come in the same segment as
  // the header; it must stay in the connection for the TLS layer.
  const hello = new Uint8Array(517).fill(0x16);
  const v1 = new TextEncoder().encode("PROXY TCP4 192.0.2.1 127.0.0.1 40001 465\r\n");
  const v2h = v2(0x21, 0x11, [...V4_BODY, 0x04, 0x00, 0x02, 0x41, 0x42]);
  for (const header of [v1, v2h]) {
    const { reader, left } = sourceOf(new Uint8Array([...header, ...hello]));
    assert.equal((await readProxyHeader(reader)).kind, "proxied");
    assert.equal(reader.peek().length, 0, "nothing buffered past the header");
    assert.equal(left(), hello.length, "the ClientHello is still in the source");
  }
});

Deno.test("readProxyHeader() before plaintext SMTP: a v1 header in one read, what follows kept for the session", async () => {
  // Byte-at-a-time reads are for implicit TLS only: here the header and the
  // EHLO pipelined behind it come in one read, and the EHLO stays buffered.
  const { reader, reads } = sourceOf("PROXY TCP4 192.0.2.1 127.0.0.1 40001 25\r\nEHLO x\r\n");
  assert.equal((await readProxyHeader(reader, false)).kind, "proxied");
  assert.equal(reads(), 1);
  assert.equal(new TextDecoder().decode(reader.peek()), "EHLO x\r\n");
});
