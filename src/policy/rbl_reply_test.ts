import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, resolveConfigText } from "../config/mod.ts";
import { decide, type Facts, show } from "./_policy_cases.ts";
import { fakeDns, type Zone } from "./_fake_dns.ts";
import { compilePolicy } from "./compile.ts";
import { expandTemplate } from "./rbl_reply.ts";

const VALUES: Record<string, string> = { a: "A", b: "B", empty: "" };
const lookup = (n: string) => VALUES[n];

const EXPANSIONS: [template: string, out: string | undefined][] = [
  ["$a and ${b}", "A and B"],
  ["$(a)", "A"],
  ["${a?has $b}", "has B"],
  ["${empty?has $b}", ""],
  ["${empty:none}", "none"],
  ["${a:none}", ""],
  ["cost $$5", "cost $5"],
  ["$nope", undefined],
  ["${a?$nope}", undefined],
  ["${a", undefined],
  ["$ alone", undefined],
];

for (const [template, out] of EXPANSIONS) {
  Deno.test(`expandTemplate(${JSON.stringify(template)}) is ${JSON.stringify(out)}`, () => {
    assert.equal(expandTemplate(template, lookup), out);
  });
}

const ZONE: Zone = {
  "bad.example.rhsbl.example": { A: ["127.0.0.2"], TXT: ["why"] },
  "2.2.0.192.dnsbl.example": { A: ["127.0.0.2"] },
  "ctl.example.rhsbl.example": { A: ["127.0.0.2"], TXT: ["bell\u0007and \u00e9"] },
};
const SENDER_LIST = ["reject_rhsbl_sender rhsbl.example=127.0.0.2"];
const FACTS: Facts = { from: "joe@bad.example", to: "u@example.com" };

async function tableFile(text: string): Promise<string> {
  const dir = new URL("../../var/tests/", import.meta.url).pathname;
  await Deno.mkdir(dir, { recursive: true });
  const file = join(await Deno.makeTempDir({ dir, prefix: "rbl-reply-" }), "replies");
  await Deno.writeTextFile(file, text);
  return `texthash:${file}`;
}

Deno.test("default_rbl_reply sets the text, the enhanced code and the session names", async () => {
  const { decision } = await decide({
    params: {
      "smtpd_recipient_restrictions": SENDER_LIST,
      "default_rbl_reply":
        "$rbl_code 5.7.9 No mail from $sender_domain ($rbl_class, $rbl_domain: $rbl_reason${rbl_reason:none})",
    },
    stage: "recipient",
    facts: FACTS,
    dns: ZONE,
  });
  assert.equal(
    show(decision),
    "reject 554 5.7.9 No mail from bad.example (Sender address, rhsbl.example: why)",
  );
});

Deno.test("rbl_reply_maps: the zone as written wins over the bare zone; the default is the fallback", async () => {
  const spec = await tableFile(
    "rhsbl.example=127.0.0.2 550 Listed ($rbl_what) with filter\n" +
      "rhsbl.example 550 Listed ($rbl_what)\n" +
      "dnsbl.example 450 4.7.1 Client $client_address listed${rbl_reason?: $rbl_reason}\n",
  );
  const params = { "rbl_reply_maps": [spec] };
  const run = async (list: string[], facts = FACTS) =>
    show(
      (await decide({
        params: { ...params, "smtpd_recipient_restrictions": list },
        stage: "recipient",
        facts,
        dns: ZONE,
      })).decision,
    );
  assert.equal(await run(SENDER_LIST), "reject 550 5.7.1 Listed (joe@bad.example) with filter");
  assert.equal(
    await run(["reject_rhsbl_sender rhsbl.example"]),
    "reject 550 5.7.1 Listed (joe@bad.example)",
  );
  assert.equal(
    await run(["reject_rbl_client dnsbl.example"], { ...FACTS, client: "x[192.0.2.2]" }),
    "defer 450 4.7.1 Client 192.0.2.2 listed",
  );
});

Deno.test("a reply without a 4xx/5xx code answers 450 4.7.1 Service unavailable, with a warning", async () => {
  const { decision, warnings } = await decide({
    params: { "smtpd_recipient_restrictions": SENDER_LIST, "default_rbl_reply": "go away" },
    stage: "recipient",
    facts: FACTS,
    dns: ZONE,
  });
  assert.equal(show(decision), "defer 450 4.7.1 Service unavailable");
  assert.deepEqual(warnings, ["rbl response code configuration error: go away"]);
});

Deno.test("a bad template in rbl_reply_maps falls back to default_rbl_reply, with a warning", async () => {
  const spec = await tableFile("rhsbl.example 554 $no_such_name\n");
  const { decision, warnings } = await decide({
    params: {
      "smtpd_recipient_restrictions": ["reject_rhsbl_sender rhsbl.example"],
      "rbl_reply_maps": [spec],
    },
    stage: "recipient",
    facts: FACTS,
    dns: ZONE,
  });
  assert.equal(
    show(decision),
    "reject 554 5.7.1 Service unavailable; Sender address [joe@bad.example] blocked using rhsbl.example; why",
  );
  assert.deepEqual(warnings, [
    "bad rbl reply template for domain rhsbl.example: 554 $no_such_name",
  ]);
});

Deno.test("text from outside (DNS, client) in a reply keeps printable ASCII only", async () => {
  const { decision } = await decide({
    params: {
      "smtpd_recipient_restrictions": ["reject_rhsbl_sender rhsbl.example"],
      "default_rbl_reply": "$rbl_code $rbl_reason",
    },
    stage: "recipient",
    facts: { from: "joe@ctl.example", to: "u@example.com" },
    dns: ZONE,
  });
  assert.equal(show(decision), "reject 554 5.7.1 bell_and _");
});

Deno.test("a default_rbl_reply that does not expand stops the start with file:line", () => {
  const loaded = resolveConfigText(
    'default_rbl_reply = "$rbl_code ${oops}"\nsmtpd_client_restrictions = ["reject_rbl_client z.example"]',
    { systemHostname: "mx.example.com", file: "t.toml" },
  );
  assert.throws(() => compilePolicy(loaded, { dns: fakeDns({}), warn: () => {} }), (e) => {
    assert.ok(e instanceof ConfigError);
    assert.match(
      e.message,
      /^t\.toml:2: smtpd_client_restrictions: default_rbl_reply: bad template/,
    );
    return true;
  });
});
