/**
 * Writes config/smtpd.toml from the parameter table (every parameter, its
 * default and its one-line description): `deno run -A scripts/gen_config.ts`.
 * src/config/load_test.ts fails when the file and the table disagree.
 *
 * @module
 */

import { PARAMS, toToml } from "../src/config/mod.ts";
let out = `# deno-smtpd configuration (TOML). Keys are Postfix main.cf parameter names.
# Every parameter the program knows is listed with its default; a line that
# starts with "#" leaves the default in force. Lists are TOML arrays (a
# comma/space separated string works too); times are seconds or "300s",
# "5m", "1h", "1d"; "$name" expands to another parameter's value.
# Unknown names, wrong types and out-of-range values stop the start with
# file:line: message. Show the effective values with: deno task smtpd config

`;
const explicit = new Set(["queue_directory", "smtpd_listen"]);
for (const [name, spec] of Object.entries(PARAMS)) {
  const def = spec.default as unknown;
  out += `# ${spec.doc}\n`;
  out += `${explicit.has(name) ? "" : "#"}${name} = ${
    toToml(name === "myhostname" ? "" : def)
  }\n\n`;
}
Deno.writeTextFileSync(new URL("../config/smtpd.toml", import.meta.url), out.trimEnd() + "\n");
