import assert from "node:assert/strict";
import { classifyAnswer, compileFilter } from "./dnsbl.ts";

const FILTERS: [filter: string, matches: string[], misses: string[]][] = [
  ["127.0.0.2", ["127.0.0.2"], ["127.0.0.3", "127.0.0.20", "127.0.1.2"]],
  ["127.0.0.[2;3]", ["127.0.0.2", "127.0.0.3"], ["127.0.0.4", "127.0.0.23"]],
  ["127.0.[0;1].2", ["127.0.0.2", "127.0.1.2"], ["127.0.2.2", "127.0.1.3"]],
  ["127.0.0.[2;5;11]", ["127.0.0.5", "127.0.0.11"], ["127.0.0.10", "127.0.0.3"]],
];

for (const [filter, matches, misses] of FILTERS) {
  Deno.test(`compileFilter() builds a matcher for ${filter}`, () => {
    const match = compileFilter(filter);
    assert.ok(match, `${filter} should compile`);
    for (const ip of matches) assert.equal(match(ip), true, `${ip} should match`);
    for (const ip of misses) assert.equal(match(ip), false, `${ip} should not match`);
  });
}

const RANGE_FILTERS: [filter: string, matches: string[], misses: string[]][] = [
  ["127.0.0.[2..11]", ["127.0.0.2", "127.0.0.7", "127.0.0.11"], ["127.0.0.1", "127.0.0.12"]],
  ["127.0.0.[2..3;10]", ["127.0.0.3", "127.0.0.10"], ["127.0.0.4"]],
];

for (const [filter, matches, misses] of RANGE_FILTERS) {
  Deno.test({
    name: `compileFilter() builds a matcher for the range ${filter}`,
    // Regression (found by these tests, fixed): compileFilter() does filter.split(".") first, so the ".." inside
    // "[2..11]" splits the last octet apart and the filter is refused
    // (undefined). Fix: split on dots outside brackets, e.g.
    // `filter.match(/\[[^\]]*\]|[^.[\]]+/g)` plus a check that they rejoin to the input.
    fn: () => {
      const match = compileFilter(filter);
      assert.ok(match, `${filter} should compile`);
      for (const ip of matches) assert.equal(match(ip), true, `${ip} should match`);
      for (const ip of misses) assert.equal(match(ip), false, `${ip} should not match`);
    },
  });
}

for (const filter of ["127.0.0", "127.0.0.2.1", "127.0.0.x", "127.0.0.[x]", "127.0.0.[]", ""]) {
  Deno.test(`compileFilter() refuses the malformed filter ${JSON.stringify(filter)}`, () => {
    assert.equal(compileFilter(filter), undefined);
  });
}

const ANSWERS: [ip: string, kind: "listed" | "error"][] = [
  ["127.0.0.2", "listed"],
  ["127.0.0.10", "listed"],
  ["127.0.1.2", "listed"],
  ["127.1.0.4", "listed"],
  ["127.0.0.0", "error"],
  ["127.0.0.1", "error"],
  ["127.255.255.252", "error"],
  ["127.255.255.254", "error"],
  ["127.255.255.255", "error"],
  ["10.0.0.2", "error"],
  ["192.0.2.1", "error"],
  ["not an address", "error"],
];

for (const [ip, kind] of ANSWERS) {
  Deno.test(`classifyAnswer() treats ${ip} as ${kind === "listed" ? "a listing" : "a list error"}`, () => {
    assert.equal(classifyAnswer(ip), kind);
  });
}
