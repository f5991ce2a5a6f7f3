import assert from "node:assert/strict";
import { sampleConfig } from "./sample.ts";
import { PARAMS } from "./schema.ts";

const SAMPLE = new URL("../../config/smtpd.toml", import.meta.url);

// The sample was once edited by hand: scripts/gen_config.ts would have
// dropped 12 comment lines from it. The text now comes from the table alone.
Deno.test("config/smtpd.toml is what scripts/gen_config.ts writes, byte for byte", async () => {
  const committed = await Deno.readTextFile(SAMPLE);
  assert.equal(
    committed,
    sampleConfig(),
    "config/smtpd.toml differs from the parameter table: edit src/config/schema.ts " +
      "(doc, noted()) and run: deno run -A scripts/gen_config.ts",
  );
});

Deno.test("sampleConfig() puts each note above its description", () => {
  const lines = sampleConfig().split("\n");
  for (const [name, spec] of Object.entries(PARAMS)) {
    const at = lines.findIndex((l) => new RegExp(`^#?${name} = `).test(l));
    const above = [...(spec.note ?? []), spec.doc].map((l) => `# ${l}`);
    assert.deepEqual(lines.slice(at - above.length, at), above, name);
    assert.equal(lines[at - above.length - 1], "", `${name}: a blank line before its block`);
  }
});
