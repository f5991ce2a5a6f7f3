/**
 * The conformance cases every key → value lookup table backend runs (Hono's
 * `common.case.test.ts` pattern): a backend's test file calls
 * {@linkcode runTableConformance} with a function that builds a table of
 * that type from entries, and gets one `Deno.test` per case.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { LookupTable } from "./types.ts";

/** Builds a table of the backend under test from key/value entries, in order. */
export type MakeTable = (
  entries: [key: string, value: string][],
) => LookupTable | Promise<LookupTable>;

/** How a backend differs where Postfix's table types differ. */
export interface TableConformanceOptions {
  /**
   * Which definition of a repeated key is kept: texthash keeps the first
   * (Postfix warns "duplicate entry" and ignores the rest), inline keeps the
   * last (Postfix's dict_inline does "no duplicate checks").
   * @default {"first"}
   */
  duplicates?: "first" | "last";
}

/**
 * Registers the shared lookup table cases for one backend.
 * @param label the table type, used in the test names (e.g. "texthash")
 * @param makeTable builds a table of that type from entries
 * @param options where the backend legitimately differs
 */
export function runTableConformance(
  label: string,
  makeTable: MakeTable,
  options: TableConformanceOptions = {},
): void {
  const { duplicates = "first" } = options;

  Deno.test(`${label}: lookup() returns the value of a listed key`, async () => {
    const table = await makeTable([["example.com", "OK"], ["example.net", "REJECT"]]);
    assert.deepEqual(await table.lookup("example.com"), { kind: "found", value: "OK" });
    assert.deepEqual(await table.lookup("example.net"), { kind: "found", value: "REJECT" });
  });

  Deno.test(`${label}: lookup() returns notFound for a key that is not listed`, async () => {
    const table = await makeTable([["example.com", "OK"]]);
    for (const key of ["example.org", "sub.example.com", "com", "example.co", ""]) {
      assert.deepEqual(await table.lookup(key), { kind: "notFound" }, `key ${JSON.stringify(key)}`);
    }
  });

  Deno.test(`${label}: lookup() matches keys case-insensitively`, async () => {
    const table = await makeTable([["Mixed.Example.COM", "OK"], ["user@example.org", "DUNNO"]]);
    for (const key of ["mixed.example.com", "MIXED.EXAMPLE.COM", "Mixed.Example.COM"]) {
      assert.deepEqual(await table.lookup(key), { kind: "found", value: "OK" }, key);
    }
    assert.deepEqual(await table.lookup("USER@Example.ORG"), { kind: "found", value: "DUNNO" });
  });

  Deno.test(`${label}: lookup() keeps the value verbatim, inner spaces and case included`, async () => {
    const value = "554 5.7.1  Go Away,  Spammer";
    const table = await makeTable([["bad.example", value], [
      "k2",
      "reject_unknown_client_hostname permit",
    ]]);
    assert.deepEqual(await table.lookup("bad.example"), { kind: "found", value });
    assert.deepEqual(await table.lookup("k2"), {
      kind: "found",
      value: "reject_unknown_client_hostname permit",
    });
  });

  Deno.test(`${label}: lookup() keeps the ${duplicates} definition of a repeated key`, async () => {
    const table = await makeTable([["dup.example", "first"], ["other.example", "x"], [
      "DUP.example",
      "second",
    ]]);
    assert.deepEqual(await table.lookup("dup.example"), {
      kind: "found",
      value: duplicates === "first" ? "first" : "second",
    });
    assert.deepEqual(await table.lookup("other.example"), { kind: "found", value: "x" });
  });

  Deno.test(`${label}: values lists every value of the table`, async () => {
    const table = await makeTable([
      ["a.example", "OK"],
      ["b.example", "REJECT go away"],
      ["c.example", "450 4.7.1 later"],
      ["d.example", "OK"],
    ]);
    assert.ok(table.values !== undefined, "values must be enumerable");
    assert.deepEqual(
      [...new Set(table.values)].sort(),
      ["450 4.7.1 later", "OK", "REJECT go away"],
    );
  });

  Deno.test(`${label}: name is the table's spec`, async () => {
    const table = await makeTable([["a.example", "OK"]]);
    assert.match(table.name, new RegExp(`^${label}:`));
  });
}
