import assert from "node:assert/strict";
import {
  envelopeAttributes,
  envelopeSendOpts,
  isAscii,
  longestEnvelopeRecord,
  uniqueRecipients,
} from "./envelope_records.ts";

Deno.test("uniqueRecipients() drops a recipient given twice with the same DSN facts only", () => {
  const r = uniqueRecipients(
    ["a@x", "a@x", "a@x", "b@x"],
    [
      { orcpt: "rfc822;a@x" },
      { orcpt: "rfc822;a@x" },
      { orcpt: "rfc822;a@x", notify: 2 },
      undefined,
    ],
    "",
  );
  assert.deepEqual(r, [
    { address: "a@x", dsnOrcpt: "rfc822;a@x" },
    { address: "a@x", dsnOrcpt: "rfc822;a@x", notify: 2 },
    { address: "b@x" },
  ]);
});

Deno.test("uniqueRecipients() compares as Postfix's cleanup does, case folded (checked with Postfix 3.7)", () => {
  const addresses = [
    "a@x",
    "A@X",
    "j\u00f6rg@b\u00fccher.example",
    "J\u00d6RG@B\u00dcCHER.example",
    "stra\u00dfe@x",
    "STRASSE@x",
    "\u1f40\u03b4\u03cc\u03c2@x",
    "\u1f48\u0394\u038c\u03a3@x",
  ];
  const r = uniqueRecipients(addresses, addresses.map((a) => ({ orcpt: `rfc822;${a}` })), "");
  assert.deepEqual(r.map((x) => x.address), [
    "a@x",
    "j\u00f6rg@b\u00fccher.example",
    "stra\u00dfe@x",
    "\u1f40\u03b4\u03cc\u03c2@x",
  ]);
  // Other DSN facts still keep both.
  assert.equal(
    uniqueRecipients(
      ["a@x", "A@x"],
      [{ orcpt: "rfc822;a@x" }, { orcpt: "rfc822;A@x", notify: 2 }],
      "",
    )
      .length,
    2,
  );
  // The dotless ı folds to itself, not to "i": two recipients (merging
  // them would drop one).
  assert.equal(uniqueRecipients(["\u0131@x", "i@x", "I@x"], undefined, "").length, 2);
  assert.equal(uniqueRecipients(["\ufb01@x", "FI@x"], undefined, "").length, 1);
});

Deno.test("uniqueRecipients() folds ASCII only without smtputf8_enable, as Postfix's casefold()", () => {
  // util_utf8_enable follows smtputf8_enable: casefold() then lowercases
  // ASCII letters only, so j\u00d6rg and j\u00f6rg are two recipients.
  const addresses = ["j\u00f6rg@x", "J\u00d6RG@X", "JORG@X", "jorg@x"];
  assert.deepEqual(uniqueRecipients(addresses, undefined, "", false).map((r) => r.address), [
    "j\u00f6rg@x",
    "J\u00d6RG@X",
    "JORG@X",
  ]);
  assert.equal(uniqueRecipients(addresses, undefined, "").length, 2);
});

Deno.test("uniqueRecipients() adds always_bcc once, with NOTIFY=NEVER", () => {
  assert.deepEqual(uniqueRecipients(["a@x"], undefined, "bcc@x"), [
    { address: "a@x" },
    { address: "bcc@x", notify: 1 },
  ]);
  assert.deepEqual(uniqueRecipients(["bcc@x"], undefined, "bcc@x"), [{ address: "bcc@x" }]);
});

Deno.test("envelopeSendOpts() sets Postfix's requested and sender bits", () => {
  assert.equal(envelopeSendOpts(false, "a@x", true), 0);
  assert.equal(envelopeSendOpts(true, "a@x", true), 1);
  assert.equal(envelopeSendOpts(true, "\u00e9@x", true), 5);
  assert.equal(envelopeSendOpts(false, "\u00e9@x", false), 0);
  assert.equal(isAscii("plain"), true);
  assert.equal(isAscii("pl\u00e4in"), false);
});

Deno.test("envelopeAttributes() puts the DSN envelope facts after rewrite_context", () => {
  const origin = {
    local: true,
    clientName: "localhost",
    clientAddress: "127.0.0.1",
    clientPort: "0",
    helo: undefined,
    protocol: "ESMTP",
  };
  assert.deepEqual(envelopeAttributes({ origin, dsnEnvid: "E1", dsnRet: 2 }), [
    ["rewrite_context", "local"],
    ["envelope_id", "E1"],
    ["ret_flags", "2"],
  ]);
  const remote = envelopeAttributes({ origin: { ...origin, local: false } });
  assert.deepEqual(remote[0], ["rewrite_context", "remote"]);
  assert.ok(remote.some(([n]) => n === "client_address"));
  assert.ok(!remote.some(([n]) => n === "envelope_id" || n === "ret_flags"));
});

Deno.test("longestEnvelopeRecord() counts UTF-8 bytes of S, O/R, dsn_orig_rcpt and A name=value", () => {
  assert.equal(longestEnvelopeRecord("s@x", [], [["a", "b"]]), 3);
  assert.equal(longestEnvelopeRecord("", [], [["helo_name", "h".repeat(100)]]), 110);
  assert.equal(longestEnvelopeRecord("", [{ address: "\u00fc@x" }], []), 4);
  assert.equal(
    longestEnvelopeRecord("", [{ address: "a@x", dsnOrcpt: "rfc822;a@x" }], []),
    "dsn_orig_rcpt=rfc822;a@x".length,
  );
});
