import assert from "node:assert/strict";
import { compileDomainList, expandListFiles, inDomainList, namedIn } from "./domain_list.ts";
import { openTable } from "./tables/mod.ts";

const files: Record<string, string> = {
  "/a": "one.example, /b # a comment\n",
  "/b": "two.example\n",
  "/loop": "/loop\n",
};
const read = (p: string) => {
  const t = files[p];
  if (t === undefined) throw new Error(`cannot read "${p}"`);
  return t;
};

Deno.test("expandListFiles() replaces /file entries by their words, files in files too, bounded", () => {
  assert.deepEqual(expandListFiles(["zero.example", "/a"], read), [
    "zero.example",
    "one.example",
    "two.example",
  ]);
  assert.throws(() => expandListFiles(["/loop"], read), /more than 10 deep/);
  assert.throws(() => expandListFiles(["/none"], read), /cannot read/);
});

Deno.test("domain lists: subdomains match only where asked; tables are asked for parents too", async () => {
  const env = { table: (s: string) => openTable(s), readFile: read };
  const mydestination = compileDomainList(["Example.COM."], env, false);
  assert.ok(namedIn("example.com", mydestination));
  assert.ok(!namedIn("sub.example.com", mydestination));
  const relay = compileDomainList([".example.org", "inline:{ tabled.example=x }"], env, true);
  assert.equal(await inDomainList("a.b.example.org", relay, undefined), "yes");
  assert.equal(await inDomainList("deep.tabled.example", relay, undefined), "yes");
  assert.equal(await inDomainList("other.example", relay, undefined), "no");
  assert.equal(await inDomainList("[192.0.2.1]", relay, undefined), "no");
  const broken = compileDomainList(["socketmap:unix:/nonexistent/sock:domains"], env, false);
  assert.equal(await inDomainList("x.example", broken, undefined), "tempfail");
});

Deno.test("namedIn() folds case as Postfix's casefold(): ß is ss, the dotless ı stays apart, no IDNA", () => {
  const env = { table: (s: string) => openTable(s), readFile: read };
  const list = compileDomainList(["strasse.example", "maß.example", "istanbul.example"], env, true);
  for (const yes of ["straße.example", "STRASSE.example", "ſtrasse.example", "x.MASS.example"]) {
    assert.ok(namedIn(yes, list), yes);
  }
  for (const no of ["ıstanbul.example", "İstanbul.example", "xn--mass-xxa.example"]) {
    assert.ok(!namedIn(no, list), no);
  }
  const aLabels = compileDomainList(["xn--bcher-kva.example"], env, false);
  assert.ok(!namedIn("bücher.example", aLabels));
  assert.ok(namedIn("XN--BCHER-KVA.example", aLabels));
});
