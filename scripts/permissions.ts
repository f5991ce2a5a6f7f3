/**
 * The one place that says what the program may touch. `deno task smtpd`,
 * `deno task start`, `deno task compile` and the end-to-end tests all use
 * {@linkcode productionFlags}, so tests run with exactly the permissions
 * the compiled binary gets. Paths are relative to the working directory.
 *
 * @module
 */

import { resolve } from "node:path";

/** Deployment paths and hosts the flags are built from. */
export interface PermissionOptions {
  /** Files and directories to read: configuration, tables, queue. */
  readPaths?: readonly string[];
  /** Directories to write: the queue directory only. */
  writePaths?: readonly string[];
  /** Hosts to listen on and the DNS server to reach. */
  netHosts?: readonly string[];
  /** Queue directories whose public/qmgr and public/pickup sockets may be triggered. */
  queueDirectories?: readonly string[];
}

/** The defaults for a checkout: config/ and var/ under the working directory, loopback only. */
export const DEFAULT_PERMISSIONS: Required<PermissionOptions> = {
  // src: listener threads load src/worker.ts at run time (read-only code).
  readPaths: ["config", "var", "src"],
  writePaths: ["var"],
  netHosts: ["127.0.0.1", "[::1]"],
  queueDirectories: ["var/spool"],
};

/** Environment variables the program reads (stand-alone peer identity; src/transport/stdio.ts). */
export const ENV_VARS = [
  "REMOTE_ADDR",
  "REMOTE_PORT",
  "TCPREMOTEIP",
  "TCPREMOTEPORT",
  "REMOTE_HOST",
];

/**
 * Builds the permission flags.
 * @param options paths and hosts (defaults: {@linkcode DEFAULT_PERMISSIONS})
 * @returns the `--allow-*` flags (never --allow-all, --allow-run or --allow-ffi) and the
 *   runtime flags the program is measured with
 */
export function productionFlags(options: PermissionOptions = {}): string[] {
  const o = { ...DEFAULT_PERMISSIONS, ...options };
  // Deno grants UNIX sockets by exact absolute path only.
  const sockets = o.queueDirectories.flatMap((q) =>
    ["qmgr", "pickup"].map((s) => `unix:${resolve(q, "public", s)}`)
  );
  return [
    `--allow-read=${o.readPaths.join(",")}`,
    `--allow-write=${o.writePaths.join(",")}`,
    `--allow-net=${[...o.netHosts, ...sockets].join(",")}`,
    `--allow-env=${ENV_VARS.join(",")}`,
    "--allow-sys=hostname,statfs",
    // Not a permission: Deno.listen({ reusePort }) is still marked unstable.
    "--unstable-net",
    "--no-prompt",
    // Not permissions either: a 1 MiB young generation per isolate instead of
    // up to 16 MiB (session garbage dies young, so scavenges stay cheap) and
    // V8's memory-over-speed heuristics. Peak RSS under 100 connections fell
    // from about 149 to 112 MiB at the same msgs/s (BENCHMARKS.md).
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
    "--v8-flags=--max-semi-space-size=1,--optimize-for-size," +
    "--incremental-marking-soft-trigger=20,--incremental-marking-hard-trigger=40," +
    "--enable-experimental-regexp-engine-on-excessive-backtracks",
    // V8's code cache lives in SQLite files of the deno CLI's cache, mapped
    // into the process for its whole life (2-3 MiB of RSS); a daemon
    // compiles its code once at start.
    "--no-code-cache",
  ];
}
