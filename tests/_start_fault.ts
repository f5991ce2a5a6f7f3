/**
 * Runs the program as mod.ts does, with one call of the runtime made to
 * fail: what no check at start foresees (the operating system refusing a
 * call). Used by tests/exit_status_test.ts.
 *
 * usage: deno run -A tests/_start_fault.ts querySync|stdout SMTPD-ARGS...
 */

import { runCli } from "../src/app.ts";

const [what, ...args] = Deno.args;
if (what === "querySync") {
  Deno.permissions.querySync = () => {
    throw new Error("permission query refused (test)");
  };
} else if (what === "stdout") {
  Deno.stdout.writeSync = () => {
    throw new Error("output refused (test)");
  };
} else {
  throw new Error(`unknown fault ${what}`);
}
Deno.exit(await runCli(args));
