/**
 * Reload (SIGHUP): the configuration file is read again, and it and every
 * table are compiled into a new runtime that serves the sessions that start
 * afterwards; sessions in progress finish under the runtime they started
 * with. A configuration that does not load, compile or fit this process's
 * permissions changes nothing: the running one stays, and the log says why
 * with file and line. Each listener thread rebuilds its own runtime from
 * the text the main thread read, so that all threads serve the same one.
 *
 * @module
 */

import {
  ConfigError,
  type LoadedConfig,
  readConfigFile,
  resolveConfigText,
} from "../config/mod.ts";
import { checkPermissions, needsOf, readText } from "../commands/permissions.ts";
import { fileTableSpecs, type Need, TABLE_WORDS, tableWordsSteps } from "../permissions/mod.ts";
import { forgetPrepared, prepareTable } from "../policy/tables/mod.ts";
import { rebuildRuntime, type Runtime, systemHostname } from "../runtime.ts";
import { configWarnings } from "../runtime_checks.ts";

/** Where a configuration is read from: the -c file and the -o overrides. */
export interface ConfigSource {
  readonly file: string;
  readonly overrides: readonly string[];
}

/**
 * Resolves configuration text as the start-up did.
 * @param text the TOML text
 * @param source the file (for messages) and the overrides
 * @returns the loaded configuration
 * @throws {ConfigError} with file and line
 */
export function resolveSource(text: string, source: ConfigSource): LoadedConfig {
  return resolveConfigText(text, {
    file: source.file,
    overrides: source.overrides,
    systemHostname: systemHostname(),
  });
}

/**
 * What a reload did; `files` is {@linkcode filesStamp} taken before it
 * compiled, `needs` what the configuration reads, to take it again after.
 */
export type ReloadResult =
  | { ok: true; runtime: Runtime; text: string; files: string; needs: readonly Need[] }
  | { ok: false; error: string };

/**
 * How the files a configuration names (tables, certificates, the file
 * itself) look now: inode, size and times of each. Each listener thread
 * reads them again after the main thread: a thread that finds them
 * otherwise than the main thread did before it compiled may have compiled
 * other contents, and does not take them.
 * @param needs the configuration's needs ({@linkcode needsOf}): the files it reads
 * @returns the stamp
 */
export function filesStamp(needs: readonly Need[]): string {
  return needs.filter((n) => n.kind === "read").map((n) => {
    try {
      const st = Deno.statSync(n.value);
      if (!st.isFile) return "";
      return `${n.value} ${st.ino} ${st.size} ${st.mtime?.getTime()} ${st.ctime?.getTime()}`;
    } catch {
      return `${n.value} -`;
    }
  }).join("\n");
}

/** A listener thread's answer when the files changed under the reload (see filesStamp). */
export const FILES_CHANGED = "a file the configuration names changed during the reload";

/**
 * Rebuilds a runtime from configuration text, or says why it cannot.
 * Restart-only parameters that changed keep their values and are logged
 * (by the main thread only: a listener thread's reload passes false).
 * @param current the running runtime
 * @param text the configuration text
 * @param source the file and overrides
 * @param logKept whether to log the restart-only parameters that changed
 * @returns the new runtime, or the error (nothing changed)
 */
export async function reloadFromText(
  current: Runtime,
  text: string,
  source: ConfigSource,
  logKept = true,
): Promise<ReloadResult> {
  try {
    const loaded = resolveSource(text, source);
    // The tables are read and parsed first, in slices: the compilation
    // below runs at once, and the thread serves no session while it does.
    await prepareTables(loaded);
    const needs = needsOf(loaded);
    const missing = checkPermissions(loaded, source.overrides, needs);
    if (missing) return { ok: false, error: permissionsError(missing) };
    const files = filesStamp(needs);
    const { runtime, kept } = await rebuildRuntime(current, loaded, logKept);
    for (const w of logKept ? configWarnings(loaded) : []) current.logger.warning(w);
    for (const key of logKept ? kept : []) {
      const line = loaded.lineOf(key);
      current.logger.warning(
        `reload: ${key} changed${line ? ` (${source.file}:${line})` : ""} but takes effect ` +
          `only after a restart; still ${
            JSON.stringify(current.config[key as keyof typeof current.config])
          }`,
      );
    }
    return { ok: true, runtime, text, files, needs };
  } catch (e) {
    if (e instanceof ConfigError) return { ok: false, error: e.message };
    return { ok: false, error: (e as Error)?.message ?? String(e) };
  } finally {
    forgetPrepared();
  }
}

/**
 * Reads and parses, in slices, the table files a configuration names, for
 * the compilation (and the derivation of its needs) to take them from
 * there (src/policy/tables/prepared.ts).
 * @param loaded the configuration
 */
async function prepareTables(loaded: LoadedConfig): Promise<void> {
  const specs = fileTableSpecs(loaded, { cwd: Deno.cwd(), readText });
  for (const spec of specs) await prepareTable(spec, { [TABLE_WORDS]: tableWordsSteps });
}

/**
 * The main thread's reload: reads the file and rebuilds its runtime. A
 * failure is logged here; success is logged by the caller once the
 * listener threads have answered ({@linkcode reloadedMessage}).
 * @param current the running runtime
 * @param source the file and overrides
 * @returns the outcome
 */
export async function reloadFromFile(
  current: Runtime,
  source: ConfigSource,
): Promise<ReloadResult> {
  let text: string;
  try {
    text = await readConfigFile(source.file);
  } catch (e) {
    const error = e instanceof ConfigError
      ? e.message
      : `${source.file}: cannot read configuration: ${(e as Error).message}`;
    return failed(current, error);
  }
  const result = await reloadFromText(current, text, source);
  if (!result.ok) return failed(current, result.error);
  return result;
}

/**
 * The log line of a reload that was taken, once every listener thread has
 * answered.
 * @param file the configuration file
 * @param threads how many threads serve (main thread included)
 * @param failed the listener threads that kept their runtime
 * @returns the line
 */
export function reloadedMessage(file: string, threads: number, failed: number): string {
  return `reload: configuration and tables re-read from ${file}; new sessions use them` +
    (threads > 1 ? ` (${threads - failed} of ${threads} threads)` : "");
}

function failed(current: Runtime, error: string): ReloadResult {
  current.logger.warning(`reload failed: ${error}; keeping the running configuration`);
  return { ok: false, error };
}

/**
 * The start-up check's message (a header, a line per missing flag, the
 * advice) as one log line for a reload, which cannot add permissions.
 * @param lines the message lines of the check
 * @returns the text
 */
export function permissionsError(lines: readonly string[]): string {
  const [header = "", ...rest] = lines;
  const advice = rest.pop() ?? "";
  const flags = rest.map((l) => l.trim().replace(/\s{2,}/g, " ")).join(", ");
  return `${header} ${flags}; a reload cannot add permissions: restart, and ${advice}`;
}
