/**
 * Loads the TOML configuration: parse (smol-toml), check every key against
 * the parameter table, apply `-o name=value` overrides, fill defaults,
 * expand `$name` references as main.cf does, and freeze. Every problem is a
 * {@linkcode ConfigError} that names the file and line.
 *
 * @module
 */

import { parse, TomlError } from "smol-toml";
import { ConfigError } from "./config_error.ts";
import { readFileWithin } from "./paths.ts";
import { coerceValue, splitList } from "./coerce.ts";
import { type Config, isParamName, type ParamName, PARAMS } from "./schema.ts";

/** What {@linkcode loadConfig} needs besides the file. */
export interface LoadOptions {
  /** `-o name=value` overrides, in order. */
  overrides?: readonly string[];
  /** The system host name, for the default of myhostname. */
  systemHostname?: string;
}

/** A loaded configuration plus where each value came from. */
export interface LoadedConfig {
  readonly config: Config;
  /** Parameters set in the file or by `-o` (for `smtpd config -n`). */
  readonly explicit: ReadonlySet<ParamName>;
  /** The file read, if any. */
  readonly file: string | undefined;
  /** Restriction class definitions (keys named in restriction_classes). */
  readonly classes: ReadonlyMap<string, readonly string[]>;
  /** The TOML text it was read from (listener threads resolve the same text). */
  readonly text: string;
  /**
   * The line a key was set on, for errors found after loading; with an
   * item, the line of the key's value that holds that quoted item (a list
   * written over several lines), else the key's.
   */
  lineOf(key: string, item?: string): number | undefined;
  /**
   * Where a key's value was set, to begin a message with: `-o name=value: `
   * when the command line set it (the file's line holds a value not in
   * force), else `FILE:LINE: ` as {@linkcode LoadedConfig.lineOf} finds it.
   */
  placeOf(key: string, item?: string): string;
}

/**
 * Reads and resolves a configuration file.
 * @param file the TOML file path
 * @param options overrides and host facts
 * @returns the frozen configuration
 * @throws {ConfigError} for any problem, with file and line
 */
export async function loadConfig(file: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`cannot read configuration: ${(err as Error).message}`, { file });
  }
  return resolveConfigText(text, { ...options, file });
}

/**
 * The text of a configuration file. Only a regular file is read: a FIFO
 * (or a device) put at its path would keep the read waiting for ever, and
 * with it the start, or every later reload (each waits for the one before).
 * A FIFO put there between the stat and the read is given up on after
 * `waitMs`. A TOML file is UTF-8: a byte that is not (a file saved as
 * Latin-1) is refused at its line, where reading it as text would have put
 * U+FFFD in the value (a banner, a reply text) and said nothing.
 * @param file the path
 * @param waitMs how long the read may take
 * @returns the text
 * @throws the stat's or the read's error, or one for a file that is not
 *   regular (or not read in time); a {@linkcode ConfigError} at the line of
 *   a byte that is not UTF-8
 */
export async function readConfigFile(file: string, waitMs = 10_000): Promise<string> {
  const st = await Deno.stat(file);
  if (!st.isFile) throw new Error("not a regular file");
  const bytes = await readFileWithin(file, waitMs);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ConfigError(
      "not UTF-8 (a TOML file is UTF-8: save it so, e.g. iconv -f latin1 -t utf-8)",
      { file, line: firstNonUtf8Line(bytes) },
    );
  }
}

/**
 * The 1-based line of the first byte sequence that is not UTF-8.
 * @param bytes the file
 * @returns the line
 */
export function firstNonUtf8Line(bytes: Uint8Array): number {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let line = 1;
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i < bytes.length && bytes[i] !== 0x0a) continue;
    try {
      decoder.decode(bytes.subarray(start, i));
    } catch {
      return line;
    }
    line++;
    start = i + 1;
  }
  return line - 1;
}

/**
 * Resolves configuration text (the testable core of {@linkcode loadConfig}).
 * @param text TOML source
 * @param options overrides, host facts and the file name for messages
 * @returns the frozen configuration
 * @throws {ConfigError} for any problem
 */
export function resolveConfigText(
  text: string,
  options: LoadOptions & { file?: string } = {},
): LoadedConfig {
  const file = options.file ?? "<config>";
  let raw: Record<string, unknown>;
  try {
    raw = parse(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      const msg = (err.message.split("\n")[0] ?? "TOML syntax error")
        .replace(/^Invalid TOML document: /, "");
      const hint = unquotedHint(msg, text.split("\n")[err.line - 1] ?? "");
      throw new ConfigError(`${msg}${hint}`, { file, line: err.line });
    }
    throw err;
  }
  const values = new Map<ParamName, unknown>();
  const explicit = new Set<ParamName>();
  const classes = new Map<string, readonly string[]>();
  const classNames = new Set<string>();
  for (const key of ["smtpd_restriction_classes", "restriction_classes"] as const) {
    const declared = coerceValue(PARAMS[key], raw[key] ?? [], false);
    if (declared.ok) { for (const n of declared.value as string[]) classNames.add(n); }
  }
  for (const o of options.overrides ?? []) {
    const m = /^\s*(?:smtpd_)?restriction_classes\s*=(.*)$/.exec(o);
    if (m) { for (const n of (m[1] ?? "").split(/[\s,]+/)) if (n) classNames.add(n); }
  }
  // A parameter that -o sets: the file's value is replaced, not judged (as
  // Postfix's -o replaces it), so an error found later names the override
  // and only the override (see configErrorText in app.ts).
  const overridden = new Set((options.overrides ?? []).map(overrideName));
  for (const [key, value] of Object.entries(raw)) {
    const line = findKeyLine(text, key);
    if (classNames.has(key) && !isParamName(key)) {
      const result = coerceValue(PARAMS.smtpd_client_restrictions, value, false);
      if (!result.ok) throw new ConfigError(`${key}: ${result.error}`, { file, line, key });
      classes.set(key, result.value as string[]);
      continue;
    }
    if (!isParamName(key)) {
      throw new ConfigError(unknownParameter(key), { file, line, key });
    }
    if (overridden.has(key)) continue;
    const result = coerceValue(PARAMS[key], value, false);
    if (!result.ok) throw new ConfigError(`${key}: ${result.error}`, { file, line, key });
    values.set(key, result.value);
    explicit.add(key);
  }
  for (const o of options.overrides ?? []) {
    const key = overrideName(o);
    if (key === undefined) throw new ConfigError(`-o ${o}: expected name=value`, { key: o });
    if (!isParamName(key)) {
      throw new ConfigError(`-o ${o}: ${unknownParameter(key)}`, { key });
    }
    // Blanks around the value are not part of it (Postfix's split_nameval):
    // -o "name = value" as written in main.cf.
    const result = coerceValue(
      PARAMS[key],
      o.slice(o.indexOf("=") + 1).replace(/^[ \t]+|[ \t]+$/g, ""),
      true,
    );
    if (!result.ok) throw new ConfigError(`-o ${key}: ${result.error}`, { key });
    values.set(key, result.value);
    explicit.add(key);
  }
  // A configuration that sets smtpd_recipient_restrictions and not
  // smtpd_relay_restrictions was written for relay control in the
  // recipient list (before Postfix 2.10): its relay list is empty, as
  // Postfix's backwards-compatible setting. Without a guard in either list
  // the start is refused (compileLists).
  if (
    explicit.has("smtpd_recipient_restrictions") && !explicit.has("smtpd_relay_restrictions")
  ) values.set("smtpd_relay_restrictions", []);
  const config = expandAll(values, options.systemHostname ?? "localhost", file, text);
  // An empty queue_directory would be the directory the program runs in
  // (the checkout under deno task): its whole tree readable and writable.
  // Postfix refuses it too.
  if (config.queue_directory.trim() === "") {
    const fromFile = !overridden.has("queue_directory");
    throw new ConfigError(`${fromFile ? "" : "-o "}queue_directory: must not be empty`, {
      file: fromFile ? file : undefined,
      line: fromFile ? findKeyLine(text, "queue_directory") : undefined,
      key: "queue_directory",
    });
  }
  // As Postfix (mail_params.c): our names go into the banner, the EHLO
  // reply, Received: and Message-Id:, so they must be host names.
  for (const key of ["myhostname", "mydomain"] as const) {
    const why = hostnameProblem(config[key]);
    if (why === undefined) continue;
    const fromFile = !overridden.has(key);
    const shown = key === "myhostname" && !explicit.has(key) ? " (the system host name)" : "";
    throw new ConfigError(
      `${fromFile ? "" : "-o "}${key}: bad parameter value "${config[key]}"${shown}: ${why}`,
      {
        file: fromFile ? file : undefined,
        line: fromFile ? findKeyLine(text, key) : undefined,
        key,
      },
    );
  }
  return {
    config: Object.freeze(config),
    explicit,
    file: options.file,
    classes,
    text,
    lineOf: (key: string, item?: string) => findItemLine(text, key, item),
    placeOf: (key: string, item?: string) => {
      const set = (options.overrides ?? []).findLast((o) => overrideName(o) === key);
      if (set !== undefined) return `-o ${set.trim()}: `;
      const line = findItemLine(text, key, item);
      return `${options.file ?? "<config>"}${line ? `:${line}` : ""}: `;
    },
  };
}

/**
 * Why a name is not a host name by Postfix's rule (valid_hostname(3)):
 * labels of ASCII letters, digits, "_" and inner "-", of 1 to 63
 * characters, 255 in all, not all digits.
 * @param name the name
 * @returns why not, or undefined for a host name
 */
export function hostnameProblem(name: string): string | undefined {
  if (name === "") return "empty";
  if (name.length > 255) return "longer than 255 characters";
  const labels = name.split(".");
  for (const label of labels) {
    if (label === "") return "misplaced dot";
    if (label.length > 63) return "a label longer than 63 characters";
    if (!/^[A-Za-z0-9_-]+$/.test(label)) return "only letters, digits, - and _ in a label";
    if (label.startsWith("-") || label.endsWith("-")) return "misplaced hyphen";
  }
  if (/^[0-9.]+$/.test(name)) return "numeric";
  return undefined;
}

/**
 * The parameter an `-o name=value` sets.
 * @param o the override as given
 * @returns the name, blanks around it off; undefined without "="
 */
export function overrideName(o: string): string | undefined {
  const eq = o.indexOf("=");
  return eq < 0 ? undefined : o.slice(0, eq).trim();
}

/**
 * What a main.cf habit looks like to TOML: `myhostname = mail.example.com`
 * or `mynetworks = [127.0.0.0/8]` (no quotes) is "invalid value" or an
 * "illegal character in numeric literal". Says how it is written here.
 * @param message the TOML parser's message
 * @param line the line it names
 * @returns the hint, or ""
 */
function unquotedHint(message: string, line: string): string {
  if (!/^(invalid value|illegal character in numeric literal)$/.test(message)) return "";
  const m = /^\s*([A-Za-z0-9_-]+)\s*=\s*(.*?)\s*(#.*)?$/.exec(line.replace(/\r$/, ""));
  if (!m) return "";
  const [, key, value = ""] = m;
  if (value.startsWith("[")) {
    const items = value.replace(/^\[|\]$/g, "").split(",").map((x) => x.trim()).filter(Boolean);
    return ` (each list item is quoted in TOML, unlike main.cf: ${key} = [${
      items.map((x) => JSON.stringify(x.replace(/^["']|["']$/g, ""))).join(", ")
    }])`;
  }
  // A long run of base64 is no main.cf value but a pasted secret (a key's
  // body): not repeated into the log.
  if (/^["'{]/.test(value) || /[A-Za-z0-9+/]{40}/.test(value)) return "";
  return ` (a text value is quoted in TOML, unlike main.cf: ${key} = ${JSON.stringify(value)})`;
}

/** Fills defaults and expands $name / ${name} in string and list values. */
function expandAll(
  values: Map<ParamName, unknown>,
  systemHostname: string,
  file: string,
  text: string,
): Config {
  const names = Object.keys(PARAMS) as ParamName[];
  const rawOf = (name: ParamName): unknown =>
    values.has(name) ? values.get(name) : PARAMS[name].default;
  const done = new Map<ParamName, unknown>();
  const active = new Set<ParamName>();

  const expandString = (s: string, owner: ParamName): string =>
    s.replace(/\$(\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_m, _a, b, c) => {
      const ref = (b ?? c) as string;
      if (!isParamName(ref)) {
        throw new ConfigError(`${owner}: undefined parameter "$${ref}"`, {
          file,
          line: findKeyLine(text, owner),
          key: owner,
        });
      }
      const v = resolve(ref);
      return Array.isArray(v) ? v.join(" ") : String(v);
    });

  const resolve = (name: ParamName): unknown => {
    if (done.has(name)) return done.get(name);
    if (active.has(name)) {
      throw new ConfigError(`${name}: recursive $name reference`, {
        file,
        line: findKeyLine(text, name),
        key: name,
      });
    }
    active.add(name);
    let v = rawOf(name);
    // As Postfix's check_myhostname(): a system name without a dot gets
    // mydomain as set (never derived from myhostname), else "localdomain".
    if (name === "myhostname" && v === "") {
      v = systemHostname.includes(".")
        ? systemHostname
        : `${systemHostname}.${
          String(rawOf("mydomain")) !== "" ? resolve("mydomain") : "localdomain"
        }`;
    }
    if (name === "mydomain" && v === "") {
      const host = String(resolve("myhostname"));
      const dot = host.indexOf(".");
      v = dot > 0 && dot < host.length - 1 ? host.slice(dot + 1) : "localdomain";
    }
    if (typeof v === "string" && PARAMS[name].kind === "string") v = expandString(v, name);
    else if (Array.isArray(v)) {
      v = Object.freeze(v.flatMap((x: string) => splitList(expandString(x, name))));
    }
    active.delete(name);
    done.set(name, v);
    return v;
  };
  const out: Record<string, unknown> = {};
  for (const n of names) out[n] = resolve(n);
  return out as unknown as Config;
}

/** Words a name that is no parameter, with the nearest one as a hint. */
function unknownParameter(key: string): string {
  const hint = closestName(key);
  return `unknown parameter "${key}"${hint ? ` (did you mean "${hint}"?)` : ""}`;
}

/**
 * Finds the 1-based line on which a top-level key is assigned.
 * @param text TOML source
 * @param key the key
 * @returns the line, or undefined
 */
export function findKeyLine(text: string, key: string): number | undefined {
  // Plain string matching (no RegExp built from the key: a huge key would
  // make one too large, found by the fuzzer).
  const lines = text.split("\n");
  const forms = [key, `"${key}"`, `'${key}'`];
  const after = (rest: string, stops: string): boolean => stops.includes(rest.trimStart()[0] ?? "");
  for (let i = 0; i < lines.length; i++) {
    const l = (lines[i] ?? "").trimStart();
    if (forms.some((f) => l.startsWith(f) && after(l.slice(f.length), "=."))) return i + 1;
  }
  for (let i = 0; i < lines.length; i++) {
    const l = (lines[i] ?? "").trimStart();
    if (!l.startsWith("[")) continue;
    const inner = l.replace(/^\[+/, "").trimStart();
    if (forms.some((f) => inner.startsWith(f) && after(inner.slice(f.length), "]."))) return i + 1;
  }
  return undefined;
}

/**
 * Finds the line of a list item: the first line from the key's own to the
 * next assignment or table header that holds the item quoted ("item" or
 * 'item'), else the first that holds it as a word of a quoted string
 * ("check_client_access texthash:/x" holds both items; the loader splits
 * such a string).
 * @param text TOML source
 * @param key the key
 * @param item the item, if any
 * @returns that line, else the key's line (or undefined)
 */
export function findItemLine(text: string, key: string, item?: string): number | undefined {
  const start = findKeyLine(text, key);
  if (start === undefined || !item) return start;
  const lines: string[] = [];
  for (const l of text.split("\n").slice(start - 1)) {
    if (lines.length && /^\s*([A-Za-z0-9_-]+|"[^"]*"|'[^']*')\s*=|^\s*\[\s*[A-Za-z"']/.test(l)) {
      break;
    }
    lines.push(/^\s*#/.test(l) ? "" : l);
  }
  const quoted = [`"${item}"`, `'${item}'`];
  // The item between a quote, blank or comma and another.
  const literal = item.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const word = new RegExp(`["'\\s,]${literal}(?=["'\\s,])`);
  let at = lines.findIndex((l) => quoted.some((q) => l.includes(q)));
  if (at < 0) at = lines.findIndex((l) => word.test(l));
  return at < 0 ? start : start + at;
}

function closestName(key: string): string | undefined {
  let best: string | undefined;
  let bestDist = 4;
  for (const name of Object.keys(PARAMS)) {
    const d = editDistance(key, name);
    if (d < bestDist) {
      bestDist = d;
      best = name;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        (prev[j] ?? 0) + 1,
        (cur[j - 1] ?? 0) + 1,
        (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}
