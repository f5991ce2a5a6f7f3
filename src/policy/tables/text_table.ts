/**
 * In-memory key → value tables: `inline:{ k=v, ... }` from the config and
 * `texthash:/path`, an access(5)-style text file read at start (Postfix's
 * texthash: "key value" lines, "#" comments, indented continuation lines;
 * a key with white space in double quotes, `"john smith"@example.com`).
 * Keys are case folded on both sides as Postfix folds them with
 * smtputf8_enable (full Unicode folding: "straße" and "STRASSE" are one key).
 *
 * @module
 */

import { foldCase } from "../fold_case.ts";
import { KeyMap } from "./key_map.ts";
import { eachLine, LINES_PER_STEP, runSteps, type Steps } from "./prepared.ts";
import type { LookupResult, LookupTable } from "./types.ts";

/** A parse problem with the line it is on. */
export class TableSyntaxError extends Error {
  readonly line: number | undefined;
  constructor(message: string, line?: number) {
    super(message);
    this.name = "TableSyntaxError";
    this.line = line;
  }
}

/** Entries a table looks keys up in: a Map, or a large table's {@linkcode KeyMap}. */
export type Entries = Pick<ReadonlyMap<string, string>, "get"> & Iterable<[string, string]>;

/**
 * Builds a table from entries.
 * @param name the spec
 * @param entries key → value
 * @param values its distinct values (when known already)
 * @returns the table
 */
export function mapTable(
  name: string,
  entries: Entries,
  values: readonly string[] = [...new Set([...entries].map(([, v]) => v))],
): LookupTable {
  return {
    name,
    values,
    lookup(key: string): Promise<LookupResult> {
      const v = entries.get(foldCase(key));
      return Promise.resolve(v === undefined ? { kind: "notFound" } : { kind: "found", value: v });
    },
  };
}

/**
 * Parses the body of `inline:{ key=value, { key = value, with commas }, ... }`.
 * @param body the text between the outer braces
 * @returns the entries
 * @throws {TableSyntaxError} for an item without "="
 */
export function parseInline(body: string): Map<string, string> {
  const entries = new Map<string, string>();
  const items: string[] = [];
  let depth = 0;
  let cur = "";
  for (const c of body) {
    if (c === "{") {
      depth++;
      if (depth === 1) continue;
    } else if (c === "}") {
      depth--;
      if (depth === 0) continue;
    }
    if (c === "," && depth === 0) {
      items.push(cur);
      cur = "";
    } else {
      cur += c;
    }
  }
  items.push(cur);
  for (const raw of items) {
    const item = raw.trim();
    if (!item) continue;
    const eq = item.indexOf("=");
    if (eq <= 0) throw new TableSyntaxError(`inline table item "${item}" needs key=value`);
    entries.set(foldCase(item.slice(0, eq).trim()), item.slice(eq + 1).trim());
  }
  return entries;
}

/**
 * Whether a UTF-16 code unit is white space as `\s` sees it (a regular
 * expression per character was most of a large table's parse time).
 */
function isSpace(c: number): boolean {
  if (c < 0x80) return c === 32 || (c >= 9 && c <= 13);
  return /\s/.test(String.fromCharCode(c));
}

/**
 * Splits "key value" at the first run of white space, in linear time (a
 * regular expression here backtracked quadratically on long blank runs:
 * found by the fuzzer).
 * @param line one table line
 * @returns [whole, key, value] like a RegExp match, or undefined without a value
 */
export function splitKeyValue(line: string): [string, string, string] | undefined {
  const t = line.trim();
  let i = 0;
  while (i < t.length && !isSpace(t.charCodeAt(i))) i++;
  const value = t.slice(i).trim();
  return i > 0 && value ? [t, t.slice(0, i), value] : undefined;
}

/**
 * Splits a texthash line into key and value as Postfix's texthash (and
 * postmap) do: at the first white space outside double quotes, a backslash
 * taking the character after it into the key, so `"john smith"@example.com`
 * is one key (kept with its quotes, the form an address with a space is
 * looked up in).
 * @param line one table line
 * @returns [key, value]; "unbalanced" when the key has a '"' without its
 *   pair; undefined without a value
 */
export function splitTextEntry(line: string): [string, string] | "unbalanced" | undefined {
  const t = line.trim();
  let inQuotes = false;
  let i = 0;
  for (; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c === 0x5c) i++; // "\": the next character is part of the key
    else if (c === 0x22) inQuotes = !inQuotes;
    else if (!inQuotes && isSpace(c)) break;
  }
  if (inQuotes) return "unbalanced";
  const key = t.slice(0, i);
  const value = t.slice(i).trim();
  return key && value ? [key, value] : undefined;
}

/**
 * Parses an access(5)-style text file: "key value" per line.
 * @param text the file content
 * @param keyLines receives the line each kept key is on
 * @returns the entries (first definition of a key wins, as in texthash)
 * @throws {TableSyntaxError} with the line number
 */
export function parseTextTable(text: string, keyLines?: Map<string, number>): Map<string, string> {
  const parsed = runSteps(textTableSteps(text));
  for (const [k, line] of parsed.keyLines) keyLines?.set(k, line);
  return new Map(parsed.entries);
}

/** A parsed text table: its entries, the line of each key, its distinct values in file order. */
export interface TextTable {
  readonly entries: KeyMap<string>;
  readonly keyLines: KeyMap<number>;
  readonly values: readonly string[];
}

/**
 * {@linkcode parseTextTable} as steps ({@linkcode Steps}), for a reload to
 * parse a large table in slices.
 * @param text the file content
 * @returns the steps, whose result is the table
 */
export function* textTableSteps(text: string): Steps<TextTable> {
  const entries = new KeyMap<string>();
  const keyLines = new KeyMap<number>();
  // The logical line being read: a key line and its continuation lines, as
  // Postfix's readllines() joins them before the key is split off, so the
  // value (or the rest of a quoted key) may begin on a continuation line.
  let pending: { text: string; line: number } | undefined;
  const finish = () => {
    if (pending === undefined) return;
    const { text, line } = pending;
    const m = splitTextEntry(text);
    if (m === "unbalanced") {
      throw new TableSyntaxError(`unbalanced '"' in the key of "${text}"`, line);
    }
    if (!m) throw new TableSyntaxError(`missing value for key "${text}"`, line);
    const key = foldCase(m[0]);
    // The first definition of a key wins; a repeated one is ignored.
    if (!entries.has(key)) {
      entries.set(key, m[1]);
      keyLines.set(key, line);
    }
  };
  let i = -1;
  for (const raw of eachLine(text)) {
    if (++i % LINES_PER_STEP === 0 && i > 0) yield;
    const line = raw.replace(/\r$/, "");
    // Most lines begin with a key: no regular expression for them.
    const c = line.charCodeAt(0);
    const plain = c > 32 && c < 127 && c !== 35; // "#"
    if (!plain && /^\s*(#|$)/.test(line)) continue;
    if (!plain && /^\s/.test(line)) {
      if (pending === undefined) {
        throw new TableSyntaxError("continuation line without an entry", i + 1);
      }
      pending.text += ` ${line.trim()}`;
      continue;
    }
    finish();
    pending = { text: line.trim(), line: i + 1 };
  }
  finish();
  const values = new KeyMap<true>();
  let n = 0;
  for (const k of entries.keys()) {
    values.set(entries.get(k) as string, true);
    if (++n % LINES_PER_STEP === 0) yield;
  }
  return { entries, keyLines, values: values.keys() };
}
