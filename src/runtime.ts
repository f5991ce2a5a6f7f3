/**
 * The runtime: everything a process or listener thread runs with, built
 * once from one loaded configuration by {@linkcode buildRuntime} and frozen.
 * Building is validating: each part refuses a bad configuration with a
 * ConfigError naming file and line, so `smtpd config --check` (which builds
 * the same runtime without opening anything) reports every error `serve`
 * would report at start. The runtime owns the thread's mutable state too:
 * the log's stderr buffer, the queue store (queue IDs, record buffers, file
 * pools), the reusable line buffers, and the cells shared with the other
 * threads (pool refill lock, trigger clock, free space, memory budget).
 *
 * @module
 */

import { Cleanup } from "./cleanup/mod.ts";
import { type Config, type LoadedConfig } from "./config/mod.ts";
import {
  type LineSink,
  Logger,
  MailLog,
  parseSyslogServer,
  StderrSink,
  syslogSink,
} from "./log/mod.ts";
import {
  type CompiledPolicy,
  compileNetworks,
  compilePeerList,
  compilePolicy,
  denoResolver,
  inNetwork,
  type Network,
  parseIp,
  type PeerMatcher,
} from "./policy/mod.ts";
import {
  type FlushTrigger,
  qmgrFlushTrigger,
  TriggerClock,
  type Wakeup,
  wakeupTrigger,
} from "./flush/mod.ts";
import { PoolLock, type QueueName, QueueStore } from "./queue/mod.ts";
import { IoBuffers } from "./io/io_buffers.ts";
import { FreeSpace } from "./queue/free_space.ts";
import { type SessionDeps } from "./session/mod.ts";
import { automaticBudget, MemoryBudget } from "./session/memory_budget.ts";
import { type ListenAddress } from "./transport/tcp_listener.ts";
import { stderrIsClient } from "./transport/stdio.ts";
import { located, resolveOwner, validateSemantics } from "./runtime_checks.ts";
import { tlsContext, type TlsContexts } from "./tls_context.ts";
import { RateLimiter } from "./transport/rate_limiter.ts";
import { rateLimits } from "./transport/rate_limits.ts";

/**
 * This host's name from the system, or "localhost" when it cannot be had.
 * @returns the name
 */
export function systemHostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "localhost";
  }
}

/**
 * The logger: stderr (unless stderr is the client's socket in stand-alone
 * mode) and, with syslog_server, a syslog daemon (not for a check).
 * @param config the configuration
 * @param verbose -v count
 * @param mode what the runtime is for
 * @param stderr the thread's stderr sink
 * @returns the logger
 */
function makeLogger(config: Config, verbose: number, mode: Mode, stderr: StderrSink): Logger {
  // Under inetd and xinetd stderr is the client's socket: log lines must not go there
  // (syslog_server still gets them).
  const sinks: LineSink[] = mode === "stdin" && stderrIsClient() ? [] : [stderr.write];
  const target = config.syslog_server ? parseSyslogServer(config.syslog_server) : undefined;
  if (target && mode !== "check") sinks.push(syslogSink(target, config.syslog_facility));
  return new Logger({
    tag: `${config.syslog_name}/smtpd`,
    host: config.myhostname,
    verbosity: verbose,
    sinks,
  });
}

/** What a runtime is for: a check opens nothing (no syslog socket). */
export type Mode = "check" | "stdin" | "serve";

/** The cells a listener thread's runtime shares with the main thread's. */
export interface ThreadShares {
  /** The process's pool refill lock ({@linkcode PoolLock}). */
  readonly poolLock: SharedArrayBuffer;
  /** The process's last trigger writes ({@linkcode TriggerClock}). */
  readonly triggerClock: SharedArrayBuffer;
  /** The main thread's free-space figure ({@linkcode FreeSpace}). */
  readonly freeSpace: SharedArrayBuffer;
  /** The process's memory budget ({@linkcode MemoryBudget}). */
  readonly memory: SharedArrayBuffer;
  /** The per-client event rates (smtpd_client_*_rate_limit). */
  readonly rates: SharedArrayBuffer;
}

/** Options of {@linkcode buildRuntime}. */
export interface RuntimeOptions {
  /** -v count. */
  readonly verbose: number;
  readonly mode: Mode;
  /** A listener thread's: the main thread's shared cells, adopted. */
  readonly thread?: ThreadShares;
}

/** Everything one process or thread runs with (frozen). */
export interface Runtime {
  readonly loaded: LoadedConfig;
  readonly config: Config;
  readonly mode: Mode;
  /** smtpd_listen, parsed. */
  readonly listen: readonly ListenAddress[];
  /** The thread's stderr sink (flush it before the thread or process ends). */
  readonly stderr: StderrSink;
  readonly logger: Logger;
  readonly policy: CompiledPolicy;
  /** mail_owner resolved, or undefined. */
  readonly owner: { uid: number; gid: number } | undefined;
  /** The TLS contexts (STARTTLS, wrapper mode), or undefined when TLS is off. */
  readonly tls: TlsContexts | undefined;
  /** The limiter's view: whether a client is exempt (smtpd_client_event_limit_exceptions). */
  readonly limitExempt: (address: string) => boolean;
  readonly debugPeer: PeerMatcher;
  /** incoming (daemon) or maildrop (stand-alone). */
  readonly queue: QueueName;
  readonly store: QueueStore;
  /** Headers, Received:, Message-Id: and the rest, into the store's files. */
  readonly cleanup: Cleanup;
  /** Wakes qmgr (incoming) or pickup (maildrop) after a commit. */
  readonly wake: Wakeup;
  /** ETRN's flush trigger. */
  readonly flush: FlushTrigger;
  readonly space: FreeSpace;
  readonly memory: MemoryBudget;
  /** The thread's reusable line buffers. */
  readonly buffers: IoBuffers;
  /** What a listener thread adopts ({@linkcode RuntimeOptions.thread}). */
  readonly shares: ThreadShares;
  /** A session's dependencies, made of the above. */
  readonly deps: SessionDeps;
}

/**
 * Builds and checks everything a process or thread runs with, once: the
 * checks of the whole configuration, the logger, the policy, mail_owner,
 * the STARTTLS context (its files read once), the limiter's exceptions,
 * debug_peer_list, the queue store, the triggers, the free-space probe,
 * the memory budget and the session dependencies. Nothing is opened: no
 * listener, no queue file, no socket until a line is logged to syslog (and
 * for a check, no syslog sink at all).
 * @param loaded the loaded configuration
 * @param options verbosity, mode, and a listener thread's shared cells
 * @returns the runtime, frozen
 * @throws {ConfigError} naming file and line
 */
export async function buildRuntime(
  loaded: LoadedConfig,
  options: RuntimeOptions,
): Promise<Runtime> {
  const config = loaded.config;
  const { mode, thread } = options;
  const { listen, proxyNetworks } = validateSemantics(loaded);
  const stderr = new StderrSink();
  const logger = makeLogger(config, options.verbose, mode, stderr);
  const policy = compilePolicy(loaded, {
    dns: denoResolver({ server: config.dns_server, timeoutMs: config.dns_timeout * 1000 }),
    warn: (text) => logger.warning(text),
  });
  const owner = resolveOwner(loaded);
  const tls = await tlsContext(loaded);
  const exceptions: Network[] = located(
    loaded,
    "smtpd_client_event_limit_exceptions",
    () =>
      compileNetworks(
        config.smtpd_client_event_limit_exceptions,
        "smtpd_client_event_limit_exceptions",
      ),
  );
  const limitExempt = (address: string) => {
    const ip = parseIp(address);
    return ip !== undefined && exceptions.some((n) => inNetwork(n, ip));
  };
  const debugPeer = located(
    loaded,
    "debug_peer_list",
    () => compilePeerList(config.debug_peer_list, "debug_peer_list"),
  );
  const poolLock = new PoolLock(thread?.poolLock);
  const clock = new TriggerClock(thread?.triggerClock);
  const space = thread
    ? FreeSpace.reading(thread.freeSpace)
    : await FreeSpace.measuring(config.queue_directory);
  const memory = thread
    ? MemoryBudget.adopt(thread.memory)
    : MemoryBudget.create(config.smtpd_memory_budget || await automaticBudget());
  const queue: QueueName = mode === "stdin" ? "maildrop" : "incoming";
  const store = new QueueStore(config.queue_directory, {
    owner,
    pool: queue === "incoming",
    poolLock,
    onPoolError: (e) => logger.warning(`cannot pre-create queue files: ${e.message}`),
  });
  const wake = wakeupTrigger(
    `${config.queue_directory}/public/${queue === "incoming" ? "qmgr" : "pickup"}`,
    { clock },
  );
  const flush = qmgrFlushTrigger(config.queue_directory, { clock });
  const buffers = new IoBuffers();
  const rates = new RateLimiter({ timeUnit: config.anvil_rate_time_unit }, thread?.rates);
  const overRate = rateLimits(config, rates, limitExempt, logger);
  const cleanup = new Cleanup(store, config);
  const deps: SessionDeps = Object.freeze({
    config,
    policy,
    cleanup,
    log: new MailLog(logger),
    clock: () => new Date(),
    freeSpace: () => space.bytes(),
    sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
    queue,
    flush,
    debugPeer,
    queued: () => wake.wake(),
    // Stand-alone mode is never under stress; daemon mode's listener
    // decides per connection (startListening).
    stressed: () => false,
    memory,
    buffers,
    proxyNetworks,
    // As Postfix: no rate limits for stand-alone mode.
    ...(mode === "serve" ? { overRate } : {}),
  });
  return Object.freeze({
    loaded,
    config,
    mode,
    listen: Object.freeze(listen),
    stderr,
    logger,
    policy,
    owner,
    tls,
    limitExempt,
    debugPeer,
    queue,
    store,
    cleanup,
    wake,
    flush,
    space,
    memory,
    buffers,
    shares: Object.freeze({
      poolLock: poolLock.buffer,
      triggerClock: clock.buffer,
      freeSpace: space.shared,
      memory: memory.shared,
      rates: rates.shared,
    }),
    deps,
  });
}

/**
 * Why the queue directory cannot be used, in words an operator can act on.
 * @param dir the queue_directory
 * @param e the error
 * @returns the message
 */
export function queueDirError(dir: string, e: unknown): string {
  const why = e instanceof Deno.errors.NotCapable
    ? `it is outside the paths this program may write (${(e as Error).message}); ` +
      "smtpd permissions -c FILE prints the flags this configuration needs"
    : (e as Error).message;
  return `cannot prepare queue directory "${dir}": ${why}`;
}
