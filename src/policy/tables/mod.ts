/**
 * Opens lookup tables from `type:name` specs: `inline:{...}`, `static:VALUE`,
 * `texthash:/path`, `cidr:/path`, `regexp:/path`, `pcre:/path` (or their
 * inline `{ { rule }, ... }` form). Files are read once, at start; an
 * unreadable or malformed table stops the start.
 *
 * @module
 */

import { cidrRulesSteps, cidrTableOf } from "./cidr_table.ts";
import { patternTable } from "./pattern_table.ts";
import { socketmapTable } from "./socketmap_table.ts";
import { mapTable, parseInline, TableSyntaxError, textTableSteps } from "./text_table.ts";
import { preparedResult, prepareFile, type Steps } from "./prepared.ts";
import type { LookupResult, LookupTable } from "./types.ts";
import { readRegularFile, retireWith, splitList, unreadableReason } from "../../config/mod.ts";

export type { LookupResult, LookupTable } from "./types.ts";
export { TableSyntaxError } from "./text_table.ts";
export { forgetPrepared } from "./prepared.ts";

/** Table types we can open. */
export const TABLE_TYPES = [
  "inline",
  "static",
  "texthash",
  "cidr",
  "regexp",
  "pcre",
  "socketmap",
] as const;

/** Raised when a table cannot be opened. */
export class TableOpenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TableOpenError";
  }
}

/**
 * Whether a restriction argument looks like a table spec.
 * @param spec the text
 * @returns true for "type:name"
 */
export function isTableSpec(spec: string): boolean {
  return /^[a-z][a-z0-9_]*:/.test(spec);
}

/**
 * Reads and parses ahead, in slices, the file of a table a reload is about
 * to open (see prepared.ts), so that opening it takes its parsed contents.
 * A table of another type, or written inline, needs nothing.
 * @param spec "type:name"
 * @param more other parses of the file's text (kind → parse), for other readers of it
 */
export async function prepareTable(
  spec: string,
  more: Readonly<Record<string, (text: string) => Steps<unknown>>> = {},
): Promise<void> {
  const colon = spec.indexOf(":");
  const type = spec.slice(0, colon);
  const arg = spec.slice(colon + 1);
  if (arg.trim().startsWith("{")) return;
  const parses: Record<string, (text: string) => Steps<unknown>> = { ...more };
  if (type === "texthash") parses.texthash = textTableSteps;
  else if (type === "cidr") parses.cidr = cidrRulesSteps;
  else if (type !== "regexp" && type !== "pcre") return;
  await prepareFile(arg, parses);
}

/**
 * Opens a table (files are read synchronously, or taken as prepareTable
 * parsed them for a reload).
 * @param spec "type:name"
 * @param options the base of relative UNIX socket paths (socketmap:unix:private/x:name);
 *   the owner a reload retires the table with (retireAll), for a table
 *   that a reload opens again
 * @returns the table
 * @throws {TableOpenError} for an unknown type, an unreadable file or bad syntax
 */
export function openTable(
  spec: string,
  options: { queueDirectory?: string; owner?: object } = {},
): LookupTable {
  const t = open(spec, options.queueDirectory);
  const retire = t.retire;
  if (options.owner !== undefined && retire) retireWith(options.owner, { retire });
  return t;
}

function open(spec: string, queueDirectory: string | undefined): LookupTable {
  const colon = spec.indexOf(":");
  const type = spec.slice(0, colon);
  const arg = spec.slice(colon + 1);
  try {
    switch (type) {
      case "inline": {
        const m = /^\{(.*)\}$/s.exec(arg.trim());
        if (!m) {
          throw new TableOpenError(
            `"${spec}": inline tables are written inline:{ key=value, ... }`,
          );
        }
        return mapTable(spec, parseInline(m[1] as string));
      }
      case "static": {
        const value = arg.trim().replace(/^\{\s*(.*?)\s*\}$/s, "$1");
        return {
          name: spec,
          values: [value],
          lookup: (): Promise<LookupResult> => Promise.resolve({ kind: "found", value }),
        };
      }
      case "texthash": {
        const { entries, keyLines, values } = preparedResult(
          arg,
          "texthash",
          textTableSteps,
          () => readTable(spec, arg),
        );
        return {
          ...mapTable(spec, entries, values),
          origin(value: string): string | undefined {
            for (const [k, v] of entries) if (v === value) return `${arg}:${keyLines.get(k)}`;
            return undefined;
          },
        };
      }
      case "cidr": {
        const rules = preparedResult(arg, "cidr", cidrRulesSteps, () => readTable(spec, arg));
        return cidrTableOf(spec, rules, arg);
      }
      case "socketmap":
        try {
          return socketmapTable(spec, arg, queueDirectory ?? ".");
        } catch (err) {
          if (err instanceof SyntaxError) throw new TableOpenError(`"${spec}": ${err.message}`);
          throw err;
        }
      case "regexp":
      case "pcre": {
        const inline = inlineRules(arg);
        return inline !== undefined
          ? patternTable(spec, inline, type)
          : patternTable(spec, readTable(spec, arg), type, arg);
      }
      default:
        throw new TableOpenError(
          `"${spec}": unsupported table type "${type}" (supported: ${TABLE_TYPES.join(", ")})` +
            (/^(hash|btree|dbm|cdb|lmdb|sdbm)$/.test(type)
              ? `; ${type}: is the file postmap builds from a text file: name that file as texthash:${arg}`
              : ""),
        );
    }
  } catch (err) {
    if (err instanceof TableSyntaxError) {
      const where = err.line ? `${arg}:${err.line}: ` : `"${spec}": `;
      throw new TableOpenError(`${where}${err.message}`);
    }
    throw err;
  }
}

/** Postfix 3.7's inline form, `pcre:{ { /a/ OK }, { /b/ REJECT } }`: one rule per item. */
function inlineRules(arg: string): string | undefined {
  const m = /^\{(.*)\}$/s.exec(arg.trim());
  if (!m) return undefined;
  return splitList(m[1] as string).map((item) => item.replace(/^\{\s*(.*?)\s*\}$/s, "$1"))
    .join("\n");
}

/**
 * Reads a `/file` named in a list parameter (mynetworks, mydestination,
 * relay_domains, ...).
 * @param path the absolute path
 * @returns its text
 * @throws {Error} saying why it cannot be read
 */
export function readListFile(path: string): string {
  return readConfigured(path, (why) => new Error(`cannot read "${path}": ${why}`));
}

/**
 * A file saved with a byte-order mark (as some Windows editors do) is read
 * without it: U+FEFF counts as white space, so the first line would be
 * taken for a continuation line (or the mark for part of its key).
 */
function withoutBom(text: string): string {
  return text.startsWith("\uFEFF") ? text.slice(1) : text;
}

function readTable(spec: string, path: string): string {
  return readConfigured(path, (why) => new TableOpenError(`cannot open table "${spec}": ${why}`));
}

/**
 * A file the configuration names (a table, a list file), without a
 * byte-order mark.
 * @param path the path as configured
 * @param fail the error to throw, given why the file cannot be read
 * @returns the text
 */
function readConfigured(path: string, fail: (why: string) => Error): string {
  try {
    return withoutBom(readRegularFile(path));
  } catch (err) {
    throw fail(
      unreadableReason(
        path,
        err,
        "outside the paths this program may read (smtpd permissions lists them)",
      ),
    );
  }
}
