import assert from "node:assert/strict";
import { ConfigError, resolveConfigText } from "../../config/mod.ts";
import { replyForLog } from "../../protocol/reply.ts";
import { fakeDns, type Zone } from "../_fake_dns.ts";
import { compilePolicy } from "../compile.ts";
import type { Decision } from "../decision.ts";
import { Trace } from "../trace.ts";
import { parseSite } from "./dnsbl_score.ts";

/** 192.0.2.1: on two lists; .2: on one; .3: on the allow list; .4: nowhere; .5: a list fails. */
const ZONE: Zone = {
  "1.2.0.192.big.example": { A: ["127.0.0.2"] },
  "1.2.0.192.small.example": { A: ["127.0.0.4"] },
  "2.2.0.192.big.example": { A: ["127.0.0.2"] },
  "3.2.0.192.big.example": { A: ["127.0.0.2"] },
  "3.2.0.192.allow.example": { A: ["127.0.0.10"] },
  "5.2.0.192.big.example": { A: "tempfail" },
  "5.2.0.192.small.example": { A: ["127.0.0.2"] },
  "6.2.0.192.big.example": { A: ["127.255.255.254"] },
};

const SITES = ["big.example*2", "small.example=127.0.0.[2..4]", "allow.example*-5"];

async function check(
  address: string,
  params: Record<string, unknown> = {},
): Promise<{ shown: string; warnings: string[]; trace: string[] }> {
  const text = Object.entries({
    smtpd_client_restrictions: ["reject_dnsbl_score"],
    smtpd_dnsbl_sites: SITES,
    smtpd_dnsbl_threshold: 3,
    smtpd_delay_reject: false,
    ...params,
  }).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join("\n");
  const warnings: string[] = [];
  const config = resolveConfigText(text, { systemHostname: "mx.example.com", file: "t.toml" });
  const policy = compilePolicy(config, { dns: fakeDns(ZONE), warn: (w) => warnings.push(w) });
  const trace = new Trace();
  const d: Decision = await policy.check("client", {
    clientAddress: address,
    clientName: "unknown",
    reverseName: "unknown",
    nameStatus: "notFound",
    reverseStatus: "notFound",
    local: false,
    helo: undefined,
    sender: undefined,
    recipient: undefined,
  }, { trace });
  const shown = d.kind === "reject" || d.kind === "defer"
    ? `${d.kind} ${replyForLog(d.reply)}`
    : d.kind;
  return { shown, warnings, trace: trace.events.map((e) => JSON.stringify(e)) };
}

Deno.test("reject_dnsbl_score refuses a client whose weights reach smtpd_dnsbl_threshold", async () => {
  const r = await check("192.0.2.1");
  assert.equal(
    r.shown,
    "reject 554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using DNSBL score 3 (big.example, small.example)",
  );
  assert.ok(r.trace.some((t) => t.includes("dnsbl score 3 (threshold 3)")), r.trace.join("\n"));
});

Deno.test("reject_dnsbl_score lets a client listed by one list below the threshold through", async () => {
  assert.equal((await check("192.0.2.2")).shown, "permit");
  assert.equal(
    (await check("192.0.2.2", { smtpd_dnsbl_threshold: 2 })).shown.slice(0, 10),
    "reject 554",
  );
});

Deno.test("reject_dnsbl_score: an allow list's negative weight offsets a listing", async () => {
  // big (2) + allow (-5) = -3: under the threshold; with the allow-list threshold, a permit.
  assert.equal((await check("192.0.2.3")).shown, "permit");
  const allowed = await check("192.0.2.3", {
    smtpd_dnsbl_threshold: 1,
    smtpd_dnsbl_allowlist_threshold: -3,
    smtpd_client_restrictions: ["reject_dnsbl_score", "reject"],
  });
  assert.equal(allowed.shown, "permit", "the allow list skips the rest of the list");
  const notEnough = await check("192.0.2.3", {
    smtpd_dnsbl_allowlist_threshold: -4,
    smtpd_client_restrictions: ["reject_dnsbl_score", "reject"],
  });
  assert.match(notEnough.shown, /^reject 554 5\.7\.1 /, "-3 is above -4: the list goes on");
});

Deno.test("reject_dnsbl_score: a list that fails adds nothing and is logged", async () => {
  const r = await check("192.0.2.5", { smtpd_dnsbl_threshold: 2 });
  assert.equal(r.shown, "permit");
  assert.deepEqual(r.warnings, ["5.2.0.192.big.example: RBL lookup error: SERVFAIL"]);
});

Deno.test("reject_dnsbl_score: a list error answer does not count; a filter narrows the codes", async () => {
  assert.equal((await check("192.0.2.6", { smtpd_dnsbl_threshold: 1 })).shown, "permit");
  // small.example answers 127.0.0.4 for .1, inside [2..4]; outside it, no weight.
  const narrow = await check("192.0.2.1", {
    smtpd_dnsbl_sites: ["big.example*2", "small.example=127.0.0.[2..3]"],
  });
  assert.equal(narrow.shown, "permit");
});

Deno.test("reject_dnsbl_score skips local submissions", async () => {
  const text =
    'smtpd_client_restrictions = ["reject_dnsbl_score"]\nsmtpd_dnsbl_sites = ["big.example"]' +
    "\nsmtpd_delay_reject = false";
  const config = resolveConfigText(text, { systemHostname: "mx.example.com" });
  const dns = fakeDns(ZONE);
  const policy = compilePolicy(config, { dns, warn: () => {} });
  const d = await policy.check("client", {
    clientAddress: "192.0.2.1",
    clientName: "localhost",
    reverseName: "localhost",
    nameStatus: "ok",
    reverseStatus: "ok",
    local: true,
    helo: undefined,
    sender: undefined,
    recipient: undefined,
  });
  assert.equal(d.kind, "permit");
  assert.deepEqual(dns.calls, [], "no list is asked about a local submission");
});

const BAD_SITES: [string, RegExp][] = [
  ["big.example*x", /bad site "big\.example\*x"/],
  ["big!example", /bad site "big!example"/],
  ["big.example=127.0.0.[x]*2", /bad reply filter "127\.0\.0\.\[x\]"/],
];

for (const [site, re] of BAD_SITES) {
  Deno.test(`reject_dnsbl_score refuses the site ${JSON.stringify(site)} at start, with file and line`, () => {
    const text = `smtpd_dnsbl_sites = ${JSON.stringify([site])}\n` +
      'smtpd_client_restrictions = ["reject_dnsbl_score"]';
    const config = resolveConfigText(text, { systemHostname: "mx.example.com", file: "t.toml" });
    assert.throws(() => compilePolicy(config, { dns: fakeDns({}), warn: () => {} }), (e) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, re);
      assert.match(e.message, /^t\.toml:\d+: /);
      return true;
    });
  });
}

Deno.test("reject_dnsbl_score without smtpd_dnsbl_sites is a start-up error", () => {
  const config = resolveConfigText('smtpd_client_restrictions = ["reject_dnsbl_score"]', {
    systemHostname: "mx.example.com",
  });
  assert.throws(
    () => compilePolicy(config, { dns: fakeDns({}), warn: () => {} }),
    /smtpd_dnsbl_sites is empty/,
  );
});

Deno.test("parseSite() reads zone, filter and weight", () => {
  const s = parseSite("list.example=127.0.0.[2..4]*-3");
  assert.ok(typeof s !== "string");
  assert.equal(s.zone, "list.example");
  assert.equal(s.weight, -3);
  assert.equal(s.match?.("127.0.0.3"), true);
  assert.equal(s.match?.("127.0.0.5"), false);
  const plain = parseSite("list.example");
  assert.ok(typeof plain !== "string");
  assert.equal(plain.weight, 1);
  assert.equal(plain.match, undefined);
});
