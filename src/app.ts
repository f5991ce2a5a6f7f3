/**
 * The command line: argv → subcommand. Loads and checks the configuration
 * (runtime.ts builds what it needs) and that this process holds the Deno
 * permissions it needs (commands/permissions.ts, which also prints them for
 * `smtpd permissions`), then prints it (config), runs the
 * restriction lists for a hypothetical session (explain), reads the queue
 * (queue), or starts stand-alone mode (commands/stdin.ts) or daemon mode
 * (daemon/serve.ts).
 *
 * @module
 */

import type { CliOptions } from "./cli.ts";
import { ConfigError, loadConfig, overrideName, PARAMS, toToml } from "./config/mod.ts";
import { auditLists } from "./policy/mod.ts";
import { explain, formatExplanation } from "./explain.ts";
import { VERSION } from "./version.ts";
import { err, out } from "./commands/output.ts";
import { buildRuntime, makeLogger, type Mode, type Runtime, systemHostname } from "./runtime.ts";
import { runQueue } from "./commands/queue.ts";
import { checkStandAloneTls, runStdin, standAloneClient } from "./commands/stdin.ts";
import { runServe } from "./daemon/serve.ts";
import { checkMailOwner, checkServeListen } from "./runtime_checks.ts";
import { checkQueueDirectory } from "./commands/queue_check.ts";
import { checkConfigReadable, checkPermissions, runPermissions } from "./commands/permissions.ts";
import { checkDns } from "./commands/dns_check.ts";
import type { LoadedConfig } from "./config/mod.ts";
import { StderrSink } from "./log/mod.ts";
import { stderrIsClient } from "./transport/stdio.ts";
import { checkPolicyServices } from "./commands/policy_check.ts";
import { checkSasl } from "./commands/sasl_check.ts";
import { checkSocketmaps } from "./commands/socketmap_check.ts";
import { checkSyslog } from "./commands/syslog_check.ts";

type RunOptions = Extract<CliOptions, { configFile: string }>;

/**
 * Runs the program.
 * @param args command-line arguments
 * @returns the exit status
 */
export async function runCli(args: readonly string[]): Promise<number> {
  // Under inetd and xinetd stderr is the client's socket (set below, once
  // the command is known); a stray error's line then goes to the runtime's
  // logger (syslog_server only), not into the SMTP dialog.
  let quiet: boolean | undefined = undefined;
  // Once the runtime exists, a stray error is a log line like any other
  // (and, like any other, never waits for a stderr nobody reads).
  let strayLog: ((text: string) => void) | undefined = undefined;
  const stray = (text: string) => {
    if (strayLog) strayLog(text);
    else if (!(quiet ?? stderrIsClient())) err(`smtpd: error: ${text}`);
  };
  // Last line of defence: no stray asynchronous error may end the server.
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    stray(`unhandled rejection: ${e.reason?.stack ?? e.reason}`);
  });
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    stray(`uncaught exception: ${e.error?.stack ?? e.message}`);
  });
  // Loaded here: listener threads import this module too, and node:util
  // (parseArgs) would cost each of them memory for nothing.
  const { parseCli } = await import("./cli.ts");
  const opts = parseCli(args);
  switch (opts.kind) {
    case "help":
      out(opts.text);
      return 0;
    case "version":
      out(`smtpd ${VERSION}`);
      return 0;
    case "error":
      err(`smtpd: ${opts.message}`);
      return 2;
    default:
      break;
  }
  // Under inetd and xinetd stderr is the client's socket: a fatal error must
  // not go there (it names files to anyone who connects).
  quiet = opts.kind === "stdin" && stderrIsClient();
  let loaded: LoadedConfig | undefined;
  const fatal = (lines: readonly string[]) =>
    reportFatal(lines, quiet ? loaded ?? null : undefined);
  // One runtime, built once and checked as it is built: `config --check`
  // builds the same one as `serve`, without opening anything.
  const mode: Mode = opts.kind === "serve" || opts.kind === "stdin" ? opts.kind : "check";
  let runtime: Runtime;
  try {
    const unreadable = checkConfigReadable(opts.configFile, opts.overrides);
    if (unreadable) return await fatal(unreadable);
    loaded = await loadConfig(opts.configFile, {
      overrides: opts.overrides,
      systemHostname: systemHostname(),
    });
    if (opts.kind === "permissions") return runPermissions(loaded, opts.explain.json);
    // Before anything touches a file, port or name server: a program built
    // for another configuration names every flag it lacks.
    if (opts.kind === "serve" || opts.kind === "stdin" || (opts.kind === "config" && opts.check)) {
      const missing = checkPermissions(loaded, opts.overrides);
      if (missing) return await fatal(missing);
    }
    const client = opts.kind === "stdin" ? standAloneClient() : undefined;
    if (client) checkStandAloneTls(loaded, client);
    if (opts.kind === "serve") checkServeListen(loaded);
    // Not in config --check: a check run as another user than the service's
    // (a deployment's own account, CI) would refuse a configuration that is right.
    if (opts.kind === "serve" || opts.kind === "stdin") checkMailOwner(loaded);
    runtime = await buildRuntime(loaded, {
      verbose: opts.verbose,
      mode,
      networkClient: client?.kind === "ok" && client.peer.kind === "network",
    });
  } catch (e) {
    if (e instanceof ConfigError) return await fatal([configErrorText(e, opts.overrides)]);
    // Anything else no check above foresaw (the operating system refusing a
    // call) stops the start too, with status 1: thrown on, it would reach
    // the handler of unhandled rejections above and the process would exit
    // 0, which a service manager takes for a clean stop and does not restart.
    return await fatal([`cannot start: ${errorText(e)}`]);
  }
  strayLog = (text) => runtime.logger.error(text);
  try {
    return await run(opts, runtime);
  } catch (e) {
    // The same for an error that ends the command or the server itself.
    runtime.logger.fatal(errorText(e));
    await runtime.logSettled(1000);
    return 1;
  } finally {
    // Bounded: a stderr that takes nothing must not keep the process alive.
    await runtime.stderr.settled(1000);
  }
}

/**
 * An error's text for a fatal line.
 * @param e what was thrown
 * @returns its message (its stack with -v is not needed: the line names the cause)
 */
function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Says why the program stops at start: on stderr, or, when stderr is the
 * client's socket (stand-alone mode under inetd or xinetd), to the
 * syslog_server of the configuration when it was read far enough to name
 * one, else nowhere (the client sees the connection close).
 * @param lines the text of each line, after "fatal: "
 * @param quiet undefined: stderr; the configuration read so far (or null): not stderr
 * @returns the exit status, 1
 */
async function reportFatal(
  lines: readonly string[],
  quiet: LoadedConfig | null | undefined,
): Promise<number> {
  if (quiet === undefined) {
    for (const line of lines) err(`smtpd: fatal: ${line}`);
    return 1;
  }
  if (!quiet) return 1;
  // The runtime's own logger: with stderr the client's socket, it writes to
  // syslog_server only (to nothing without one).
  const { logger, logSettled } = makeLogger(quiet.config, 0, "stdin", new StderrSink());
  for (const line of lines) logger.fatal(line);
  await logSettled(1000);
  return 1;
}

/**
 * Runs a subcommand with its runtime.
 * @param opts the command line
 * @param runtime the runtime
 * @returns the exit status
 */
async function run(opts: RunOptions, runtime: Runtime): Promise<number> {
  const { loaded, config, policy } = runtime;
  switch (opts.kind) {
    case "config": {
      if (opts.check) {
        const queue = checkQueueDirectory(loaded);
        if (queue.error) {
          err(`smtpd: fatal: ${queue.error}`);
          return 1;
        }
        const warnings = auditLists(loaded);
        if (queue.warning) warnings.push(queue.warning);
        const [dns, sasl, servers, maps, syslog] = await Promise.all([
          checkDns(loaded, policy),
          checkSasl(loaded),
          checkPolicyServices(loaded),
          checkSocketmaps(loaded),
          checkSyslog(loaded),
        ]);
        for (const c of [dns, sasl]) if (c?.warning) warnings.push(c.warning);
        warnings.push(...servers, ...maps, ...(syslog ? [syslog] : []));
        for (const w of warnings) err(`smtpd: warning: ${w}`);
        for (const c of [dns, sasl]) if (c?.ok) out(c.ok);
        // With those the runtime logged as it was built (an expired
        // certificate, an unknown EHLO keyword, a restriction that does nothing).
        const count = warnings.length + runtime.logger.warnings;
        out(`${loaded.file}: configuration OK${count ? ` (${count} warnings)` : ""}`);
        return 0;
      }
      const names = (Object.keys(PARAMS) as (keyof typeof PARAMS)[])
        .filter((n) => !opts.nonDefault || loaded.explicit.has(n))
        .sort();
      // Restriction class definitions are parameters of the file too: without
      // them the printed configuration would not load again.
      const classes = [...loaded.classes].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
      out(
        [
          ...names.map((n) => `${n} = ${toToml(config[n])}`),
          ...classes.map(([name, items]) =>
            `${/^[A-Za-z0-9_-]+$/.test(name) ? name : toToml(name)} = ${toToml(items)}`
          ),
        ].join("\n"),
      );
      return 0;
    }
    case "explain": {
      const x = opts.explain;
      const result = await explain(
        {
          client: x.client ?? "",
          clientName: x.clientName,
          helo: x.helo,
          from: x.from,
          to: x.to,
          etrn: x.etrn,
          ...(x.saslUser !== undefined ? { saslUser: x.saslUser } : {}),
        },
        { config, policy, dns: policy.sessionResolver() },
      );
      out(x.json ? JSON.stringify(result, null, 2) : formatExplanation(result));
      return 0;
    }
    case "queue":
      return await runQueue(config, opts.queueArgs, opts.explain.json);
    case "stdin":
      return await runStdin(runtime);
    case "serve":
      // Not awaited: a resolver that does not answer must not delay the start.
      void checkDns(loaded, policy).then((r) => r?.warning && runtime.logger.warning(r.warning));
      void checkSasl(loaded).then((r) => r?.warning && runtime.logger.warning(r.warning));
      return await runServe(runtime, {
        file: opts.configFile,
        overrides: opts.overrides,
        verbose: opts.verbose,
      });
    case "permissions":
      return runPermissions(loaded, opts.explain.json);
  }
}

/**
 * How a configuration error is said: one about a parameter that `-o` set
 * names the override, not the line of the file that `-o` replaced.
 * @param e the error
 * @param overrides the command line's `-o name=value` settings
 * @returns the text after `smtpd: fatal: `
 */
export function configErrorText(e: ConfigError, overrides: readonly string[]): string {
  if (e.key === undefined || e.file === undefined) return e.message;
  const set = overrides.findLast((o) => overrideName(o) === e.key);
  if (set === undefined) return e.message;
  const detail = e.detail.startsWith(`${e.key}: `) ? e.detail.slice(e.key.length + 2) : e.detail;
  return `-o ${set.trim()}: ${detail}`;
}
