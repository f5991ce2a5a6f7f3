/**
 * deno-smtpd: Postfix's smtpd(8) as one Deno program. Entry point only.
 *
 * @module
 */

import { runCli } from "./src/app.ts";

if (import.meta.main) {
  // runCli writes the log lines still waiting before it returns.
  Deno.exit(await runCli(Deno.args));
}
