import assert from "node:assert/strict";
import { resolveConfigText } from "./config/mod.ts";
import { compilePolicy, type DnsAnswer, type DnsResolver, type DnsType } from "./policy/mod.ts";
import { explain, type ExplainInput, formatExplanation } from "./explain.ts";

const RECORDS: Record<string, string[]> = {
  "A bad.example.rhsbl.example": ["127.0.0.2"],
  "TXT bad.example.rhsbl.example": ["listed"],
  "A 9.2.0.192.dnswl.example": ["127.0.10.2"],
  "MX spam.example": ["10 mx.spam.example"],
  "A mx.spam.example": ["203.0.113.7"],
};

const dns: DnsResolver = {
  query(name: string, type: DnsType): Promise<DnsAnswer> {
    const r = RECORDS[`${type} ${name}`];
    return Promise.resolve(r ? { kind: "ok", records: r } : { kind: "notFound" });
  },
};

async function explained(lists: Record<string, string[]>, input: ExplainInput): Promise<string> {
  const text = [
    "smtpd_delay_reject = false",
    'mydestination = ["example.com"]',
    ...Object.entries(lists).map(([k, v]) => `${k} = ${JSON.stringify(v)}`),
  ].join("\n");
  const loaded = resolveConfigText(text, { systemHostname: "mx.example.com", file: "t.toml" });
  const policy = compilePolicy(loaded, { dns, warn: () => {} });
  return formatExplanation(await explain(input, { config: loaded.config, policy, dns }));
}

Deno.test("smtpd explain shows each RHSBL restriction's query, answer, reason and reply", async () => {
  const out = await explained({
    "smtpd_helo_restrictions": ["reject_rhsbl_helo rhsbl.example"],
    "smtpd_sender_restrictions": ["reject_rhsbl_sender rhsbl.example"],
  }, {
    client: "192.0.2.1",
    clientName: "c.example",
    helo: "ok.example",
    from: "a@bad.example",
    to: [],
  });
  assert.match(
    out,
    /try reject_rhsbl_helo rhsbl\.example\n\s+dns A ok\.example\.rhsbl\.example: not found/,
  );
  assert.match(
    out,
    /try reject_rhsbl_sender rhsbl\.example\n\s+dns A bad\.example\.rhsbl\.example: 127\.0\.0\.2\n\s+dns TXT bad\.example\.rhsbl\.example: listed\n\s+=> reject: 554 Service unavailable; Sender address \[a@bad\.example\] blocked using rhsbl\.example; listed/,
  );
  assert.match(out, /decided by: smtpd_sender_restrictions: reject_rhsbl_sender rhsbl\.example/);
});

Deno.test("smtpd explain shows permit_dnswl_client's query and its permit", async () => {
  const out = await explained({
    "smtpd_client_restrictions": ["permit_dnswl_client dnswl.example", "reject"],
  }, { client: "192.0.2.9", clientName: "c.example", to: [] });
  assert.match(
    out,
    /try permit_dnswl_client dnswl\.example\n\s+dns A 9\.2\.0\.192\.dnswl\.example: 127\.0\.10\.2\n\s+=> permit/,
  );
  assert.doesNotMatch(out, /try reject\n/);
});

Deno.test("smtpd explain shows check_reverse_client_mx_access's MX lookup and table key", async () => {
  const out = await explained({
    "smtpd_client_restrictions": [
      "check_reverse_client_mx_access inline:{ mx.spam.example=REJECT no }",
    ],
  }, { client: "192.0.2.1", clientName: "spam.example", to: [] });
  assert.match(out, /dns MX spam\.example: 10 mx\.spam\.example/);
  assert.match(out, /lookup inline:.* key "mx\.spam\.example": found: REJECT no/);
  assert.match(out, /reply: 554 5\.7\.1 <spam\.example>: Unverified Client host rejected: no/);
});

Deno.test("smtpd explain shows sleep's pause without waiting, and the envelope restrictions", async () => {
  const t0 = performance.now();
  const out = await explained({
    "smtpd_client_restrictions": ["sleep 30"],
    "smtpd_recipient_restrictions": [
      "reject_multi_recipient_bounce",
      "permit_auth_destination",
      "defer_unauth_destination",
    ],
  }, { client: "192.0.2.1", clientName: "c.example", from: "", to: ["u@other.example"] });
  // Far below the 30 s sleep (room for a loaded host).
  assert.ok(performance.now() - t0 < 15_000, "explain waited out the sleep");
  assert.match(out, /try sleep 30\n\s+note: pause 30 seconds, then go on/);
  assert.match(out, /try reject_multi_recipient_bounce\n\s+try permit_auth_destination/);
  assert.match(
    out,
    /try defer_unauth_destination\n\s+=> defer: 454 <u@other\.example>: Relay access denied/,
  );
  assert.match(out, /reply: 454 4\.7\.1 <u@other\.example>: Relay access denied/);
});

Deno.test("smtpd explain counts accepted recipients: a bounce's second recipient is refused", async () => {
  const out = await explained({
    "smtpd_recipient_restrictions": ["reject_multi_recipient_bounce", "permit"],
  }, {
    client: "192.0.2.1",
    clientName: "c.example",
    from: "",
    to: ["a@x.example", "b@x.example"],
  });
  assert.match(out, /RCPT a@x\.example\n(.*\n)*?\s+reply: accepted \(permit\)/);
  assert.match(
    out,
    /RCPT b@x\.example\n(.*\n)*?\s+note: null sender with 2 recipients\n\s+=> reject: 550 <b@x\.example>: Recipient address rejected: Multi-recipient bounce/,
  );
});
