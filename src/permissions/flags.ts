/**
 * The Deno command-line flags for a set of needs: one `--allow-*` flag per
 * permission kind, with exactly the values needed, then the runtime flags the
 * program is measured with. Never `--allow-all`, `--allow-run` or
 * `--allow-ffi`: no need produces them.
 *
 * @module
 */

import type { Need, NeedKind } from "./needs.ts";

const ORDER: readonly NeedKind[] = ["read", "write", "net", "env", "sys"];

/** Flags that are not permissions, given to every run and every build. */
export const RUNTIME_FLAGS: readonly string[] = [
  // Not a permission: Deno.listen({ reusePort }) is still marked unstable.
  "--unstable-net",
  "--no-prompt",
  // Deno's own log at errors only: its resolver library otherwise writes
  // a line of its own to stderr, the mail log's stream, for each answer a
  // name server sends with the wrong ID or question ("expected message id:
  // ..., dropped"). Uncaught errors are still printed.
  "--quiet",
  // Not permissions either: a 1 MiB young generation per isolate instead of
  // up to 16 MiB (session garbage dies young, so scavenges stay cheap), and
  // the old generation allowed to grow by half its live size between full
  // collections (V8 picks up to 4x for a fast-allocating program). Peak RSS
  // under 100 connections fell from about 149 to 112 MiB at the same msgs/s
  // with the young generation (BENCHMARKS.md). V8's --optimize-for-size
  // took a few MiB more off but cost 25-40% of the CPU per message, with or
  // without TLS (it compacts the heap at every full collection, and
  // collects fully several times as often); --heap-growing-percent=50 keeps
  // most of its memory (2-3 MiB more at the peak) and none of its cost.
  // The two triggers start a full collection's incremental marking when
  // the old generation has grown 20% of the way to its limit (at once at
  // 40%) instead of close to it. V8 sets that limit well above the live
  // size, and a session's state outlives the young generation (it waits
  // on fsyncs), so each isolate used to climb from about 7 to 15 MiB
  // between collections. 35/60 brought that to about 10; 20/40 takes
  // 3-4 MiB more off the peak under 100 connections for about 8% more
  // user CPU; 15/30 takes nothing more.
  // (Turbofan stays: --max-opt=2, Maglev as the top tier, saved 1-4 MiB but
  // cost 10-20% more CPU per 1 MiB message in the bench.)
  // Also: a regular expression that backtracks excessively (a regexp: or
  // pcre: table pattern such as /^(a+)+$/ against a long key) falls back
  // to V8's linear-time engine instead of running for ever (ReDoS).
  "--v8-flags=--max-semi-space-size=1,--heap-growing-percent=50," +
  "--incremental-marking-soft-trigger=20,--incremental-marking-hard-trigger=40," +
  "--enable-experimental-regexp-engine-on-excessive-backtracks",
  // V8's code cache lives in SQLite files of the deno CLI's cache, mapped
  // into the process for its whole life (2-3 MiB of RSS); a daemon
  // compiles its code once at start.
  "--no-code-cache",
];

/**
 * The `--allow-*` flag that grants one need.
 * @param need the need
 * @returns e.g. `--allow-net=0.0.0.0:25`
 */
export function flagFor(need: Need): string {
  return `--allow-${need.kind}=${need.value}`;
}

/**
 * Builds the flags.
 * @param needs what the configuration needs
 * @returns the permission flags, then {@linkcode RUNTIME_FLAGS}
 * @throws {RangeError} for a value Deno's flag syntax cannot carry (a comma)
 */
export function flagsFor(needs: readonly Need[]): string[] {
  const flags: string[] = [];
  for (const kind of ORDER) {
    const values = [...new Set(needs.filter((n) => n.kind === kind).map((n) => n.value))];
    const bad = values.find((v) => v.includes(","));
    if (bad !== undefined) {
      const why = needs.find((n) => n.kind === kind && n.value === bad)?.why;
      throw new RangeError(
        `Cannot grant "${bad}"${why ? ` (${why})` : ""}: Deno's --allow-${kind} list ` +
          "cannot hold a comma; choose a path without one",
      );
    }
    if (values.length > 0) flags.push(`--allow-${kind}=${values.join(",")}`);
  }
  return [...flags, ...RUNTIME_FLAGS];
}
