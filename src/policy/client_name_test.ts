import assert from "node:assert/strict";
import { fakeDns, type Zone } from "./_fake_dns.ts";
import { type ClientName, lookupClientName } from "./client_name.ts";
import { denoResolver } from "./resolver.ts";

const PTR_192_0_2_1 = "1.2.0.192.in-addr.arpa";
const PTR_DB8_1 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa";

const CASES: [what: string, address: string, zone: Zone, expected: ClientName][] = [
  [
    "returns the PTR name when its A records include the address",
    "192.0.2.1",
    {
      [PTR_192_0_2_1]: { PTR: ["mail.example.com."] },
      "mail.example.com": { A: ["198.51.100.9", "192.0.2.1"] },
    },
    {
      name: "mail.example.com",
      nameStatus: "ok",
      reverseName: "mail.example.com",
      reverseStatus: "ok",
    },
  ],
  [
    "lower-cases the confirmed name",
    "192.0.2.1",
    {
      [PTR_192_0_2_1]: { PTR: ["Mail.Example.COM."] },
      "mail.example.com": { A: ["192.0.2.1"] },
    },
    {
      name: "mail.example.com",
      nameStatus: "ok",
      reverseName: "mail.example.com",
      reverseStatus: "ok",
    },
  ],
  [
    "confirms an IPv6 client through AAAA records written differently",
    "2001:db8::1",
    {
      [PTR_DB8_1]: { PTR: ["v6.example.com."] },
      "v6.example.com": { AAAA: ["2001:DB8:0:0:0:0:0:1"] },
    },
    {
      name: "v6.example.com",
      nameStatus: "ok",
      reverseName: "v6.example.com",
      reverseStatus: "ok",
    },
  ],
  [
    "answers unknown with the reverse name kept when no A record matches",
    "192.0.2.1",
    {
      [PTR_192_0_2_1]: { PTR: ["forged.example.com."] },
      "forged.example.com": { A: ["198.51.100.1"] },
    },
    {
      name: "unknown",
      nameStatus: "notFound",
      reverseName: "forged.example.com",
      reverseStatus: "ok",
    },
  ],
  [
    "answers unknown with the reverse name kept when the PTR name has no A record",
    "192.0.2.1",
    { [PTR_192_0_2_1]: { PTR: ["dangling.example.com."] } },
    {
      name: "unknown",
      nameStatus: "notFound",
      reverseName: "dangling.example.com",
      reverseStatus: "ok",
    },
  ],
  [
    "remembers a temporary failure of the forward lookup",
    "192.0.2.1",
    {
      [PTR_192_0_2_1]: { PTR: ["slow.example.com."] },
      "slow.example.com": { A: "tempfail" },
    },
    {
      name: "unknown",
      nameStatus: "tempfail",
      reverseName: "slow.example.com",
      reverseStatus: "ok",
    },
  ],
  [
    "answers unknown/notFound without a PTR record",
    "192.0.2.1",
    {},
    { name: "unknown", nameStatus: "notFound", reverseName: "unknown", reverseStatus: "notFound" },
  ],
  [
    "answers unknown/tempfail when the PTR lookup fails temporarily",
    "192.0.2.1",
    { [PTR_192_0_2_1]: { PTR: "tempfail" } },
    { name: "unknown", nameStatus: "tempfail", reverseName: "unknown", reverseStatus: "tempfail" },
  ],
  [
    "answers unknown/notFound for a malformed address without asking the DNS",
    "not-an-address",
    {},
    { name: "unknown", nameStatus: "notFound", reverseName: "unknown", reverseStatus: "notFound" },
  ],
];

for (const [what, address, zone, expected] of CASES) {
  Deno.test(`lookupClientName() ${what}`, async () => {
    const dns = fakeDns(zone);
    assert.deepEqual(await lookupClientName(address, dns), expected);
    if (address === "not-an-address") assert.deepEqual(dns.calls, []);
  });
}

for (
  const [what, zone, warning] of [
    [
      "no A record matches",
      { "forged.example.com": { A: ["198.51.100.1"] } },
      "hostname forged.example.com does not resolve to address 192.0.2.1",
    ],
    [
      "the name has no A record",
      {},
      "hostname forged.example.com does not resolve to address 192.0.2.1: Name or service not known",
    ],
    [
      "the A lookup fails for now",
      { "forged.example.com": { A: "tempfail" } },
      "hostname forged.example.com does not resolve to address 192.0.2.1: Temporary failure in name resolution",
    ],
  ] as [string, Zone, string][]
) {
  Deno.test(`lookupClientName() warns as Postfix does when ${what}`, async () => {
    const dns = fakeDns({ [PTR_192_0_2_1]: { PTR: ["forged.example.com."] }, ...zone });
    const warnings: string[] = [];
    await lookupClientName("192.0.2.1", dns, (t) => warnings.push(t));
    assert.deepEqual(warnings, [warning]);
  });
}

Deno.test("lookupClientName() queries PTR, then A for IPv4 (never AAAA)", async () => {
  const dns = fakeDns({
    [PTR_192_0_2_1]: { PTR: ["mail.example.com."] },
    "mail.example.com": { A: ["192.0.2.1"], AAAA: ["2001:db8::1"] },
  });
  await lookupClientName("192.0.2.1", dns);
  assert.deepEqual(dns.calls, [`PTR ${PTR_192_0_2_1}`, "A mail.example.com"]);
});

const MALFORMED: [what: string, ptr: string][] = [
  ["a space", "bad name.example."],
  ["brackets", "[192.0.2.1]."],
  ["control characters", "a\r\nb\x1b.example."],
  ["a bidi override", "a\u202eb.example."],
  ["non-ASCII letters", "ü.example."],
  ["DNS escapes (as the resolver renders odd bytes)", "bad\\040name.example."],
  ["a label over 63 characters", `${"a".repeat(64)}.example.`],
  ["a name over 255 characters", `${"abcdefghi.".repeat(26)}example.`],
  ["only digits and dots (an address)", "192.0.2.1."],
  ["an empty label", "a..example."],
];

for (const [what, ptr] of MALFORMED) {
  Deno.test(`lookupClientName(): a PTR name with ${what} is "unknown", with a warning`, async () => {
    const rev = ptr.replace(/\.$/, "").toLowerCase();
    const dns = fakeDns({
      [PTR_192_0_2_1]: { PTR: [ptr] },
      [rev]: { A: ["192.0.2.1"] }, // it would even confirm
    });
    const warnings: string[] = [];
    assert.deepEqual(await lookupClientName("192.0.2.1", dns, (t) => warnings.push(t)), {
      name: "unknown",
      nameStatus: "notFound",
      reverseName: "unknown",
      reverseStatus: "notFound",
    });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] as string, /^malformed hostname in the PTR record of 192\.0\.2\.1: /);
    assert.ok((warnings[0] as string).length < 200);
  });
}

Deno.test("lookupClientName(): underscores and digits in labels are a valid name", async () => {
  const dns = fakeDns({
    [PTR_192_0_2_1]: { PTR: ["mail_1.example."] },
    "mail_1.example": { A: ["192.0.2.1"] },
  });
  assert.equal((await lookupClientName("192.0.2.1", dns)).name, "mail_1.example");
});

Deno.test("lookupClientName(): forward confirmation reads every A record, as Postfix's getaddrinfo (no 100-record cap, no warning)", async () => {
  // 150 A records, the client's address the 121st: Postfix's smtpd confirms
  // the name with getaddrinfo(), which dns_rr_list_limit does not bound.
  const many = Array.from({ length: 150 }, (_, i) => `198.51.${100 + (i >> 8)}.${i & 255}`);
  many[120] = "192.0.2.1";
  const resolveDns = ((name: string, type: string) => {
    if (type === "PTR" && name === `${PTR_192_0_2_1}.`) return Promise.resolve(["many.example."]);
    if (type === "A" && name === "many.example.") return Promise.resolve(many);
    return Promise.reject(new Deno.errors.NotFound("no records found"));
  }) as unknown as typeof Deno.resolveDns;
  const warnings: string[] = [];
  const dns = denoResolver({
    server: "",
    timeoutMs: 1000,
    resolveDns,
    warn: (t) => warnings.push(t),
  });
  assert.equal((await lookupClientName("192.0.2.1", dns)).name, "many.example");
  assert.deepEqual(warnings, []);
});

Deno.test("lookupClientName(): a reverse zone with 300 PTR records gives the first name, without the record count warning", async () => {
  const names = Array.from({ length: 300 }, (_, i) => `h${i}.many.example.`);
  const resolveDns = ((name: string, type: string) => {
    if (type === "PTR" && name === `${PTR_192_0_2_1}.`) return Promise.resolve(names);
    if (type === "A" && name === "h0.many.example.") return Promise.resolve(["192.0.2.1"]);
    return Promise.reject(new Deno.errors.NotFound("no records found"));
  }) as unknown as typeof Deno.resolveDns;
  const warnings: string[] = [];
  const dns = denoResolver({
    server: "",
    timeoutMs: 1000,
    resolveDns,
    warn: (t) => warnings.push(t),
  });
  assert.equal((await lookupClientName("192.0.2.1", dns)).name, "h0.many.example");
  assert.deepEqual(warnings, []);
});
