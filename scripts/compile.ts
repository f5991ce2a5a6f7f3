/**
 * `deno task compile [-c FILE] [-o name=value]... [--dry-run]`: builds
 * dist/smtpd with the permission flags of that configuration baked in (the
 * flags `smtpd permissions` prints and `deno task smtpd` runs with). A
 * binary started with a configuration that needs more stops at start and
 * names the missing flags. deno compile needs the `denort` runtime; where
 * dl.deno.land cannot be reached, point DENORT_BIN at a local denort
 * binary. The command is printed either way.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { flagsFor } from "../src/permissions/mod.ts";
import { configArgs, needsForConfig, ROOT } from "./permissions.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    config: { type: "string", short: "c" },
    o: { type: "string", multiple: true },
    "dry-run": { type: "boolean" },
  },
});
const { file, overrides } = configArgs(Deno.args);
const flags = flagsFor(await needsForConfig(file, overrides));
// The listener-thread entry is loaded at run time: include it in the binary.
const args = [
  "compile",
  ...flags,
  "--include",
  "src/worker.ts",
  "--output",
  "dist/smtpd",
  "mod.ts",
];
const log = (s: string) => Deno.stderr.writeSync(new TextEncoder().encode(s + "\n"));
log(`deno ${args.join(" ")}`);
if (values["dry-run"]) Deno.exit(0);
if (!Deno.env.get("DENORT_BIN")) {
  log("note: DENORT_BIN is not set; deno compile will try to download denort from dl.deno.land");
}
const status = await new Deno.Command(Deno.execPath(), { args, cwd: ROOT }).spawn().status;
Deno.exit(status.code);
