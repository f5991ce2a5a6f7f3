/**
 * Turns raw TOML values (or `-o name=value` strings) into typed parameter
 * values, and renders values back as TOML for `smtpd config`.
 *
 * @module
 */

import type { ParamSpec } from "./schema.ts";

const TIME_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/**
 * Parses a Postfix time value: "300", "300s", "5m", "1h", "1d", "1w".
 * @param text the value
 * @returns seconds, or undefined when the syntax is wrong
 */
export function parseTime(text: string): number | undefined {
  const m = /^\s*(\d+)\s*([smhdw]?)\s*$/.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * (TIME_UNITS[m[2] || "s"] ?? 1);
}

/**
 * Splits a Postfix list string on commas and white space, keeping
 * `{ ... }` groups (as in `inline:{ a=b, c=d }`) in one piece.
 * @param text the value
 * @returns the non-empty items
 */
export function splitList(text: string): string[] {
  const out: string[] = [];
  let cur = "";
  let depth = 0;
  for (const c of text) {
    if (c === "{") depth++;
    else if (c === "}" && depth > 0) depth--;
    if (depth === 0 && (c === "," || /\s/.test(c))) {
      if (cur) out.push(cur);
      cur = "";
    } else {
      cur += c;
    }
  }
  if (cur) out.push(cur);
  return out;
}

/**
 * Checks and converts one value for a parameter.
 * @param spec the parameter definition
 * @param raw the value from TOML, or a string from the command line
 * @param fromString whether raw came from `-o` (strings are then parsed per kind)
 * @returns the typed value, or an error message
 */
export function coerceValue(
  spec: ParamSpec<unknown>,
  raw: unknown,
  fromString: boolean,
): { ok: true; value: unknown } | { ok: false; error: string } {
  const bad = (want: string) => ({
    ok: false as const,
    error: `expected ${want}, got ${describe(raw)}`,
  });
  switch (spec.kind) {
    case "string":
    case "template": {
      if (typeof raw !== "string") return bad("a string");
      // A main.cf value is one line; TOML's escapes can put a line end in
      // one, which a banner, a Received: header or a log line would carry.
      // deno-lint-ignore no-control-regex
      const control = /[\x00-\x08\x0a-\x1f\x7f]/.exec(raw)?.[0];
      return control === undefined ? { ok: true, value: raw } : {
        ok: false,
        error: `control character U+${
          control.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")
        } in the text: a value is one line, without control characters`,
      };
    }
    case "enum": {
      if (typeof raw !== "string") return bad("a string");
      const choices = spec.choices ?? [];
      const value = spec.foldCase ? raw.toLowerCase() : raw;
      return choices.includes(value)
        ? { ok: true, value }
        : { ok: false, error: `expected one of ${choices.join(", ")}, got "${raw}"` };
    }
    case "boolean": {
      if (typeof raw === "boolean") return { ok: true, value: raw };
      if (typeof raw === "string") {
        const v = raw.toLowerCase();
        if (v === "yes" || v === "true") return { ok: true, value: true };
        if (v === "no" || v === "false") return { ok: true, value: false };
      }
      return bad("true/false (or yes/no)");
    }
    case "integer": {
      let n: number | undefined;
      if (typeof raw === "number" || typeof raw === "bigint") n = Number(raw);
      else if (typeof raw === "string" && fromString && /^\s*-?\d+\s*$/.test(raw)) n = Number(raw);
      if (n === undefined || !Number.isSafeInteger(n)) return bad("an integer");
      return checkRange(spec, n);
    }
    case "time": {
      let n: number | undefined;
      if (typeof raw === "number" || typeof raw === "bigint") n = Number(raw);
      else if (typeof raw === "string") n = parseTime(raw);
      if (n === undefined || !Number.isFinite(n) || n < 0) {
        return bad('a time such as 300, "300s", "5m" or "1h"');
      }
      return checkRange(spec, n);
    }
    case "list": {
      let items: string[];
      if (typeof raw === "string") items = splitList(raw);
      else if (Array.isArray(raw) && raw.every((x) => typeof x === "string")) {
        items = raw.flatMap((x: string) => splitList(x));
      } else return bad("an array of strings (or a comma/space separated string)");
      const stray = spec.choices && items.find((x) => !spec.choices?.includes(x));
      return stray === undefined
        ? { ok: true, value: items }
        : { ok: false, error: `"${stray}" is not one of ${spec.choices?.join(", ")}` };
    }
  }
}

function checkRange(
  spec: ParamSpec<unknown>,
  n: number,
): { ok: true; value: number } | { ok: false; error: string } {
  if (spec.min !== undefined && n < spec.min) {
    return { ok: false, error: `value ${n} is out of range: must be at least ${spec.min}` };
  }
  if (spec.max !== undefined && n > spec.max) {
    const days = spec.kind === "time" ? ` seconds (${Math.floor(spec.max / 86400)} days)` : "";
    return { ok: false, error: `value ${n} is out of range: must be at most ${spec.max}${days}` };
  }
  return { ok: true, value: n };
}

function describe(raw: unknown): string {
  if (Array.isArray(raw)) return "an array";
  if (raw === null) return "null";
  // TOML dates and times (10:00:00 unquoted is one).
  if (raw instanceof Date) return "a TOML date or time";
  if (typeof raw === "object") return "a table";
  return `${typeof raw} ${JSON.stringify(raw)}`;
}

/**
 * Renders a value as TOML, for `smtpd config`.
 * @param value a typed parameter value
 * @returns TOML text
 */
export function toToml(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => JSON.stringify(v)).join(", ")}]`;
  if (typeof value === "string") return JSON.stringify(value);
  return String(value);
}
