/**
 * Writes config/smtpd.toml from the parameter table (every parameter, its
 * note, its one-line description and its default):
 * `deno run -A scripts/gen_config.ts`. The text is src/config/sample.ts's;
 * its test fails when the committed file and the table disagree, so edit
 * the notes and descriptions in src/config/schema.ts, never the file.
 *
 * @module
 */

import { sampleConfig } from "../src/config/sample.ts";

Deno.writeTextFileSync(new URL("../config/smtpd.toml", import.meta.url), sampleConfig());
