import assert from "node:assert/strict";
import { foldCase } from "./fold_case.ts";

const CASES: [text: string, folded: string][] = [
  ["User@Example.COM", "user@example.com"],
  ["STRASSE", "strasse"],
  ["straße", "strasse"],
  ["STRAẞE", "strasse"],
  ["ſun", "sun"],
  ["\u212Ailo", "kilo"],
  ["ΣΟΦΟΣ", "σοφοσ"],
  ["σοφος", "σοφοσ"],
  ["ǅ", "ǆ"],
  ["ﬀ", "ff"],
  ["ıstanbul", "ıstanbul"],
  ["İstanbul", "i\u0307stanbul"],
  ["Ꭰꭰ", "ᎠᎠ"],
  ["ᏸ", "Ᏸ"],
  ["ÄRGER", "ärger"],
];

for (const [text, folded] of CASES) {
  Deno.test(`foldCase() folds "${text}" to "${folded}" as ICU's full case folding`, () => {
    assert.equal(foldCase(text), folded);
  });
}
