import assert from "node:assert/strict";
import { describeDiscards, ehloDiscards, ehloKeywords } from "./ehlo_keywords.ts";

const BASE = { messageSizeLimit: 1000, vrfy: true, etrn: true };

Deno.test("ehloKeywords() lists Postfix's keywords in Postfix's order", () => {
  assert.deepEqual(ehloKeywords({ ...BASE, starttls: true, smtputf8: true }), [
    "PIPELINING",
    "SIZE 1000",
    "VRFY",
    "ETRN",
    "STARTTLS",
    "ENHANCEDSTATUSCODES",
    "8BITMIME",
    "DSN",
    "SMTPUTF8",
    "CHUNKING",
  ]);
  assert.ok(!ehloKeywords({ ...BASE, smtputf8: false }).includes("SMTPUTF8"));
});

Deno.test("ehloKeywords() leaves out discarded keywords, SIZE by its name", () => {
  const discard = ehloDiscards(["size, dsn", "Pipelining SMTPUTF8"]);
  assert.deepEqual(ehloKeywords({ ...BASE, smtputf8: true, discard }), [
    "VRFY",
    "ETRN",
    "ENHANCEDSTATUSCODES",
    "8BITMIME",
    "CHUNKING",
  ]);
});

Deno.test("ehloDiscards() ignores unknown names, as Postfix does", () => {
  const d = ehloDiscards(["bogus", "silent-discard", "chunking"]);
  assert.deepEqual([...d].sort(), ["CHUNKING", "SILENT-DISCARD"]);
  assert.equal(describeDiscards(ehloDiscards(["dsn", "8bitmime", "etrn"])), "8BITMIME ETRN DSN");
});
