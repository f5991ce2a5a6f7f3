/**
 * `regexp:` and `pcre:` tables (Postfix regexp_table(5), pcre_table(5)):
 * `/pattern/flags result` and `!/pattern/flags result` lines tried in file
 * order against the whole key, `if /pattern/flags` ... `endif` blocks
 * (nesting), indented continuation lines, `#` comments, and `$1`, `${1}`,
 * `$(1)`, `$$` in results. Flags toggle Postfix's defaults: `i` (case
 * insensitive: on), `m` (multi-line: off), for pcre: also `s` (dot matches
 * newline: on), `x` (extended: off), `A` (anchored), `E` and `X` (no effect
 * here); for regexp: `x` would turn extended syntax off, which is refused.
 * Every pattern is compiled at start; an error names file and line.
 *
 * @module
 */

import { type Dialect, PatternError, translatePattern } from "./regex_translate.ts";
import { TableSyntaxError } from "./text_table.ts";
import type { LookupResult, LookupTable } from "./types.ts";

type Rule =
  | { kind: "match"; re: RegExp; negate: boolean; result: string; dynamic: boolean }
  | { kind: "if"; re: RegExp; negate: boolean; body: Rule[] };

/**
 * Splits a table into logical lines: a line that starts with white space
 * continues the one before; blank lines and `#` lines are skipped.
 * @param text the file
 * @returns logical lines with the number of their first physical line
 */
export function logicalLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] ?? "").replace(/\r$/, "");
    if (/^\s*(#|$)/.test(raw)) continue;
    const last = out[out.length - 1];
    if (/^\s/.test(raw)) {
      if (!last) throw new TableSyntaxError("continuation line without an entry", i + 1);
      last.text += ` ${raw.trim()}`;
    } else {
      out.push({ line: i + 1, text: raw.trimEnd() });
    }
  }
  return out;
}

/**
 * Parses a pattern table.
 * @param name the spec
 * @param text the file content
 * @param dialect pcre or regexp
 * @param file the file's path, for {@linkcode LookupTable.origin}
 * @returns the table
 * @throws {TableSyntaxError} with the line number
 */
export function patternTable(
  name: string,
  text: string,
  dialect: Dialect,
  file?: string,
): LookupTable {
  const root: Rule[] = [];
  const stack: { body: Rule[]; line: number }[] = [{ body: root, line: 0 }];
  const values: string[] = [];
  const valueLines = new Map<string, number>();
  for (const { line, text: t } of logicalLines(text)) {
    const fail = (msg: string): never => {
      throw new TableSyntaxError(msg, line);
    };
    const top = stack[stack.length - 1] as { body: Rule[] };
    if (/^endif\s*$/i.test(t)) {
      if (stack.length === 1) fail(`"endif" without "if"`);
      stack.pop();
      continue;
    }
    const ifm = /^if\s+(.*)$/is.exec(t);
    const parsed = parsePatternLine(ifm ? (ifm[1] as string) : t, dialect, fail);
    if (ifm) {
      if (parsed.rest) fail(`text after the pattern of "if": "${parsed.rest}"`);
      const rule: Rule = { kind: "if", re: parsed.re, negate: parsed.negate, body: [] };
      top.body.push(rule);
      stack.push({ body: rule.body, line });
      continue;
    }
    if (!parsed.rest) fail("missing result after the pattern");
    const refs = checkSubstitutions(parsed.rest, parsed.groups, parsed.negate, fail);
    top.body.push({
      kind: "match",
      re: parsed.re,
      negate: parsed.negate,
      result: parsed.rest,
      dynamic: refs,
    });
    values.push(parsed.rest);
    if (!valueLines.has(parsed.rest)) valueLines.set(parsed.rest, line);
  }
  if (stack.length > 1) {
    throw new TableSyntaxError(`"if" without "endif"`, stack[stack.length - 1]?.line);
  }
  return {
    name,
    values,
    pattern: true,
    origin(value: string): string | undefined {
      const line = valueLines.get(value);
      return file !== undefined && line !== undefined ? `${file}:${line}` : undefined;
    },
    lookup(key: string): Promise<LookupResult> {
      const hit = search(root, key);
      return Promise.resolve(hit ?? { kind: "notFound" });
    },
  };
}

function search(rules: readonly Rule[], key: string): LookupResult | undefined {
  for (const r of rules) {
    const m = r.re.exec(key);
    if ((m !== null) === r.negate) continue;
    if (r.kind === "if") {
      const inner = search(r.body, key);
      if (inner) return inner;
      continue;
    }
    if (!r.dynamic || !m) return { kind: "found", value: r.result };
    return { kind: "found", value: substitute(r.result, m), template: r.result };
  }
  return undefined;
}

const REF = /\$(?:(\d{1,2})|\{(\d{1,2})\}|\((\d{1,2})\)|(\$))/g;

/**
 * Fills $1, ${1}, $(1) with the matched groups and $$ with "$".
 * @param template the result text
 * @param m the match
 * @returns the result
 */
export function substitute(template: string, m: RegExpExecArray): string {
  return template.replace(REF, (_all, a, b, c, dollar) => {
    if (dollar) return "$";
    return m[Number(a ?? b ?? c)] ?? "";
  });
}

function checkSubstitutions(
  result: string,
  groups: number,
  negate: boolean,
  fail: (msg: string) => never,
): boolean {
  let refs = false;
  const stripped = result.replace(REF, (_all, a, b, c, dollar) => {
    if (dollar) return "";
    const n = Number(a ?? b ?? c);
    if (negate) fail(`$${n} in the result of a negated pattern ("!/.../")`);
    if (n > groups) fail(`$${n} in the result, but the pattern has ${groups} group(s)`);
    refs = true;
    return "";
  });
  if (stripped.includes("$")) fail(`"$" in the result must be $1..$99, \${n}, $(n) or $$`);
  return refs || result.includes("$$");
}

function parsePatternLine(
  t: string,
  dialect: Dialect,
  fail: (msg: string) => never,
): { re: RegExp; negate: boolean; groups: number; rest: string } {
  let i = 0;
  const negate = t[0] === "!";
  if (negate) i++;
  const delim = t[i];
  if (delim === undefined || /[\sA-Za-z0-9\\]/.test(delim)) {
    fail(`expected a pattern such as /regex/ at "${t.slice(0, 40)}"`);
  }
  let j = i + 1;
  while (j < t.length && t[j] !== delim) j += t[j] === "\\" ? 2 : 1;
  if (j >= t.length) fail(`missing closing "${delim}" of the pattern`);
  const pattern = t.slice(i + 1, j);
  const flagText = /^\S*/.exec(t.slice(j + 1))?.[0] ?? "";
  const rest = t.slice(j + 1 + flagText.length).trim();
  const o = {
    ignoreCase: true,
    multiline: false,
    dotAll: dialect === "pcre",
    extended: false,
    anchored: false,
  };
  for (const f of flagText) {
    if (f === "i") o.ignoreCase = !o.ignoreCase;
    else if (f === "m") o.multiline = !o.multiline;
    else if (dialect === "regexp" && f === "x") {
      fail(`flag "x" (basic POSIX syntax) is not supported in regexp: tables`);
    } else if (dialect === "pcre" && f === "s") o.dotAll = !o.dotAll;
    else if (dialect === "pcre" && f === "x") o.extended = !o.extended;
    else if (dialect === "pcre" && f === "A") o.anchored = !o.anchored;
    else if (dialect === "pcre" && (f === "E" || f === "X")) continue;
    else if (dialect === "pcre" && f === "U") {
      fail(`flag "U" (ungreedy) is not supported: JavaScript has no ungreedy mode`);
    } else fail(`unknown flag "${f}" after the pattern`);
  }
  // regexp: "." matches a newline unless m (REG_NEWLINE) is on.
  if (dialect === "regexp") o.dotAll = !o.multiline;
  try {
    const { regex, groups } = translatePattern(pattern, dialect, o);
    return { re: regex, negate, groups, rest };
  } catch (err) {
    if (err instanceof PatternError) fail(`pattern /${pattern}/: ${err.message}`);
    throw err;
  }
}
