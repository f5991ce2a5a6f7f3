/**
 * The socketmap check of `smtpd config --check`: one connection to each
 * `socketmap:` table's server, closed at once, as for the policy servers
 * (policy_check.ts). A server that is not there makes each lookup a
 * temporary failure (451 4.3.0); the operator learns it here.
 *
 * @module
 */

import type { LoadedConfig } from "../config/mod.ts";
import { mayConnect, parseEndpoint } from "../policy/mod.ts";
import { needsOf } from "./permissions.ts";
import { unreachable } from "./policy_check.ts";

/**
 * Runs the check on the servers of every socketmap table the
 * configuration names (also inside tables), as the permissions name them.
 * @param loaded the configuration
 * @returns a warning for each server that cannot be reached
 */
export async function checkSocketmaps(loaded: LoadedConfig): Promise<string[]> {
  const targets = needsOf(loaded)
    .filter((n) => n.kind === "net" && n.why === "socketmap: table")
    .map((n) => n.value);
  const answers = await Promise.all(targets.map(async (target) => {
    const unix = target.startsWith("unix:");
    const endpoint = parseEndpoint(unix ? target : `inet:${target}`, "/");
    if (!mayConnect(endpoint)) return undefined;
    const why = await unreachable(endpoint);
    if (why === undefined) return undefined;
    return `${placeOf(loaded, unix ? target.slice(5) : target)}socketmap: table server ` +
      `${target} cannot be reached (${why}); until it can, its lookups are temporary ` +
      "failures (451 4.3.0 Temporary lookup failure)";
  }));
  return answers.filter((w) => w !== undefined);
}

/**
 * The first line of the file that names a socketmap: table with this
 * endpoint (its path, or its host and port), else the file.
 */
function placeOf(loaded: LoadedConfig, where: string): string {
  const lines = loaded.text.split("\n");
  const at = lines.findIndex((l) =>
    !/^\s*#/.test(l) && l.includes("socketmap:") &&
    (l.includes(where) || l.includes(where.replace(/^\[(.*)\]/, "$1")))
  );
  return `${loaded.file ?? "<config>"}${at >= 0 ? `:${at + 1}` : ""}: `;
}
