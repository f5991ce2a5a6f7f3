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
import { type Config, ConfigError, type LoadedConfig } from "./config/mod.ts";
import {
  type LineSink,
  Logger,
  MailLog,
  parseSyslogServer,
  StderrSink,
  StderrTurn,
  syslogSink,
} from "./log/mod.ts";
import {
  type CommandMatcher,
  compileBareNewlineExclusions,
  type CompiledPolicy,
  compileForbiddenCommands,
  compileMynetworks,
  compileNetworks,
  compilePeerList,
  compilePolicy,
  denoResolver,
  type DnsResolver,
  inNetwork,
  type Network,
  openTable,
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
import { dnsServers } from "./permissions/mod.ts";
import { stderrIsClient } from "./transport/stdio.ts";
import {
  checkQueueRoom,
  checkServeListen,
  configWarnings,
  located,
  resolveOwner,
  validateSemantics,
} from "./runtime_checks.ts";
import { secondChain, tlsContext, type TlsContexts, tlsNeededBy } from "./tls_context.ts";
import { RateLimiter } from "./transport/rate_limiter.ts";
import { DovecotAuthClient, saslSettings, sessionSasl } from "./sasl/mod.ts";
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
 * @returns the logger, and a wait for lines still on their way to syslog_server
 */
export function makeLogger(
  config: Config,
  verbose: number,
  mode: Mode,
  stderr: StderrSink,
): { logger: Logger; logSettled: (ms: number) => Promise<void> } {
  // Under inetd and xinetd stderr is the client's socket: log lines must not go there
  // (syslog_server still gets them).
  const sinks: LineSink[] = mode === "stdin" && stderrIsClient() ? [] : [stderr.write];
  const target = config.syslog_server ? parseSyslogServer(config.syslog_server) : undefined;
  const logger = (to: LineSink[]) =>
    new Logger({
      tag: `${config.syslog_name}/smtpd`,
      host: config.myhostname,
      verbosity: verbose,
      sinks: to,
      utf8: config.smtputf8_enable,
    });
  let logSettled = (_ms: number) => Promise.resolve();
  if (target && mode !== "check") {
    // Whether the syslog server can be reached is said where the operator
    // still sees it: on stderr only.
    const local = logger([...sinks]);
    const syslog = syslogSink(target, config.syslog_facility, (m) => local.warning(m));
    sinks.push(syslog);
    logSettled = (ms) => syslog.settled(ms);
  }
  const all = logger(sinks);
  stderr.warn = (m) => all.warning(m);
  return { logger: all, logSettled };
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
  /** The process's turn at stderr ({@linkcode StderrTurn}). */
  readonly stderrTurn: SharedArrayBuffer;
}

/** Options of {@linkcode buildRuntime}. */
export interface RuntimeOptions {
  /** -v count. */
  readonly verbose: number;
  readonly mode: Mode;
  /** A listener thread's: the main thread's shared cells, adopted. */
  readonly thread?: ThreadShares;
  /**
   * Stand-alone mode with a network client on stdin (tcpserver, systemd
   * Accept=yes, xinetd): AUTH is offered as in daemon mode. A local
   * submission (a pipe or terminal) has none.
   */
  readonly networkClient?: boolean;
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
  /**
   * Resolves when the lines logged so far have reached syslog_server (or
   * were dropped), or after `ms`: await it before the process ends.
   */
  readonly logSettled: (ms: number) => Promise<void>;
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
  const stderr = new StderrSink(new StderrTurn(thread?.stderrTurn));
  const { logger, logSettled } = makeLogger(config, options.verbose, mode, stderr);
  const policy = compilePolicy(loaded, {
    dns: resolverOf(loaded, (text) => logger.warning(text)),
    warn: (text) => logger.warning(text),
  });
  const owner = resolveOwner(loaded);
  const tls = await tlsContext(loaded, thread ? undefined : (text) => logger.warning(text));
  // Left at its default, `$mynetworks`, the list is mynetworks as
  // permit_mynetworks trusts it: with mynetworks unset, mynetworks_style's
  // interface networks too (as Postfix expands $mynetworks), which the
  // text of the default (mynetworks' own default) does not hold.
  const exceptions: Network[] = loaded.explicit.has("smtpd_client_event_limit_exceptions")
    ? located(
      loaded,
      "smtpd_client_event_limit_exceptions",
      () =>
        compileNetworks(
          config.smtpd_client_event_limit_exceptions,
          "smtpd_client_event_limit_exceptions",
        ),
    )
    : compileMynetworks(loaded);
  const limitExempt = (address: string) => {
    const ip = parseIp(address);
    return ip !== undefined && exceptions.some((n) => inNetwork(n, ip));
  };
  const debugPeer = located(
    loaded,
    "debug_peer_list",
    () => compilePeerList(config.debug_peer_list, "debug_peer_list", config),
  );
  const ehloDiscardFor = ehloDiscardLookup(loaded);
  const bareNewlineExcluded = compileBareNewlineExclusions(loaded);
  const forbiddenCommand = forbiddenCommands(loaded);
  const earlyTalk = namesUnauthPipelining(loaded);
  const poolLock = new PoolLock(thread?.poolLock);
  const clock = new TriggerClock(thread?.triggerClock);
  const space = thread
    ? FreeSpace.reading(thread.freeSpace)
    : await FreeSpace.measuring(config.queue_directory);
  const memory = thread
    ? MemoryBudget.adopt(thread.memory)
    : MemoryBudget.create(config.smtpd_memory_budget || await automaticBudget());
  // The measuring side (main thread, stand-alone process) only.
  if (space.statfs) checkQueueRoom(loaded, (text) => logger.warning(text), space.statfs);
  if (!thread) { for (const w of configWarnings(loaded)) logger.warning(w); }
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
  const cleanup = new Cleanup(store, config);
  // AUTH: daemon mode, and stand-alone mode with a network client (as a
  // Postfix smtpd behind inetd would, under master). Not for a local
  // submission: Postfix's stand-alone smtpd (sendmail -bs) has none.
  const { settings, exceptions: saslExceptions } = saslParts(loaded);
  const sasl = (mode === "serve" || (mode === "stdin" && options.networkClient)) &&
      settings.enabled
    ? sessionSasl(
      settings,
      new DovecotAuthClient({
        endpoint: settings.endpoint,
        service: settings.service,
        // Postfix's AUTH_TIMEOUT (10 s), not smtpd_timeout: every EHLO waits
        // for the server's mechanisms, so a hung server must cost little.
        timeoutMs: 10_000,
        onWarning: (text) => logger.warning(text),
      }),
      (name, address) => saslExceptions(name, address),
    )
    : undefined;
  const deps = sessionDeps({
    config,
    policy,
    cleanup,
    logger,
    space,
    queue,
    flush,
    debugPeer,
    bareNewlineExcluded,
    forbiddenCommand,
    earlyTalk,
    wake,
    memory,
    buffers,
    proxyNetworks,
    overRate: mode === "serve" ? rateLimits(config, rates, limitExempt, logger) : undefined,
    ehloDiscardFor,
    sasl,
  });
  return Object.freeze({
    loaded,
    config,
    mode,
    listen: Object.freeze(listen),
    stderr,
    logger,
    logSettled,
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
      stderrTurn: stderr.turn.buffer,
    }),
    deps,
  });
}

/** What a session's dependencies are made of. */
interface DepsParts {
  config: Config;
  policy: CompiledPolicy;
  cleanup: Cleanup;
  logger: Logger;
  space: FreeSpace;
  queue: QueueName;
  flush: FlushTrigger;
  debugPeer: PeerMatcher;
  /** smtpd_forbid_bare_newline_exclusions. */
  bareNewlineExcluded: PeerMatcher;
  forbiddenCommand: CommandMatcher;
  earlyTalk: boolean;
  wake: Wakeup;
  memory: MemoryBudget;
  buffers: IoBuffers;
  proxyNetworks: readonly Network[];
  /** Daemon mode's rate limits (stand-alone mode has none, as Postfix). */
  overRate: SessionDeps["overRate"] | undefined;
  /** smtpd_discard_ehlo_keyword_address_maps, when set. */
  ehloDiscardFor: SessionDeps["ehloDiscardFor"] | undefined;
  /** SMTP AUTH, when on (daemon mode). */
  sasl: SessionDeps["sasl"] | undefined;
}

/**
 * A session's dependencies, frozen.
 * @param p the parts
 * @returns the dependencies
 */
function sessionDeps(p: DepsParts): SessionDeps {
  const { space, wake } = p;
  return Object.freeze({
    config: p.config,
    policy: p.policy,
    cleanup: p.cleanup,
    log: new MailLog(p.logger),
    clock: () => new Date(),
    freeSpace: () => space.bytes(),
    sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
    queue: p.queue,
    flush: p.flush,
    debugPeer: p.debugPeer,
    bareNewlineExcluded: p.bareNewlineExcluded,
    forbiddenCommand: p.forbiddenCommand,
    earlyTalk: p.earlyTalk,
    queued: () => wake.wake(),
    // Stand-alone mode is never under stress; daemon mode's listener
    // decides per connection (startListening).
    stressed: () => false,
    memory: p.memory,
    buffers: p.buffers,
    proxyNetworks: p.proxyNetworks as Network[],
    ...(p.overRate ? { overRate: p.overRate } : {}),
    ...(p.ehloDiscardFor ? { ehloDiscardFor: p.ehloDiscardFor } : {}),
    ...(p.sasl ? { sasl: p.sasl } : {}),
  });
}

/**
 * Parameters a reload cannot change: the listeners, threads, queue, owner,
 * logging, the connection limiter and the shared counters are set up once
 * at start. A reload that changes one keeps its running value and names it.
 */
export const RESTART_ONLY = [
  "smtpd_listen",
  "smtpd_tls_wrappermode",
  "smtpd_tls_wrappermode_listen",
  "smtpd_tls_loopback_listen",
  "smtpd_listen_threads",
  "queue_directory",
  "mail_owner",
  "syslog_server",
  "syslog_facility",
  "syslog_name",
  "default_process_limit",
  "smtpd_client_connection_count_limit",
  "smtpd_stress_threshold",
  "smtpd_client_event_limit_exceptions",
  "smtpd_client_ipv4_prefix_length",
  "smtpd_client_ipv6_prefix_length",
  "smtpd_upstream_proxy_protocol",
  "smtpd_memory_budget",
  "anvil_rate_time_unit",
  // The authentication server's connection is opened once (runtime.ts);
  // the other smtpd_sasl_* settings are taken by a reload.
  "smtpd_sasl_auth_enable",
  "smtpd_sasl_type",
  "smtpd_sasl_path",
  "smtpd_sasl_service",
] as const satisfies readonly (keyof Config)[];

/** The certificate chains' parameters, which a reload may keep (rebuildRuntime). */
export const TLS_CHAINS = [
  "smtpd_tls_cert_file",
  "smtpd_tls_key_file",
  "smtpd_tls_eccert_file",
  "smtpd_tls_eckey_file",
] as const satisfies readonly (keyof Config)[];

/**
 * A running runtime rebuilt from a configuration re-read on reload: a new
 * policy (every table read and compiled again), STARTTLS context (the
 * certificate files read again), cleanup settings, debug peers and rate
 * limits, over the same logger, queue store, memory budget, buffers and
 * shared counters. A restart-only parameter that changed keeps its running
 * value; so does turning STARTTLS on or off (it changes the thread count).
 * @param old the running runtime
 * @param next the configuration re-read
 * @param warn whether to log what is taken though likely a mistake (the
 *   main thread's reload; a listener thread's passes false)
 * @returns the new runtime and the restart-only parameters left unchanged
 * @throws {ConfigError} naming file and line; the running runtime stays as it is
 */
export async function rebuildRuntime(
  old: Runtime,
  next: LoadedConfig,
  warn = true,
): Promise<{ runtime: Runtime; kept: string[] }> {
  const was = old.config;
  const kept: string[] = RESTART_ONLY.filter((k) =>
    JSON.stringify(was[k]) !== JSON.stringify(next.config[k])
  );
  const tlsOn = (c: Config) => c.smtpd_tls_security_level !== "none";
  if (tlsOn(was) !== tlsOn(next.config)) kept.push("smtpd_tls_security_level");
  // The running chains stay, and the parameters that changed are named,
  // when the TLS engine would need ports it opens at start only (the second,
  // ECDSA, chain added or removed), and when TLS stays on (STARTTLS or
  // wrapper mode, kept above) while the new text turns it off: that text
  // may no longer name a certificate. A renewed chain is taken.
  const chainsKept =
    (was.smtpd_tls_loopback_listen && secondChain(was) !== secondChain(next.config)) ||
    (tlsNeededBy(was) !== undefined && tlsNeededBy(next.config) === undefined);
  if (chainsKept) kept.push(...TLS_CHAINS.filter((k) => was[k] !== next.config[k]));
  // A restart-only parameter keeps its running value, but its new value is
  // what the next start reads: one that would stop that start refuses the
  // reload now, as any other bad value does.
  if (kept.length > 0) await checkRestartOnly(next, kept);
  const config: Config = Object.freeze({
    ...next.config,
    ...Object.fromEntries(kept.map((k) => [k, was[k as keyof Config]])),
  });
  const loaded: LoadedConfig = Object.freeze({
    config,
    explicit: next.explicit,
    file: next.file,
    classes: next.classes,
    text: next.text,
    lineOf: (key: string, item?: string) => next.lineOf(key, item),
    placeOf: (key: string, item?: string) => next.placeOf(key, item),
  });
  const { proxyNetworks } = validateSemantics(loaded);
  const { logger } = old;
  if (old.space.statfs) checkQueueRoom(loaded, (text) => logger.warning(text), old.space.statfs);
  const policy = compilePolicy(loaded, {
    dns: resolverOf(loaded, (text) => logger.warning(text)),
    warn: (text) => logger.warning(text),
  });
  const tls = await tlsContext(loaded, warn ? (text) => logger.warning(text) : undefined);
  const debugPeer = located(
    loaded,
    "debug_peer_list",
    () => compilePeerList(config.debug_peer_list, "debug_peer_list", config),
  );
  const cleanup = new Cleanup(old.store, config);
  // The same counters: a reload resets no client's rate.
  const rates = new RateLimiter({ timeUnit: config.anvil_rate_time_unit }, old.shares.rates);
  const deps = sessionDeps({
    ...old,
    config,
    policy,
    cleanup,
    debugPeer,
    bareNewlineExcluded: compileBareNewlineExclusions(loaded),
    forbiddenCommand: forbiddenCommands(loaded),
    earlyTalk: namesUnauthPipelining(loaded),
    proxyNetworks,
    overRate: old.mode === "serve" ? rateLimits(config, rates, old.limitExempt, logger) : undefined,
    ehloDiscardFor: ehloDiscardLookup(loaded),
    // The authentication server's connection stays (smtpd_sasl_auth_enable,
    // _path and _service are restart-only); the rest is the new configuration's.
    sasl: reloadedSasl(loaded, old.deps.sasl?.server),
  });
  const runtime: Runtime = Object.freeze({
    ...old,
    loaded,
    config,
    policy,
    tls,
    debugPeer,
    cleanup,
    deps,
  });
  return { runtime, kept };
}

/**
 * AUTH's settings and smtpd_sasl_exceptions_networks, checked and compiled
 * for a configuration, at start and at each reload; the exceptions' tables
 * are retired with the configuration (a reload compiles them again).
 * @param loaded the configuration
 * @returns the settings and the exceptions' matcher
 * @throws {ConfigError} with file and line for a bad setting
 */
function saslParts(loaded: LoadedConfig) {
  const { config } = loaded;
  const settings = saslSettings(config, { file: loaded.file, lineOf: loaded.lineOf });
  const exceptions = located(
    loaded,
    "smtpd_sasl_exceptions_networks",
    () =>
      compilePeerList(
        config.smtpd_sasl_exceptions_networks,
        "smtpd_sasl_exceptions_networks",
        config,
      ),
  );
  return { settings, exceptions };
}

/**
 * The SASL view of sessions after a reload: the running server connection,
 * with the new security options, exceptions, response limit and header.
 * The settings are checked as at start also when AUTH is off.
 * @param loaded the reloaded configuration (restart-only values pinned)
 * @param server the running authentication server's client, if AUTH is on
 * @returns the sessions' SASL dependencies (undefined without a server)
 * @throws {ConfigError} with file and line for a bad setting
 */
function reloadedSasl(
  loaded: LoadedConfig,
  server: NonNullable<SessionDeps["sasl"]>["server"] | undefined,
): SessionDeps["sasl"] | undefined {
  const { settings, exceptions } = saslParts(loaded);
  if (server === undefined) return undefined;
  return sessionSasl(settings, server, (name, address) => exceptions(name, address));
}

/**
 * The start's checks of the parameters a reload keeps (addresses, networks,
 * mail_owner, the TLS settings), run on the new configuration as written.
 * @param next the configuration read by the reload
 * @param kept the restart-only parameters that changed
 * @throws {ConfigError} with file and line, as the start would
 */
async function checkRestartOnly(next: LoadedConfig, kept: readonly string[]): Promise<void> {
  validateSemantics(next);
  checkServeListen(next);
  located(
    next,
    "smtpd_client_event_limit_exceptions",
    () =>
      compileNetworks(
        next.config.smtpd_client_event_limit_exceptions,
        "smtpd_client_event_limit_exceptions",
      ),
  );
  resolveOwner(next);
  if (kept.some((k) => k.startsWith("smtpd_tls_") || k === "smtpd_listen_threads")) {
    await tlsContext(next);
  }
  if (kept.some((k) => k.startsWith("smtpd_sasl_"))) {
    saslSettings(next.config, { file: next.file, lineOf: next.lineOf });
  }
}

/**
 * Why the queue directory cannot be used, in words an operator can act on,
 * after the place that set it (file and line, or the `-o`).
 * @param loaded the configuration
 * @param e the error
 * @returns the message
 */
export function queueDirError(loaded: LoadedConfig, e: unknown): string {
  const dir = loaded.config.queue_directory;
  const why = e instanceof Deno.errors.NotCapable
    ? `it is outside the paths this program may write (${(e as Error).message}); ` +
      "smtpd permissions -c FILE prints the flags this configuration needs"
    : (e as Error).message;
  return `${loaded.placeOf("queue_directory")}cannot prepare queue directory "${dir}": ${why}`;
}

/**
 * Whether a restriction list or class names reject_unauth_pipelining. Only
 * then does a session look for a client that talks before its greeting
 * (Postfix's "improper command pipelining after CONNECT"): looking delays
 * every greeting by a turn of the event loop, about 7% of the CPU of a
 * one-message connection.
 * @param loaded the configuration
 * @returns true when some list names it
 */
function namesUnauthPipelining(loaded: LoadedConfig): boolean {
  const lists: unknown[] = [
    ...Object.entries(loaded.config).filter(([k]) => k.endsWith("_restrictions")).map(([, v]) => v),
    ...loaded.classes.values(),
  ];
  return lists.some((list) =>
    Array.isArray(list) &&
    list.some((r) => typeof r === "string" && r.trim().toLowerCase() === "reject_unauth_pipelining")
  );
}

/**
 * smtpd_forbidden_commands, its tables opened at start.
 * @param loaded the configuration
 * @returns the matcher
 * @throws {ConfigError} for an element we do not support or a table that cannot be opened (with file and line)
 */
function forbiddenCommands(loaded: LoadedConfig): CommandMatcher {
  const key = "smtpd_forbidden_commands";
  return located(
    loaded,
    key,
    () => compileForbiddenCommands(loaded.config.smtpd_forbidden_commands, loaded.config),
  );
}

/**
 * smtpd_discard_ehlo_keyword_address_maps, opened at start: the first
 * table that has the client address gives its keyword list.
 * @param loaded the configuration
 * @returns the lookup, or undefined when no tables are named
 * @throws {ConfigError} for a table that cannot be opened (with file and line)
 */
function ehloDiscardLookup(
  loaded: LoadedConfig,
): ((address: string) => Promise<string | undefined>) | undefined {
  const config = loaded.config;
  const specs = config.smtpd_discard_ehlo_keyword_address_maps;
  if (specs.length === 0) return undefined;
  const tables = located(
    loaded,
    "smtpd_discard_ehlo_keyword_address_maps",
    () =>
      specs.map((spec) => {
        try {
          return openTable(spec, { queueDirectory: config.queue_directory, owner: config });
        } catch (err) {
          const key = "smtpd_discard_ehlo_keyword_address_maps";
          throw new ConfigError(`${key}: ${(err as Error).message}`, { key });
        }
      }),
  );
  return async (address) => {
    for (const t of tables) {
      const r = await t.lookup(address);
      if (r.kind === "found") return r.value;
      if (r.kind === "tempfail") throw new Error(`${t.name}: ${r.reason}`);
    }
    return undefined;
  };
}

/**
 * The resolver of a configuration: dns_server, else the system's, whose
 * first name server of resolv.conf is the one a "not found" is checked
 * with for SERVFAIL (policy/resolver.ts).
 */
function resolverOf(loaded: LoadedConfig, warn: (text: string) => void): DnsResolver {
  const c = loaded.config;
  const readGranted = (path: string): string | undefined => {
    if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") return undefined;
    try {
      return Deno.readTextFileSync(path);
    } catch {
      return undefined;
    }
  };
  const systemServer = c.dns_server ? undefined : dnsServers(loaded, readGranted)[0];
  return denoResolver({
    server: c.dns_server,
    timeoutMs: c.dns_timeout * 1000,
    systemServer,
    warn,
  });
}
