import assert from "node:assert/strict";
import { resolveAddress } from "./resolve_address.ts";
import { compileDomainList } from "./domain_list.ts";
import { NO_DESTINATIONS } from "./destinations.ts";

const destinations = {
  ...NO_DESTINATIONS,
  local: compileDomainList(["mx.test.example"], {
    table: () => {
      throw new Error("no tables here");
    },
    readFile: () => "",
  }, false),
};
const options = { myorigin: "origin.example", destinations };

const CASES: [string, { local: string; domain: string }, string][] = [
  ["appends $myorigin", { local: "u", domain: "" }, "u@origin.example"],
  [
    "drops a trailing dot and folds the domain",
    { local: "u", domain: "Dom.Example." },
    "u@dom.example",
  ],
  ["swaps a bang path without a domain", { local: "site.example!u", domain: "" }, "u@site.example"],
  [
    "takes the last % without a domain",
    { local: "u%a.example%b.example", domain: "" },
    "u%a.example@b.example",
  ],
  [
    "takes % off our domain",
    { local: "x%spammer.example", domain: "mx.test.example" },
    "x@spammer.example",
  ],
  [
    "swaps ! off our domain",
    { local: "spammer.example!x", domain: "mx.test.example" },
    "x@spammer.example",
  ],
  [
    "opens a quoted @ off our domain",
    { local: "x@spammer.example", domain: "mx.test.example" },
    "x@spammer.example",
  ],
  [
    "leaves % under another domain",
    { local: "x%spammer.example", domain: "other.example" },
    "x%spammer.example@other.example",
  ],
  [
    "strips our domain twice",
    { local: "x%mx.test.example", domain: "mx.test.example" },
    "x@mx.test.example",
  ],
  ["keeps the null sender", { local: "", domain: "" }, "@"],
  [
    "does not open a local part that needs quotes when $myorigin is not ours",
    { local: "a b%spammer.example", domain: "" },
    "a b%spammer.example@origin.example",
  ],
];

for (const [does, a, want] of CASES) {
  Deno.test(`resolveAddress() ${does}`, async () => {
    const r = await resolveAddress(a, options);
    assert.equal(`${r.local}@${r.domain}`, want);
  });
}
