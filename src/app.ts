/**
 * The composition root: loads the configuration, builds the logger,
 * policy, queue and cleanup writer, and starts daemon or stand-alone mode.
 * This is the only place that builds real dependencies.
 *
 * @module
 */

import { statfsSync } from "node:fs";
import { Cleanup } from "./cleanup/mod.ts";
import { type CliOptions, parseCli } from "./cli.ts";
import {
  type Config,
  ConfigError,
  loadConfig,
  type LoadedConfig,
  PARAMS,
  toToml,
} from "./config/mod.ts";
import { Logger, MailLog } from "./log/mod.ts";
import { compileDefaultPolicy } from "./policy/mod.ts";
import { QueueStore } from "./queue/mod.ts";
import { runSession, type SessionDeps } from "./session/mod.ts";
import { type ListenAddress, parseListenAddress, serveTcp } from "./transport/tcp_listener.ts";
import { peerFromEnv, stdioTransport } from "./transport/stdio.ts";
import { VERSION } from "./version.ts";

const encoder = new TextEncoder();

function out(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text.endsWith("\n") ? text : text + "\n"));
}

function err(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text.endsWith("\n") ? text : text + "\n"));
}

function systemHostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "localhost";
  }
}

/**
 * Checks what only makes sense as a whole (addresses, networks).
 * @param loaded the loaded configuration
 * @returns the listen addresses
 * @throws {ConfigError}
 */
export function validateSemantics(loaded: LoadedConfig): ListenAddress[] {
  const c = loaded.config;
  compileDefaultPolicy(c); // parses mynetworks
  return c.smtpd_listen.map((a) => {
    const parsed = parseListenAddress(a);
    if (!parsed) {
      throw new ConfigError(`smtpd_listen: cannot parse "${a}": expected host:port`, {
        file: loaded.file,
        key: "smtpd_listen",
      });
    }
    return parsed;
  });
}

function freeSpaceProbe(dir: string): () => number | undefined {
  let cached: number | undefined;
  let at = 0;
  return () => {
    const now = Date.now();
    if (now - at < 1000) return cached;
    at = now;
    try {
      const s = statfsSync(dir);
      cached = Number(s.bavail) * Number(s.bsize);
    } catch {
      cached = undefined;
    }
    return cached;
  };
}

function buildDeps(config: Config, verbose: number, queue: "incoming" | "maildrop"): {
  deps: SessionDeps;
  store: QueueStore;
} {
  const logger = new Logger({
    tag: `${config.syslog_name}/smtpd`,
    host: config.myhostname,
    verbosity: verbose,
  });
  const store = new QueueStore(config.queue_directory);
  const deps: SessionDeps = {
    config,
    policy: compileDefaultPolicy(config),
    cleanup: new Cleanup(store, config),
    log: new MailLog(logger),
    clock: () => new Date(),
    freeSpace: freeSpaceProbe(config.queue_directory),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    queue,
  };
  return { deps, store };
}

async function load(opts: Extract<CliOptions, { configFile: string }>): Promise<LoadedConfig> {
  return await loadConfig(opts.configFile, {
    overrides: opts.overrides,
    systemHostname: systemHostname(),
  });
}

/**
 * Runs the program.
 * @param args command-line arguments
 * @returns the exit status
 */
export async function runCli(args: readonly string[]): Promise<number> {
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
  let loaded: LoadedConfig;
  let listen: ListenAddress[];
  try {
    loaded = await load(opts);
    listen = validateSemantics(loaded);
  } catch (e) {
    if (e instanceof ConfigError) {
      err(`smtpd: fatal: ${e.message}`);
      return 1;
    }
    throw e;
  }
  const config = loaded.config;
  switch (opts.kind) {
    case "config": {
      if (opts.check) {
        out(`${loaded.file}: configuration OK`);
        return 0;
      }
      const names = (Object.keys(PARAMS) as (keyof typeof PARAMS)[])
        .filter((n) => !opts.nonDefault || loaded.explicit.has(n))
        .sort();
      out(names.map((n) => `${n} = ${toToml(config[n])}`).join("\n"));
      return 0;
    }
    case "stdin":
      return await runStdin(config, opts.verbose);
    case "serve":
      return await runServe(config, listen, opts.verbose, loaded.file ?? "");
  }
}

async function runStdin(config: Config, verbose: number): Promise<number> {
  const { deps, store } = buildDeps(config, verbose, "maildrop");
  try {
    await store.prepare();
  } catch (e) {
    deps.log.logger.error(`cannot prepare queue directory: ${(e as Error).message}`);
    return 1;
  }
  const peer = peerFromEnv((name) => {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined;
    }
  });
  await runSession(stdioTransport(peer), deps);
  return 0;
}

async function runServe(
  config: Config,
  listen: ListenAddress[],
  verbose: number,
  file: string,
): Promise<number> {
  const { deps, store } = buildDeps(config, verbose, "incoming");
  const logger = deps.log.logger;
  try {
    await store.prepare();
  } catch (e) {
    logger.error(
      `cannot prepare queue directory "${config.queue_directory}": ${(e as Error).message}`,
    );
    return 1;
  }
  let server;
  try {
    server = serveTcp(
      listen,
      (t) =>
        runSession(t, deps).catch((e) => logger.error(`session failed: ${(e as Error).message}`)),
    );
  } catch (e) {
    logger.error(`cannot listen: ${(e as Error).message}`);
    return 1;
  }
  const where = server.addresses.map((a) => `${a.hostname}:${a.port}`).join(" ");
  logger.info(`daemon started -- version ${VERSION}, configuration ${file}, listening on ${where}`);
  const stop = () => {
    logger.info("terminating on signal");
    server.close();
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  await server.finished;
  return 0;
}
