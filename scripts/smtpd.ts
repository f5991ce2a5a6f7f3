/**
 * `deno task smtpd ARGS...` and `deno task start`: runs mod.ts in a child
 * Deno with the permission flags derived from the configuration named by
 * `-c` and `-o` in ARGS (scripts/permissions.ts; what `smtpd permissions`
 * prints), forwarding stdio, signals (SIGHUP: reload) and the exit status.
 * A relative `-c FILE` is made absolute against the user's directory
 * (INIT_CWD), since the program runs from the repository root.
 *
 * @module
 */

import { absoluteConfigArgs, flagsForArgs, ROOT } from "./permissions.ts";

// The program runs from the repository root; `-c FILE` is the user's, named
// from where they ran the command.
const args = absoluteConfigArgs(Deno.args, Deno.env.get("INIT_CWD") ?? Deno.cwd());
let flags: string[];
try {
  flags = await flagsForArgs(args);
} catch (e) {
  // A path Deno's flag syntax cannot carry (a comma): say so, as `smtpd permissions` does.
  if (!(e instanceof RangeError)) throw e;
  Deno.stderr.writeSync(new TextEncoder().encode(`smtpd: fatal: ${e.message}\n`));
  Deno.exit(1);
}
const child = new Deno.Command(Deno.execPath(), {
  args: ["run", ...flags, "mod.ts", ...args],
  cwd: ROOT,
  // No daily look for a newer Deno (an HTTPS request to Deno's download
  // host) from a mail server.
  env: { DENO_NO_UPDATE_CHECK: "1" },
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
