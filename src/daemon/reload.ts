/**
 * Reload (SIGHUP): the configuration file and every table read again and
 * compiled by the same code as at start, into a runtime for new sessions;
 * sessions in progress finish under the one they started with. A bad
 * configuration, or one that needs a permission this process was not
 * started with, changes nothing. Parameters bound to what was opened at
 * start ({@linkcode RESTART_ONLY}) keep their running values, and each one
 * that differs is named in a warning.
 *
 * @module
 */

import {
  type Config,
  ConfigError,
  loadConfig,
  type LoadedConfig,
  type ParamName,
} from "../config/mod.ts";
import { buildRuntime, type Runtime, systemHostname } from "../runtime.ts";

/**
 * The parameters a reload cannot change, and why: the sockets, threads,
 * queue store, log sinks, STARTTLS context and shared counters made at
 * start use them.
 */
export const RESTART_ONLY: Readonly<Partial<Record<ParamName, string>>> = Object.freeze({
  smtpd_listen: "the listening sockets",
  smtpd_listen_threads: "the listener threads",
  queue_directory: "the queue store and triggers",
  mail_owner: "the queue files' owner",
  syslog_name: "the logger",
  syslog_facility: "the logger",
  syslog_server: "the logger",
  smtpd_tls_security_level: "the STARTTLS context and thread count",
  smtpd_tls_cert_file: "the STARTTLS context",
  smtpd_tls_key_file: "the STARTTLS context",
  smtpd_upstream_proxy_protocol: "the listeners",
  default_process_limit: "the shared connection limiter",
  smtpd_client_connection_count_limit: "the shared connection limiter",
  smtpd_stress_threshold: "the shared connection limiter",
  anvil_rate_time_unit: "the shared rate counters",
  smtpd_memory_budget: "the shared memory budget",
});

/** The running values of the restart-only parameters (structured-cloneable, for a thread). */
export type RestartOnlyValues = Readonly<Partial<Record<ParamName, unknown>>>;

/**
 * The running values of the restart-only parameters.
 * @param config the configuration in force
 * @returns their values
 */
export function restartOnlyValues(config: Config): RestartOnlyValues {
  return Object.fromEntries(
    (Object.keys(RESTART_ONLY) as ParamName[]).map((name) => [name, config[name]]),
  );
}

/**
 * The new configuration with every restart-only parameter set back to its
 * running value, and the names of those that differed.
 * @param running the values in force ({@linkcode restartOnlyValues})
 * @param next the configuration just read
 * @returns the configuration to use, and the parameters kept
 */
export function pinRestartOnly(
  running: RestartOnlyValues,
  next: LoadedConfig,
): { loaded: LoadedConfig; kept: ParamName[] } {
  const kept: ParamName[] = [];
  const config: Record<string, unknown> = { ...next.config };
  for (const name of Object.keys(RESTART_ONLY) as ParamName[]) {
    if (JSON.stringify(running[name]) === JSON.stringify(next.config[name])) continue;
    kept.push(name);
    config[name] = running[name];
  }
  if (kept.length === 0) return { loaded: next, kept };
  const loaded: LoadedConfig = {
    config: Object.freeze(config) as LoadedConfig["config"],
    explicit: next.explicit,
    file: next.file,
    classes: next.classes,
    lineOf: (key) => next.lineOf(key),
  };
  return { loaded: Object.freeze(loaded), kept };
}

/** How a reload reads the configuration. */
export interface ReloadSource {
  file: string;
  overrides: readonly string[];
  verbose: number;
  /**
   * The main thread's permission check of the new configuration: what is
   * missing when it needs a flag this process lacks.
   */
  permissions?: (loaded: LoadedConfig) => string | undefined;
}

/** A reload's outcome. */
export type Reloaded =
  | { ok: true; runtime: Runtime; kept: ParamName[] }
  | { ok: false; error: string };

/**
 * Reads the configuration and tables again and builds a runtime on the
 * running one (its open parts kept).
 * @param running the runtime in force
 * @param source the file, overrides and checks
 * @returns the new runtime, or why there is none
 */
export async function reloadRuntime(running: Runtime, source: ReloadSource): Promise<Reloaded> {
  try {
    const next = await loadConfig(source.file, {
      overrides: [...source.overrides],
      systemHostname: systemHostname(),
    });
    const missing = source.permissions?.(next);
    if (missing) return { ok: false, error: missing };
    const { loaded, kept } = pinRestartOnly(restartOnlyValues(running.config), next);
    const runtime = await buildRuntime(loaded, {
      verbose: source.verbose,
      mode: running.mode,
      previous: running,
    });
    return { ok: true, runtime, kept };
  } catch (e) {
    if (e instanceof ConfigError) return { ok: false, error: e.message };
    return { ok: false, error: `${(e as Error).message ?? e}` };
  }
}

/**
 * The warning naming the restart-only parameters that differ.
 * @param kept their names
 * @returns the text, or undefined when none differ
 */
export function keptWarning(kept: readonly ParamName[]): string | undefined {
  if (kept.length === 0) return undefined;
  return `reload: ${kept.join(", ")} changed but need${kept.length === 1 ? "s" : ""} a restart (${
    [...new Set(kept.map((k) => RESTART_ONLY[k]))].join(", ")
  }); ` +
    "the running value stays in effect until then";
}
