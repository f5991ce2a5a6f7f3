/**
 * Targets for start-up parsers: the TOML configuration resolver and the
 * access-table parsers (texthash text, inline:{...}, cidr).
 *
 * @module
 */

import { ConfigError } from "../../../src/config/config_error.ts";
import { resolveConfigText } from "../../../src/config/load.ts";
import { PARAMS } from "../../../src/config/schema.ts";
import { cidrTable } from "../../../src/policy/tables/cidr_table.ts";
import { foldCase } from "../../../src/policy/fold_case.ts";
import {
  parseInline,
  parseTextTable,
  TableSyntaxError,
} from "../../../src/policy/tables/text_table.ts";
import { preview } from "../bytes.ts";
import { configText, tableText } from "../grammar.ts";
import type { Rng } from "../prng.ts";
import { FuzzFailure, type FuzzTarget, unexpected } from "../target.ts";

const SAMPLE = new URL("../../../config/smtpd.toml", import.meta.url);
const NAMES = Object.keys(PARAMS);
const dec = new TextDecoder();

let sample = "";

/** resolveConfigText(): a configuration, or a ConfigError — nothing else. */
export const configTarget: FuzzTarget = {
  name: "config",
  description: "resolveConfigText: returns, or throws ConfigError only",
  async setup(): Promise<void> {
    sample = await Deno.readTextFile(SAMPLE);
    // The sample itself must load.
    resolveConfigText(sample, { file: "fuzz.toml" });
  },
  generate(rng: Rng): Uint8Array {
    return configText(rng, sample, NAMES);
  },
  check(input: Uint8Array): void {
    const text = dec.decode(input);
    try {
      const loaded = resolveConfigText(text, { file: "fuzz.toml" });
      if (!Object.isFrozen(loaded.config)) {
        throw new FuzzFailure("config.frozen", "the configuration is not frozen");
      }
    } catch (err) {
      if (err instanceof FuzzFailure) throw err;
      if (!(err instanceof ConfigError)) throw unexpected("config.throws", err);
      if (!err.message.startsWith("fuzz.toml")) {
        throw new FuzzFailure("config.where", `ConfigError without the file name: ${err.message}`);
      }
    }
  },
};

const LOOKUPS = ["192.0.2.1", "::1", "[::1]", "10.0.0.1", "0.0.0.0", "::ffff:192.0.2.1", "x", ""];

/**
 * Whether a texthash key holds white space that would have ended it: outside
 * double quotes and not after a backslash (Postfix's texthash rule), or
 * quotes without their pair.
 */
function hasBareSpace(key: string): boolean {
  let quoted = false;
  for (let i = 0; i < key.length; i++) {
    const c = key[i] as string;
    if (c === "\\") i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && /\s/.test(c)) return true;
  }
  return quoted;
}

/** parseTextTable(), parseInline(), cidrTable(): a table, or TableSyntaxError. */
export const tablesTarget: FuzzTarget = {
  name: "tables",
  description:
    "parseTextTable/parseInline/cidrTable: succeed or throw TableSyntaxError (with a line)",
  generate: tableText,
  async check(input: Uint8Array): Promise<void> {
    const text = dec.decode(input);
    const lineCount = text.split("\n").length;
    const expectSyntax = (what: string, err: unknown, withLine: boolean) => {
      if (!(err instanceof TableSyntaxError)) throw unexpected(`tables.${what}.throws`, err);
      const line = err.line;
      if (
        withLine &&
        !(line !== undefined && Number.isInteger(line) && line >= 1 && line <= lineCount)
      ) {
        throw new FuzzFailure(
          `tables.${what}.line`,
          `line ${line} outside 1..${lineCount} for ${preview(input)}`,
        );
      }
    };
    try {
      const entries = parseTextTable(text);
      for (const k of entries.keys()) {
        // Keys are case folded, which is not lower-casing everywhere:
        // Cherokee folds to its capital letters, as in Unicode's CaseFolding.
        if (k !== foldCase(k) || hasBareSpace(k) || k === "") {
          throw new FuzzFailure(
            "tables.text.key",
            `key ${JSON.stringify(k)} from ${preview(input)}`,
          );
        }
      }
    } catch (err) {
      if (err instanceof FuzzFailure) throw err;
      expectSyntax("text", err, true);
    }
    try {
      parseInline(text);
    } catch (err) {
      expectSyntax("inline", err, false);
    }
    let table;
    try {
      table = cidrTable("cidr:fuzz", text);
    } catch (err) {
      expectSyntax("cidr", err, true);
      return;
    }
    const keys = [...LOOKUPS, ...text.split(/[\s/]+/).slice(0, 8)];
    for (const key of keys) {
      try {
        const r = await table.lookup(key);
        if (r.kind !== "found" && r.kind !== "notFound") {
          throw new FuzzFailure(
            "tables.cidr.lookup",
            `lookup(${JSON.stringify(key)}) gave ${r.kind}`,
          );
        }
      } catch (err) {
        if (err instanceof FuzzFailure) throw err;
        throw unexpected("tables.cidr.lookup", err);
      }
    }
  },
};
