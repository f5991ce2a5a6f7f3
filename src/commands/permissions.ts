/**
 * `smtpd permissions [-c FILE] [-o name=value]... [--json]`: prints the Deno
 * flags the configuration needs, one per line (for `deno run` or `deno
 * compile`), or as JSON with the reason for each value. Also the start-up
 * check that serve, stdin and `config --check` run first.
 *
 * @module
 */

import { resolve } from "node:path";
import { type LoadedConfig, readRegularFile } from "../config/mod.ts";
import {
  deriveNeeds,
  flagsFor,
  grantAdvice,
  missingMessage,
  missingNeeds,
  type Need,
  programCodeDir,
} from "../permissions/mod.ts";
import { err, out } from "./output.ts";

/**
 * The needs of a configuration for this process.
 * @param loaded the configuration
 * @returns the needs
 */
export function needsOf(loaded: LoadedConfig): Need[] {
  return deriveNeeds(loaded, { cwd: Deno.cwd(), codeDir: programCodeDir(), readText });
}

/**
 * Reads a text file for the derivation (tables, resolv.conf).
 * @param path the file
 * @returns its text, or undefined when it cannot be read
 */
export function readText(path: string): string | undefined {
  try {
    return readRegularFile(path);
  } catch {
    return undefined;
  }
}

/**
 * Prints the flags.
 * @param loaded the configuration
 * @param json print JSON instead of one flag per line
 * @returns the exit status
 */
export function runPermissions(loaded: LoadedConfig, json: boolean): number {
  const needs = needsOf(loaded);
  let flags: string[];
  try {
    flags = flagsFor(needs);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    err(`smtpd: fatal: ${e.message}`);
    return 1;
  }
  out(json ? JSON.stringify({ flags, needs }, null, 2) : flags.join("\n"));
  return 0;
}

/**
 * The start-up check.
 * @param loaded the configuration
 * @param overrides the -o overrides (for the advice)
 * @param needs its needs, when known ({@linkcode needsOf})
 * @returns the message lines when something is missing, else undefined
 */
export function checkPermissions(
  loaded: LoadedConfig,
  overrides: readonly string[],
  needs: readonly Need[] = needsOf(loaded),
): string[] | undefined {
  const missing = missingNeeds(needs);
  if (missing.length === 0) return undefined;
  const file = resolve(Deno.cwd(), loaded.file ?? "");
  return missingMessage(missing, grantAdvice(file, overrides, Deno.build.standalone));
}

/**
 * The first check of all: whether the configuration file itself may be read
 * (a binary built for another file may not).
 * @param file the -c file
 * @param overrides the -o overrides (for the advice)
 * @returns the message lines when it may not, else undefined
 */
export function checkConfigReadable(
  file: string,
  overrides: readonly string[],
): string[] | undefined {
  const path = resolve(Deno.cwd(), file);
  if (Deno.permissions.querySync({ name: "read", path }).state === "granted") return undefined;
  return missingMessage(
    [{ kind: "read", value: path, why: "configuration file" }],
    grantAdvice(path, overrides, Deno.build.standalone),
  );
}
