import assert from "node:assert/strict";
import { chainFiles, readSniTable, sniLookup } from "./tls_sni.ts";

Deno.test("SNI lookup: the name, then each ancestor with a leading dot; first table first", () => {
  const a = new Map([["mx.example.com", "a.pem"], [".example.net", "net.pem"]]);
  const b = new Map([["mx.example.com", "b.pem"], [".example.com", "com.pem"]]);
  assert.equal(sniLookup([a, b], "MX.Example.COM."), "a.pem");
  assert.equal(sniLookup([a, b], "other.example.com"), "com.pem");
  assert.equal(sniLookup([a, b], "a.b.example.net"), "net.pem");
  assert.equal(sniLookup([a, b], "example.net"), undefined); // ".example.net" is for subdomains
  assert.equal(sniLookup([a, b], "example.org"), undefined);
});

Deno.test("SNI tables: texthash and inline read whole, keys in lower case; others refused", () => {
  const t = readSniTable(
    "texthash:/x",
    () => "# c\nMX.Example.com /k/mx.pem\n.example.org /k/org.pem\n",
  );
  assert.deepEqual([...t], [["mx.example.com", "/k/mx.pem"], [".example.org", "/k/org.pem"]]);
  const i = readSniTable("inline:{ a.example = /k/a.pem }", () => "");
  assert.equal(i.get("a.example"), "/k/a.pem");
  assert.throws(() => readSniTable("cidr:/x", () => ""), /only texthash: and inline/);
  assert.deepEqual(chainFiles("/a.pem, /b.pem"), ["/a.pem", "/b.pem"]);
});
