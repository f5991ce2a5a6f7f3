/**
 * `deno task smtpd ARGS...` and `deno task start`: runs mod.ts in a child
 * Deno with the permission flags derived from the configuration named by
 * `-c` and `-o` in ARGS (scripts/permissions.ts; what `smtpd permissions`
 * prints), forwarding stdio, signals (SIGHUP: reload) and the exit status.
 *
 * @module
 */

import { flagsForArgs, ROOT } from "./permissions.ts";

const child = new Deno.Command(Deno.execPath(), {
  args: ["run", ...await flagsForArgs(Deno.args), "mod.ts", ...Deno.args],
  cwd: ROOT,
  stdin: "inherit",
  stdout: "inherit",
  stderr: "inherit",
}).spawn();
// SIGHUP too: the server reloads its configuration on it.
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  Deno.addSignalListener(sig, () => {
    try {
      child.kill(sig);
    } catch { /* already gone */ }
  });
}
const status = await child.status;
Deno.exit(status.code);
