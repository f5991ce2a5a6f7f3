/**
 * The start-up check: which of a configuration's needs this process was
 * not granted. A compiled binary carries the flags of the configuration it
 * was built for; started with one that needs more, it stops at once and
 * names each missing flag and the command that would grant it, instead of
 * failing later on the first file, port or DNS query it may not touch.
 *
 * @module
 */

import type { Need } from "./needs.ts";
import { flagFor } from "./flags.ts";

function descriptor(need: Need): Deno.PermissionDescriptor {
  switch (need.kind) {
    case "read":
    case "write":
      return { name: need.kind, path: need.value };
    case "net":
      return { name: "net", host: need.value };
    case "env":
      return { name: "env", variable: need.value };
    case "sys":
      return { name: "sys", kind: need.value as Deno.SysPermissionDescriptor["kind"] };
  }
}

/**
 * The needs this process lacks.
 * @param needs what the configuration needs
 * @returns those not granted
 */
export function missingNeeds(needs: readonly Need[]): Need[] {
  return needs.filter((n) => Deno.permissions.querySync(descriptor(n)).state !== "granted");
}

/**
 * The text for an operator: each missing flag with its reason, and how to
 * get a program that has them.
 * @param missing the needs not granted
 * @param how the command that grants them
 * @returns the message lines
 */
export function missingMessage(missing: readonly Need[], how: string): string[] {
  return [
    `this configuration needs permissions this program was not given:`,
    ...missing.map((n) => `  ${flagFor(n)}  (${n.why})`),
    how,
  ];
}

/**
 * The command that would give a program the flags a configuration needs.
 * @param configFile the configuration file (absolute)
 * @param overrides the -o overrides in force
 * @param standalone whether this is a compiled binary
 * @returns the advice line
 */
export function grantAdvice(
  configFile: string,
  overrides: readonly string[],
  standalone: boolean,
): string {
  const args = [`-c ${configFile}`, ...overrides.map((o) => `-o '${o}'`)].join(" ");
  return standalone
    ? `rebuild the binary for it: deno task compile ${args} (then install the new dist/smtpd)`
    : `run it with the flags it needs: deno task smtpd COMMAND ${args} (smtpd permissions ${args} prints them)`;
}
