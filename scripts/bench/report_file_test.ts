import assert from "node:assert/strict";
import { replaceSection } from "./report_file.ts";

Deno.test("replaceSection appends a section to a file without one", () => {
  const out = replaceSection("# Benchmarks\n\nmethod\n", "full", "## run 1\n");
  assert.equal(
    out,
    "# Benchmarks\n\nmethod\n\n<!-- bench:full -->\n## run 1\n<!-- /bench:full -->\n",
  );
});

Deno.test("replaceSection replaces only the section of its kind", () => {
  const first = replaceSection("# B\n", "full", "## full 1");
  const both = replaceSection(first, "quick", "## quick 1");
  const next = replaceSection(both, "full", "## full 2");
  assert.equal(next.includes("full 1"), false);
  assert.equal(next.includes("## full 2"), true);
  assert.equal(next.includes("## quick 1"), true);
  assert.equal(next.indexOf("full 2") < next.indexOf("quick 1"), true);
  assert.equal(replaceSection(next, "full", "## full 2"), next);
});
