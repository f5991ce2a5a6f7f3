import assert from "node:assert/strict";
import { filteredResolver, recordText } from "./dns_filter.ts";
import { fakeDns } from "./_fake_dns.ts";
import { openTable } from "./tables/mod.ts";

Deno.test("recordText() writes records as Postfix's dns_strrecord does, TTL 0", () => {
  assert.equal(
    recordText("example.com", "MX", "10 mx.example.com"),
    "example.com. 0 IN MX 10 mx.example.com.",
  );
  assert.equal(recordText("example.com", "MX", "0 ."), "example.com. 0 IN MX 0 .");
  assert.equal(recordText("x.example", "A", "192.0.2.1"), "x.example. 0 IN A 192.0.2.1");
  assert.equal(
    recordText("example.org", "NS", "ns1.example.net"),
    "example.org. 0 IN NS ns1.example.net.",
  );
});

Deno.test("filteredResolver() drops IGNOREd records and reports an answer left empty as filtered", async () => {
  const dns = fakeDns({
    "x.example": { A: ["192.0.2.1", "192.0.2.2"] },
    "y.example": { A: ["192.0.2.3"] },
  });
  const table = openTable(
    "inline:{ {x.example. 0 IN A 192.0.2.1=IGNORE}, {y.example. 0 IN A 192.0.2.3=IGNORE} }",
  );
  const r = filteredResolver(dns, [table], () => {});
  assert.deepEqual(await r.query("x.example", "A"), { kind: "ok", records: ["192.0.2.2"] });
  assert.deepEqual(await r.query("y.example", "A"), { kind: "filtered" });
  assert.deepEqual(await r.query("z.example", "A"), { kind: "notFound" });
});

Deno.test("filteredResolver() makes an unknown action a temporary failure with a warning", async () => {
  const warnings: string[] = [];
  const dns = fakeDns({ "x.example": { A: ["192.0.2.1"] } });
  const r = filteredResolver(dns, [openTable("static:oops")], (w) => warnings.push(w));
  assert.deepEqual(await r.query("x.example", "A"), {
    kind: "tempfail",
    reason: "Invalid DNS reply filter syntax",
  });
  assert.deepEqual(warnings, ['smtpd_dns_reply_filter: unknown DNS filter action: "oops"']);
});
