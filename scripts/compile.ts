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
import { ConfigError } from "../src/config/mod.ts";
import { flagsFor } from "../src/permissions/mod.ts";
import { absoluteConfigArgs, configArgs, needsForConfig, ROOT } from "./permissions.ts";

const log = (s: string) => Deno.stderr.writeSync(new TextEncoder().encode(s + "\n"));
const USAGE = "Usage: deno task compile [-c FILE] [-o name=value]... [--dry-run]";
let values;
try {
  ({ values } = parseArgs({
    args: Deno.args,
    options: {
      config: { type: "string", short: "c" },
      o: { type: "string", multiple: true },
      "dry-run": { type: "boolean" },
    },
  }));
} catch (err) {
  log(`compile: ${(err as Error).message}\n${USAGE}`);
  Deno.exit(2);
}
// A relative -c FILE is the user's, named from where they ran the command
// (deno task runs this script from the repository root), as for `deno task smtpd`.
const args = absoluteConfigArgs(Deno.args, Deno.env.get("INIT_CWD") ?? Deno.cwd());
const { file, overrides } = configArgs(args);
let flags: string[];
try {
  // Strict: a configuration that does not load would get only the flags that
  // reporting its error takes; say what is wrong instead of baking those.
  flags = flagsFor(await needsForConfig(file, overrides, ROOT, true));
} catch (err) {
  // A RangeError: a path Deno's flag syntax cannot carry (a comma).
  if (!(err instanceof ConfigError) && !(err instanceof RangeError)) throw err;
  log(`smtpd: fatal: ${err.message}`);
  Deno.exit(1);
}
// The listener-thread entry is loaded at run time: include it in the binary.
const compileArgs = [
  "compile",
  ...flags,
  "--include",
  "src/worker.ts",
  "--output",
  "dist/smtpd",
  "mod.ts",
];
log(`deno ${compileArgs.join(" ")}`);
if (values["dry-run"]) Deno.exit(0);
if (!Deno.env.get("DENORT_BIN")) {
  log("note: DENORT_BIN is not set; deno compile will try to download denort from dl.deno.land");
}
const status = await new Deno.Command(Deno.execPath(), { args: compileArgs, cwd: ROOT }).spawn()
  .status;
Deno.exit(status.code);
