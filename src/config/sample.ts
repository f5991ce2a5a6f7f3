/**
 * The text of the sample configuration, `config/smtpd.toml`, made from the
 * parameter table: every parameter with its note, its description and its
 * default. `scripts/gen_config.ts` writes it; a test fails when the
 * committed file differs.
 *
 * @module
 */

import { toToml } from "./coerce.ts";
import { PARAMS } from "./schema.ts";

const HEADER = `# deno-smtpd configuration (TOML). Keys are Postfix main.cf parameter names.
# Every parameter the program knows is listed with its default; a line that
# starts with "#" leaves the default in force. Lists are TOML arrays (a
# comma/space separated string works too); times are seconds or "300s",
# "5m", "1h", "1d"; "$name" expands to another parameter's value.
# Unknown names, wrong types and out-of-range values stop the start with
# file:line: message. Show the effective values with: deno task smtpd config
`;

/** Set in the sample, so that a checkout's `deno task start` runs inside it. */
const SET = new Set(["queue_directory", "smtpd_listen"]);

/** The sample configuration file's text. */
export function sampleConfig(): string {
  const blocks = [HEADER];
  for (const [name, spec] of Object.entries(PARAMS)) {
    const lines = [...(spec.note ?? []), spec.doc].map((l) => `# ${l}`);
    lines.push(`${SET.has(name) ? "" : "#"}${name} = ${toToml(spec.default)}`);
    blocks.push(lines.join("\n") + "\n");
  }
  return blocks.join("\n");
}
