/**
 * The flags `deno task smtpd`, `deno task start`, `deno task compile`, the
 * benchmarks and the end-to-end tests run the program with: derived from the
 * configuration it is started with (src/permissions/, the same code as
 * `smtpd permissions`), so a test runs with exactly what the compiled binary
 * for its configuration gets.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { isAbsolute, resolve } from "node:path";
import { ConfigError, loadConfig } from "../src/config/mod.ts";
import { DEFAULT_CONFIG } from "../src/cli.ts";
import { readText } from "../src/commands/permissions.ts";
import {
  deriveNeeds,
  ENV_VARS,
  flagsFor,
  type Need,
  programCodeDir,
} from "../src/permissions/mod.ts";

/** The repository root: `deno task` runs the program from here. */
export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/**
 * The configuration file and overrides of a command line.
 * @param args the program's arguments (`serve -c FILE -o a=b ...`)
 * @returns the file (default config/smtpd.toml) and the overrides
 */
export function configArgs(args: readonly string[]): { file: string; overrides: string[] } {
  const { values } = parseArgs({
    args: [...args],
    strict: false,
    allowPositionals: true,
    options: { config: { type: "string", short: "c" }, o: { type: "string", multiple: true } },
  });
  const file = typeof values.config === "string" ? values.config : DEFAULT_CONFIG;
  const overrides = (values.o ?? []).filter((o): o is string => typeof o === "string");
  return { file, overrides };
}

/**
 * The program's arguments with a relative `-c FILE` (`--config FILE`,
 * `--config=FILE`, `-cFILE`) made absolute against the directory the user
 * ran the command in: `deno task` runs the program from the repository
 * root, where a file named relative to another directory is not found.
 * @param args the program's arguments
 * @param userCwd where the user ran the command (`deno task` sets INIT_CWD)
 * @returns the arguments, the configuration file absolute
 */
export function absoluteConfigArgs(args: readonly string[], userCwd: string): string[] {
  const abs = (f: string) => isAbsolute(f) ? f : resolve(userCwd, f);
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    const next = args[i + 1];
    if (a === "--") {
      out.push(...args.slice(i));
      break;
    } else if ((a === "-c" || a === "--config") && next !== undefined) {
      out.push(a, abs(next));
      i++;
    } else if (a.startsWith("--config=")) {
      out.push(`--config=${abs(a.slice("--config=".length))}`);
    } else if (/^-c./.test(a)) {
      out.push(`-c${abs(a.slice(2))}`);
    } else {
      out.push(a);
    }
  }
  return out;
}

/**
 * The needs of a configuration file. A configuration that cannot be loaded
 * gets only what reporting that takes (its file, the program's code): the
 * program then says what is wrong, with file and line.
 * @param file the configuration file
 * @param overrides -o overrides
 * @param cwd the directory the program runs in
 * @param strict a configuration that cannot be loaded is an error (its ConfigError)
 * @returns the needs
 */
export async function needsForConfig(
  file: string,
  overrides: readonly string[] = [],
  cwd = ROOT,
  strict = false,
): Promise<Need[]> {
  const path = isAbsolute(file) ? file : resolve(cwd, file);
  try {
    const loaded = await loadConfig(path, { overrides, systemHostname: Deno.hostname() });
    return deriveNeeds(loaded, { cwd, codeDir: programCodeDir(), readText });
  } catch (e) {
    if (strict || !(e instanceof ConfigError)) throw e;
    const code = programCodeDir();
    return [
      { kind: "read", value: path, why: "configuration file" },
      ...(code ? [{ kind: "read" as const, value: code, why: "program code" }] : []),
      ...ENV_VARS.map((v) => ({ kind: "env" as const, value: v, why: "stand-alone mode" })),
      { kind: "sys", value: "hostname", why: "myhostname default" },
    ];
  }
}

/**
 * The flags for a command line of the program.
 * @param args the program's arguments; `-c` and `-o` choose the configuration
 * @param cwd the directory the program runs in
 * @returns the Deno flags (permissions, then runtime flags)
 */
export async function flagsForArgs(args: readonly string[], cwd = ROOT): Promise<string[]> {
  const { file, overrides } = configArgs(args);
  return flagsFor(await needsForConfig(file, overrides, cwd));
}
