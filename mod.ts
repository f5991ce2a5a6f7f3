/**
 * deno-smtpd: Postfix's smtpd(8) as one Deno program. Entry point only.
 *
 * @module
 */

import { runCli } from "./src/app.ts";
import { flushStderr } from "./src/log/logger.ts";

if (import.meta.main) {
  const code = await runCli(Deno.args);
  flushStderr();
  Deno.exit(code);
}
