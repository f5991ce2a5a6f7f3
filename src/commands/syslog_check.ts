/**
 * The syslog check of `smtpd config --check`: with a TCP `syslog_server`,
 * one connection, closed at once, tells whether it answers. The daemon
 * says so at its first log line; a stand-alone process under inetd, whose
 * only log that server is, cannot: there the check before the service is
 * enabled is the place to learn it. UDP sends without an answer: nothing
 * to check.
 *
 * @module
 */

import type { LoadedConfig } from "../config/mod.ts";
import { parseSyslogServer } from "../log/mod.ts";

/** How long the check waits for the server to accept. */
const CHECK_TIMEOUT_MS = 3_000;

/**
 * Runs the check.
 * @param loaded the configuration
 * @returns a warning when a TCP syslog_server cannot be reached
 */
export async function checkSyslog(loaded: LoadedConfig): Promise<string | undefined> {
  const key = "syslog_server";
  const target = parseSyslogServer(loaded.config[key]);
  if (target?.transport !== "tcp") return undefined;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), CHECK_TIMEOUT_MS);
  try {
    const conn = await Deno.connect({
      hostname: target.host,
      port: target.port,
      signal: abort.signal,
    });
    conn.close();
    return undefined;
  } catch (e) {
    const why = abort.signal.aborted
      ? `no answer within ${CHECK_TIMEOUT_MS / 1000} s`
      : (e as Error).message;
    return `${loaded.placeOf(key)}${key}: ${loaded.config[key]} cannot be reached (${why}); ` +
      "log lines sent there are dropped until it answers";
  } finally {
    clearTimeout(timer);
  }
}
