/**
 * Runs the program as mod.ts does, with one call of the runtime made to
 * fail: what no check at start foresees (the operating system refusing a
 * call). Used by tests/exit_status_test.ts.
 *
 * usage: deno run -A tests/_start_fault.ts querySync|stdout|rejection SMTPD-ARGS...
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
} else if (what === "rejection") {
  // A stray asynchronous error a second into the run (a session under way):
  // a promise rejected with no handler, the last line of defence's case.
  setTimeout(
    () => void Promise.reject(new Error("stray rejection (test) in /secret/file.ts")),
    1000,
  );
} else {
  throw new Error(`unknown fault ${what}`);
}
Deno.exit(await runCli(args));
