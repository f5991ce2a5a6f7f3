/**
 * `deno task compile [--read PATHS] [--write PATHS] [--net HOSTS] [--queue DIRS] [--dry-run]`: builds
 * dist/smtpd with the production permission flags baked in. deno compile
 * needs the `denort` runtime; where dl.deno.land cannot be reached, point
 * DENORT_BIN at a local denort binary. The flags are printed either way.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DEFAULT_PERMISSIONS, productionFlags } from "./permissions.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    read: { type: "string" },
    write: { type: "string" },
    net: { type: "string" },
    queue: { type: "string" },
    "dry-run": { type: "boolean" },
  },
});
const split = (s: string | undefined, d: readonly string[]) => s ? s.split(",") : d;
const flags = productionFlags({
  readPaths: split(values.read, DEFAULT_PERMISSIONS.readPaths),
  writePaths: split(values.write, DEFAULT_PERMISSIONS.writePaths),
  netHosts: split(values.net, DEFAULT_PERMISSIONS.netHosts),
  queueDirectories: split(values.queue, DEFAULT_PERMISSIONS.queueDirectories),
});
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
const root = new URL("..", import.meta.url).pathname;
const status = await new Deno.Command(Deno.execPath(), { args, cwd: root }).spawn().status;
Deno.exit(status.code);
