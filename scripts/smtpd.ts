/**
 * `deno task smtpd ARGS...` and `deno task start`: runs mod.ts in a child
 * Deno with the production permission flags, forwarding stdio, signals and
 * the exit status.
 *
 * @module
 */

import { productionFlags } from "./permissions.ts";

const root = new URL("..", import.meta.url).pathname;
const child = new Deno.Command(Deno.execPath(), {
  args: ["run", ...productionFlags(), "mod.ts", ...Deno.args],
  cwd: root,
  stdin: "inherit",
  stdout: "inherit",
  stderr: "inherit",
}).spawn();
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(sig, () => {
    try {
      child.kill(sig);
    } catch { /* already gone */ }
  });
}
const status = await child.status;
Deno.exit(status.code);
