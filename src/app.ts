/**
 * The composition root: loads the configuration, builds the logger,
 * policy, queue and cleanup writer, and starts daemon or stand-alone mode.
 * This is the only place that builds real dependencies.
 *
 * @module
 */

import type { SecureContext } from "node:tls";
import { Cleanup } from "./cleanup/mod.ts";
import type { CliOptions } from "./cli.ts";
import {
  type Config,
  ConfigError,
  loadConfig,
  type LoadedConfig,
  PARAMS,
  toToml,
} from "./config/mod.ts";
import {
  type LineSink,
  Logger,
  MailLog,
  parseSyslogServer,
  stderrSink,
  syslogSink,
} from "./log/mod.ts";
import {
  auditLists,
  type CompiledPolicy,
  compileNetworks,
  compilePeerList,
  compilePolicy,
  denoResolver,
  inNetwork,
  parseDnsServer,
  parseIp,
} from "./policy/mod.ts";
import { explain, formatExplanation } from "./explain.ts";
import { qmgrFlushTrigger, TriggerClock, type Wakeup, wakeupTrigger } from "./flush/mod.ts";
import { findQueueFile, listQueue, PoolLock, QueueStore, recoverQueue } from "./queue/mod.ts";
import { FreeSpace } from "./queue/free_space.ts";
import { runSession, type SessionDeps } from "./session/mod.ts";
import { automaticBudget, MemoryBudget } from "./session/memory_budget.ts";
import {
  type ListenAddress,
  parseListenAddress,
  serveTcp,
  type TcpServer,
} from "./transport/tcp_listener.ts";
import type { Transport } from "./transport/types.ts";
import {
  peerFromEnv,
  standAlonePeer,
  stderrIsClient,
  stdinKind,
  stdioTransport,
} from "./transport/stdio.ts";
import { VERSION } from "./version.ts";
import { ConnectionLedger, ConnectionLimiter } from "./transport/limits.ts";
import { type SupervisedThread, ThreadSupervisor } from "./daemon/thread_supervisor.ts";
import { writeAll } from "./io/reply_writer.ts";
import { closing, formatReply, type Reply } from "./protocol/reply.ts";
import { parseIpAddress } from "./protocol/ip.ts";

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
  const at = (key: string) => ({ file: loaded.file, line: loaded.lineOf(key), key });
  for (const key of ["mynetworks", "smtpd_upstream_proxy_networks"] as const) {
    try {
      compileNetworks(c[key], key);
    } catch (e) {
      if (e instanceof ConfigError) throw new ConfigError(e.message, at(key));
      throw e;
    }
  }
  // One IP parser (protocol/ip.ts): an address written here that it refuses
  // (e.g. "127.0.0.010", octal to the C library) stops the start.
  for (const h of c.inet_interfaces) {
    if (looksLikeIp(h) && parseIpAddress(h.replace(/^\[(.*)\]$/, "$1")) === undefined) {
      throw new ConfigError(`inet_interfaces: cannot parse address "${h}"`, at("inet_interfaces"));
    }
  }
  if (c.syslog_server && !parseSyslogServer(c.syslog_server)) {
    throw new ConfigError(
      `syslog_server: cannot parse "${c.syslog_server}": expected udp://host:port or tcp://host:port`,
      at("syslog_server"),
    );
  }
  if (c.dns_server && !parseDnsServer(c.dns_server)) {
    throw new ConfigError(
      `dns_server: cannot parse "${c.dns_server}": expected host:port`,
      at("dns_server"),
    );
  }
  return c.smtpd_listen.map((a) => {
    const parsed = parseListenAddress(a);
    if (!parsed || (looksLikeIp(parsed.hostname) && !parseIpAddress(parsed.hostname))) {
      throw new ConfigError(
        `smtpd_listen: cannot parse "${a}": expected host:port`,
        at("smtpd_listen"),
      );
    }
    return parsed;
  });
}

/** Whether configuration text is meant as an IP address rather than a host name. */
function looksLikeIp(text: string): boolean {
  return /^\[.*\]$/.test(text) || text.includes(":") || /^[0-9.]+$/.test(text);
}

/**
 * Resolves mail_owner: "uid:gid", or a user name looked up in /etc/passwd.
 * @param loaded the configuration
 * @returns the owner, or undefined when mail_owner is empty
 * @throws {ConfigError} when the user cannot be resolved
 */
export function resolveOwner(loaded: LoadedConfig): { uid: number; gid: number } | undefined {
  const spec = loaded.config.mail_owner.trim();
  if (spec === "") return undefined;
  const numeric = /^(\d+):(\d+)$/.exec(spec);
  if (numeric) return { uid: Number(numeric[1]), gid: Number(numeric[2]) };
  const where = { file: loaded.file, line: loaded.lineOf("mail_owner"), key: "mail_owner" };
  let passwd: string;
  try {
    passwd = Deno.readTextFileSync("/etc/passwd");
  } catch (e) {
    throw new ConfigError(
      `mail_owner: cannot look up user "${spec}" (${(e as Error).name}): give "uid:gid" instead`,
      where,
    );
  }
  for (const line of passwd.split("\n")) {
    const f = line.split(":");
    if (f[0] === spec && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  throw new ConfigError(`mail_owner: no such user "${spec}"`, where);
}

/**
 * Builds the STARTTLS context from smtpd_tls_cert_file and smtpd_tls_key_file.
 * @param loaded the configuration
 * @returns the context, or undefined when TLS is off
 * @throws {ConfigError} for missing or unreadable files, or a bad key/certificate pair
 */
export async function tlsContext(loaded: LoadedConfig): Promise<SecureContext | undefined> {
  const c = loaded.config;
  if (c.smtpd_tls_security_level === "none") return undefined;
  const read = (key: "smtpd_tls_cert_file" | "smtpd_tls_key_file"): string => {
    const where = {
      file: loaded.file,
      line: loaded.lineOf(key) ?? loaded.lineOf("smtpd_tls_security_level"),
      key,
    };
    if (!c[key]) {
      throw new ConfigError(
        `${key} is required when smtpd_tls_security_level is "${c.smtpd_tls_security_level}"`,
        where,
      );
    }
    try {
      return Deno.readTextFileSync(c[key]);
    } catch (e) {
      const why = e instanceof Deno.errors.NotCapable
        ? "outside the paths this program may read"
        : (e as Error).message;
      throw new ConfigError(`${key}: cannot read "${c[key]}": ${why}`, where);
    }
  };
  const cert = read("smtpd_tls_cert_file");
  const key = read("smtpd_tls_key_file");
  // node:tls is loaded only when STARTTLS is on: it costs every isolate memory.
  const { createSecureContext } = await import("node:tls");
  try {
    return createSecureContext({ cert, key, minVersion: "TLSv1.2" });
  } catch (e) {
    throw new ConfigError(`smtpd_tls_cert_file/smtpd_tls_key_file: ${(e as Error).message}`, {
      file: loaded.file,
      line: loaded.lineOf("smtpd_tls_cert_file"),
    });
  }
}

function makeLogger(config: Config, verbose: number, standAlone = false): Logger {
  // Under inetd and xinetd stderr is the client's socket: log lines must not go there
  // (syslog_server still gets them).
  const sinks: LineSink[] = standAlone && stderrIsClient() ? [] : [stderrSink];
  const target = config.syslog_server ? parseSyslogServer(config.syslog_server) : undefined;
  if (target) sinks.push(syslogSink(target, config.syslog_facility));
  return new Logger({
    tag: `${config.syslog_name}/smtpd`,
    host: config.myhostname,
    verbosity: verbose,
    sinks,
  });
}

/**
 * Compiles the restriction lists with the real resolver.
 * @param loaded the configuration
 * @param logger where start-up and evaluation warnings go
 * @returns the policy
 * @throws {ConfigError}
 */
function buildPolicy(loaded: LoadedConfig, logger: Logger): CompiledPolicy {
  const c = loaded.config;
  return compilePolicy(loaded, {
    dns: denoResolver({ server: c.dns_server, timeoutMs: c.dns_timeout * 1000 }),
    warn: (text) => logger.warning(text),
  });
}

function buildDeps(
  loaded: LoadedConfig,
  policy: CompiledPolicy,
  logger: Logger,
  queue: "incoming" | "maildrop",
  space: FreeSpace,
  memory: MemoryBudget,
): {
  deps: SessionDeps;
  store: QueueStore;
  wake: Wakeup;
  space: FreeSpace;
} {
  const config = loaded.config;
  const store = new QueueStore(config.queue_directory, {
    owner: resolveOwner(loaded),
    pool: queue === "incoming",
    onPoolError: (e) => logger.warning(`cannot pre-create queue files: ${e.message}`),
  });
  const wake = wakeupTrigger(
    `${config.queue_directory}/public/${queue === "incoming" ? "qmgr" : "pickup"}`,
  );
  const deps: SessionDeps = {
    config,
    policy,
    cleanup: new Cleanup(store, config),
    log: new MailLog(logger),
    clock: () => new Date(),
    freeSpace: () => space.bytes(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    queue,
    flush: qmgrFlushTrigger(config.queue_directory),
    debugPeer: compilePeerList(config.debug_peer_list, "debug_peer_list"),
    queued: () => wake.wake(),
    // Stand-alone mode is never under stress; daemon mode's listener
    // decides per connection (startListening).
    stressed: () => false,
    memory,
  };
  return { deps, store, wake, space };
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
  // Last line of defence: no stray asynchronous error may end the server.
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    err(`smtpd: error: unhandled rejection: ${e.reason?.stack ?? e.reason}`);
  });
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    err(`smtpd: error: uncaught exception: ${e.error?.stack ?? e.message}`);
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
  let loaded: LoadedConfig;
  let listen: ListenAddress[];
  let policy: CompiledPolicy;
  let logger: Logger;
  try {
    loaded = await load(opts);
    listen = validateSemantics(loaded);
    logger = makeLogger(loaded.config, opts.verbose, opts.kind === "stdin");
    policy = buildPolicy(loaded, logger);
    resolveOwner(loaded);
    await tlsContext(loaded);
    compilePeerList(loaded.config.debug_peer_list, "debug_peer_list");
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
        const warnings = auditLists(loaded);
        for (const w of warnings) err(`smtpd: warning: ${w}`);
        out(
          `${loaded.file}: configuration OK${
            warnings.length ? ` (${warnings.length} warnings)` : ""
          }`,
        );
        return 0;
      }
      const names = (Object.keys(PARAMS) as (keyof typeof PARAMS)[])
        .filter((n) => !opts.nonDefault || loaded.explicit.has(n))
        .sort();
      out(names.map((n) => `${n} = ${toToml(config[n])}`).join("\n"));
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
        },
        { config, policy, dns: policy.sessionResolver() },
      );
      out(x.json ? JSON.stringify(result, null, 2) : formatExplanation(result));
      return 0;
    }
    case "queue":
      return await runQueue(config, opts.queueArgs, opts.explain.json);
    case "stdin":
      return await runStdin(
        buildDeps(
          loaded,
          policy,
          logger,
          "maildrop",
          await FreeSpace.measuring(config.queue_directory),
          await memoryBudget(config),
        ),
      );
    case "serve":
      return await runServe(
        buildDeps(
          loaded,
          policy,
          logger,
          "incoming",
          await FreeSpace.measuring(config.queue_directory),
          await memoryBudget(config),
        ),
        listen,
        { file: opts.configFile, overrides: opts.overrides, verbose: opts.verbose },
        await tlsContext(loaded),
      );
  }
}

/**
 * The process's memory budget: smtpd_memory_budget, or when 0 a share of
 * V8's heap limit (measured once, here on the main thread).
 * @param config the configuration
 * @returns the budget, shared with listener threads
 */
async function memoryBudget(config: Config): Promise<MemoryBudget> {
  return MemoryBudget.create(config.smtpd_memory_budget || await automaticBudget());
}

/**
 * Sets aside leftovers of our interrupted writes and logs each one. Files
 * this program did not create (Postfix's, in a shared queue) are never
 * touched, however old: see src/queue/recover.ts.
 * @param config the configuration
 * @param logger where to log
 */
async function recover(config: Config, logger: Logger): Promise<void> {
  try {
    const found = await recoverQueue(config.queue_directory);
    for (const r of found) {
      logger.warning(
        `${r.queue}/${r.name}: ${r.reason}: set aside in corrupt/ (interrupted write)`,
      );
    }
  } catch (e) {
    logger.warning(`queue recovery failed: ${(e as Error).message}`);
  }
}

/**
 * Sends a refusal and closes, without a session: one write, bounded to
 * half a second (a 421 fits any fresh socket's buffer), no DNS lookup.
 * @param t the connection
 * @param bytes the formatted reply
 */
async function refuseConnection(t: Transport, bytes: Uint8Array): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      writeAll(t, bytes),
      new Promise((r) => (timer = setTimeout(r, 500))),
    ]);
  } catch {
    /* gone */
  } finally {
    clearTimeout(timer);
    t.close();
  }
}

function queueDirError(dir: string, e: unknown): string {
  const why = e instanceof Deno.errors.NotCapable
    ? `it is outside the paths this program may write (${(e as Error).message}); ` +
      "build or run with --allow-write for it (scripts/permissions.ts, deno task compile --write)"
    : (e as Error).message;
  return `cannot prepare queue directory "${dir}": ${why}`;
}

async function runQueue(config: Config, args: string[], json: boolean): Promise<number> {
  if (args[0] === "list") {
    const entries = await listQueue(config.queue_directory);
    if (json) {
      out(JSON.stringify(entries, null, 2));
      return 0;
    }
    const rows = entries.map((e) =>
      [
        `${e.id.padEnd(16)} ${String(e.size).padStart(8)}  ${e.arrival ?? "-"}  ${
          e.queue.padEnd(9)
        } ${e.sender === "" ? "MAILER-DAEMON" : e.sender ?? "-"}${
          e.complete ? "" : `  (${e.problem})`
        }`,
        ...e.recipients.map((r) => `${" ".repeat(63)}${r}`),
      ].join("\n")
    );
    out(rows.length ? rows.join("\n") + `\n-- ${entries.length} files` : "Mail queue is empty");
    return 0;
  }
  const e = await findQueueFile(config.queue_directory, args[1] ?? "");
  if (!e) {
    err(`smtpd: queue cat: no queue file "${args[1]}"`);
    return 1;
  }
  if (json) {
    out(JSON.stringify(e, null, 2));
    return 0;
  }
  out([
    `*** ENVELOPE ${e.queue}/${e.id} (${e.size} bytes, ${e.complete ? "complete" : e.problem}) ***`,
    `arrival: ${e.arrival ?? "-"}`,
    `sender: ${e.sender ?? "-"}`,
    ...e.recipients.map((r) => `recipient: ${r}`),
    ...Object.entries(e.attributes).map(([k, v]) => `attribute: ${k}=${v}`),
    "*** CONTENT ***",
    (e.content ?? "").replace(/\n$/, ""),
    "*** END ***",
  ].join("\n"));
  return e.complete ? 0 : 1;
}

async function runStdin(
  { deps, store, wake }: { deps: SessionDeps; store: QueueStore; wake: Wakeup },
): Promise<number> {
  try {
    await store.prepare();
  } catch (e) {
    deps.log.logger.error(queueDirError(deps.config.queue_directory, e));
    return 1;
  }
  const who = standAlonePeer(
    peerFromEnv((name) => {
      try {
        return Deno.env.get(name);
      } catch {
        return undefined;
      }
    }),
    stdinKind(),
  );
  if (who.kind === "refused") {
    // Fail closed: a socket without a known peer could be anyone on the network.
    deps.log.logger.error(
      `stand-alone mode: refusing the session: ${who.reason}. A network connection on stdin ` +
        "needs its client address in the environment: run smtpd stdin under tcpserver " +
        "(TCPREMOTEIP), a systemd socket with Accept=yes (REMOTE_ADDR) or xinetd (REMOTE_HOST); " +
        "a pipe or terminal on stdin is a local submission",
    );
    const t = stdioTransport({ kind: "local" });
    const text = closing(deps.config.myhostname, "3.0", "Error: server configuration error");
    try {
      await Promise.race([
        writeAll(t, encoder.encode(formatReply(text))),
        new Promise((r) => setTimeout(r, 1000)),
      ]);
    } catch { /* gone */ }
    t.close();
    return 1;
  }
  await runSession(stdioTransport(who.peer), deps);
  await wake.settled();
  return 0;
}

/** What a listener thread needs to serve. */
interface ListenerSetup {
  deps: SessionDeps;
  /** This thread's queue store (told when a session is alone on the thread). */
  store: QueueStore;
  listen: ListenAddress[];
  tls: SecureContext | undefined;
  /** Shared connection counters (from the main thread's limiter). */
  shared?: SharedArrayBuffer;
  /** This thread's own share of them (a listener thread's, released if it dies). */
  ledger?: ConnectionLedger;
  reusePort: boolean;
}

/** Refusals at the global cap are logged at most this often (per thread). */
const REFUSAL_LOG_MS = 10_000;

/**
 * Starts one thread's listeners with its connection limiter. The global
 * cap (default_process_limit) is applied at accept: a connection over it
 * gets 421 at once and costs no session, no DNS lookup. Near the cap
 * (smtpd_stress_threshold) new sessions get the stress limits. The
 * per-client cap is applied to the client's address at accept or, behind
 * a PROXY balancer, to the address in the header (through
 * {@linkcode SessionDeps.admitClient}).
 * @param setup dependencies, addresses, TLS, shared counters
 * @returns the server and its limiter
 */
export async function startListening(
  setup: ListenerSetup,
): Promise<{ server: TcpServer; limiter: ConnectionLimiter }> {
  const { deps } = setup;
  const config = deps.config;
  const logger = deps.log.logger;
  const nets = compileNetworks(
    config.smtpd_client_event_limit_exceptions,
    "smtpd_client_event_limit_exceptions",
  );
  const limit = config.default_process_limit;
  // A load that hovers near the threshold enters and leaves stress often:
  // each direction is logged at most once every 10 s, with the count.
  const stressChanges = [0, 0];
  const stressLogged = [-Infinity, -Infinity];
  const stressLog = (stressed: boolean, sessions: number) => {
    const i = stressed ? 1 : 0;
    stressChanges[i]!++;
    const now = Date.now();
    if (now - stressLogged[i]! < REFUSAL_LOG_MS) return;
    const n = stressChanges[i]!;
    const more = n > 1 ? ` (${n - 1} more times since the last report)` : "";
    if (stressed) {
      logger.warning(
        `service under stress: ${sessions} of ${limit} sessions (smtpd_stress_threshold ` +
          `${config.smtpd_stress_threshold}%): new sessions get the smtpd_stress_* limits${more}`,
      );
    } else {
      logger.info(`service no longer under stress: ${sessions} of ${limit} sessions${more}`);
    }
    stressChanges[i] = 0;
    stressLogged[i] = now;
  };
  const limiter = new ConnectionLimiter({
    global: limit,
    perClient: config.smtpd_client_connection_count_limit,
    exempt: (address) => {
      const ip = parseIp(address);
      return ip !== undefined && nets.some((n) => inNetwork(n, ip));
    },
    stressPercent: config.smtpd_stress_threshold,
    onStress: (stressed, sessions) => stressLog(stressed, sessions),
  }, setup.shared);
  const busy = new TextEncoder().encode(
    formatReply(closing(config.myhostname, "3.2", "Error: too many connections, try again later")),
  );
  const perClient = (address: string): Reply => {
    logger.warning(
      `Connection concurrency limit exceeded: ${config.smtpd_client_connection_count_limit} from [${address}]`,
    );
    return closing(config.myhostname, "7.0", `Error: too many connections from ${address}`);
  };
  // Refusals at the cap come in floods: one log line, then a count now and then.
  let refused = 0;
  let refusalLogged = -Infinity;
  const refuseBusy = (t: Transport, address: string): Promise<void> => {
    refused++;
    const now = Date.now();
    if (now - refusalLogged >= REFUSAL_LOG_MS) {
      logger.warning(
        `Connection limit exceeded: ${limit} sessions; refused [${address}]` +
          (refused > 1 ? ` and ${refused - 1} more since the last report` : ""),
      );
      refused = 0;
      refusalLogged = now;
    }
    return refuseConnection(t, busy);
  };
  // Idle sessions closed to make room: one line, then a count now and then.
  let evicted = 0;
  let evictionLogged = -Infinity;
  const logEviction = (victim: { address: string; idleMs: number }, why: string) => {
    evicted++;
    const now = Date.now();
    if (now - evictionLogged < REFUSAL_LOG_MS) return;
    logger.warning(
      `closed the idle session of [${victim.address}] (silent ${victim.idleMs} ms) to make ` +
        `room: ${why}` + (evicted > 1 ? ` (${evicted - 1} more since the last report)` : ""),
    );
    evicted = 0;
    evictionLogged = now;
  };
  // Set once listening; sessions that arrive before cannot evict anyone.
  const listening: { server?: TcpServer } = {};
  const proxied = config.smtpd_upstream_proxy_protocol === "haproxy";
  const stressedDeps: SessionDeps = { ...deps, stressed: () => true };
  const ledger = setup.ledger;
  // Sessions of this thread: a lone one may fsync without a hand-off.
  let active = 0;
  setup.store.inlineSync = () => active === 1;
  const onTransport = async (t: Transport) => {
    const address = t.peer.kind === "network" ? t.peer.address : "127.0.0.1";
    // The address holding a per-client slot, released when the session ends.
    let counted: string | undefined;
    if (limiter.enter() === "global") {
      // At the cap, a session that has long waited for its client gives its
      // place to the new one; without one, the new client is refused. A
      // client already at its own limit makes no room for itself.
      if (!proxied && !limiter.enterClient(address)) {
        return await refuseConnection(t, encodeReply(perClient(address)));
      }
      if (!proxied) counted = address;
      const victim = listening.server?.evictIdle();
      if (!victim) {
        if (counted !== undefined) limiter.leaveClient(counted);
        return await refuseBusy(t, address);
      }
      logEviction(victim, `${limit} sessions (default_process_limit)`);
      limiter.enterInPlaceOfIdle();
    }
    ledger?.entered();
    if (counted !== undefined) ledger?.clientEntered(limiter.clientSlot(counted));
    const stressed = limiter.stressed;
    const admitClient = (client: string): Reply | undefined => {
      if (!limiter.enterClient(client)) return perClient(client);
      ledger?.clientEntered(limiter.clientSlot(client));
      counted = client;
      return undefined;
    };
    active++;
    try {
      if (proxied) {
        // The client is known only after the PROXY header: the session asks.
        await runSession(t, { ...deps, stressed: () => stressed, admitClient });
      } else {
        const refusal = counted === undefined ? admitClient(address) : undefined;
        if (refusal) return await refuseConnection(t, encodeReply(refusal));
        await runSession(t, stressed ? stressedDeps : deps);
      }
    } catch (e) {
      logger.error(`session failed: ${(e as Error).message}`);
    } finally {
      active--;
      if (counted !== undefined) {
        limiter.leaveClient(counted);
        ledger?.clientLeft(limiter.clientSlot(counted));
      }
      limiter.leave();
      ledger?.left();
    }
  };
  const server = await serveTcp(setup.listen, onTransport, {
    reusePort: setup.reusePort,
    log: logger,
    farewell: encodeReply(
      closing(config.myhostname, "3.2", "Error: idle session closed to make room for others"),
    ),
    onEvict: (victim, why) => logEviction(victim, why),
    ...(setup.tls ? { tls: setup.tls } : {}),
  });
  listening.server = server;
  setup.store.makeRoom = () => {
    const victim = server.evictIdleNow();
    if (victim) logEviction(victim, "no descriptor for a queue file");
    return victim !== undefined;
  };
  return { server, limiter };
}

function encodeReply(r: Reply): Uint8Array {
  return new TextEncoder().encode(formatReply(r));
}

/**
 * How many listener threads to run: smtpd_listen_threads, or one per two
 * CPUs (at least 1, at most 8) when it is 0. A listener thread's sessions
 * keep more than its own core busy: the kernel's socket and file work and
 * the fsyncs and creates on Deno's blocking pool run beside it. On 2 CPUs
 * one thread takes 4 KiB and 1 MiB messages at 2-3x Postfix's rate, with
 * 17 MiB less memory than two (BENCHMARKS.md, sessions 5 and 6). TLS
 * listeners run in one thread (node:net has no SO_REUSEPORT here).
 * @param config the configuration
 * @param tls whether STARTTLS is on
 * @returns the thread count
 */
export function listenerThreads(config: Config, tls: boolean): number {
  if (tls) return 1;
  const n = config.smtpd_listen_threads;
  return n > 0 ? n : Math.max(1, Math.min(8, Math.floor((navigator.hardwareConcurrency || 1) / 2)));
}

async function runServe(
  { deps, store, space }: { deps: SessionDeps; store: QueueStore; space: FreeSpace },
  listen: ListenAddress[],
  opts: { file: string; overrides: string[]; verbose: number },
  tls: SecureContext | undefined,
): Promise<number> {
  const config = deps.config;
  const logger = deps.log.logger;
  try {
    await store.prepare();
  } catch (e) {
    logger.error(queueDirError(config.queue_directory, e));
    return 1;
  }
  // Only the daemon recovers: stand-alone processes run side by side and
  // would take each other's files in progress for leftovers.
  await recover(config, logger);
  await store.prefill("incoming");
  const threads = listenerThreads(config, tls !== undefined);
  let main;
  try {
    main = await startListening({ deps, store, listen, tls, reusePort: threads > 1 });
  } catch (e) {
    logger.error(`cannot listen: ${(e as Error).message}`);
    return 1;
  }
  const server = main.server;
  // Extra threads bind the ports the main thread got (port 0 becomes a real port).
  const bound = server.addresses.map((a) => ({ hostname: a.hostname, port: a.port }));
  if (threads > 1) space.refreshEverySecond();
  // Listener threads: a dead one is logged, its slots released, and replaced.
  const supervisor = new ThreadSupervisor<ListenerThread>({
    log: logger,
    start: async () => {
      const ledger = new ConnectionLedger();
      const heartbeat = new SharedArrayBuffer(4);
      const worker = await startWorker({
        file: opts.file,
        overrides: opts.overrides,
        verbose: opts.verbose,
        listen: bound,
        shared: main.limiter.shared,
        ledger: ledger.shared,
        heartbeat,
        poolLock: PoolLock.shared().buffer,
        freeSpace: space.shared,
        memory: deps.memory.shared,
        triggerClock: TriggerClock.shared().buffer,
      });
      return {
        worker,
        heartbeat: new Int32Array(heartbeat),
        release: () => ledger.returnTo(main.limiter),
      };
    },
  });
  try {
    await supervisor.start(threads - 1);
  } catch (e) {
    logger.error(`cannot start listener thread: ${(e as Error).message}`);
    supervisor.stop();
    for (const t of supervisor.threads) t.worker.terminate();
    server.close();
    return 1;
  }
  const where = server.addresses.map((a) => `${a.hostname}:${a.port}`).join(" ");
  logger.info(
    `daemon started -- version ${VERSION}, configuration ${opts.file}, listening on ${where}` +
      (threads > 1 ? ` (${threads} threads)` : ""),
  );
  let stopping = false;
  let stopped: () => void = () => {};
  const allStopped = new Promise<void>((r) => (stopped = r));
  let status = 0;
  const stop = async (why?: string) => {
    if (stopping) return;
    stopping = true;
    if (why) {
      // Not restorable here: exit non-zero for the service manager to restart the daemon.
      logger.error(`${why}; exiting`);
      status = 1;
    } else {
      logger.info("terminating on signal");
    }
    supervisor.stop();
    server.close();
    // Let sessions that are writing a message finish (bounded), so a stop
    // leaves no file half-written; idle clients are cut off after 3 s.
    const end = Date.now() + 3000;
    while (main.limiter.total > 0 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await Promise.all([store.close(), ...supervisor.threads.map((t) => stopWorker(t.worker))]);
    stopped();
  };
  Deno.addSignalListener("SIGTERM", () => void stop());
  Deno.addSignalListener("SIGINT", () => void stop());
  void server.failed.then(stop);
  void supervisor.gaveUp.then(stop);
  await allStopped;
  return status;
}

/** A listener thread as the supervisor sees it. */
interface ListenerThread extends SupervisedThread {
  readonly worker: Worker;
}

/** What a listener thread is started with. */
export interface WorkerInit {
  file: string;
  overrides: string[];
  verbose: number;
  listen: ListenAddress[];
  shared: SharedArrayBuffer;
  /** The thread's own share of the counts ({@linkcode ConnectionLedger}). */
  ledger: SharedArrayBuffer;
  /** A cell the thread bumps every second, for the main thread to see it is alive. */
  heartbeat: SharedArrayBuffer;
  /** The process's pool refill lock ({@linkcode PoolLock}). */
  poolLock: SharedArrayBuffer;
  /** The main thread's free-space figure ({@linkcode FreeSpace}). */
  freeSpace: SharedArrayBuffer;
  /** The process's memory budget ({@linkcode MemoryBudget}). */
  memory: SharedArrayBuffer;
  /** The process's last trigger writes ({@linkcode TriggerClock}). */
  triggerClock: SharedArrayBuffer;
}

/** Asks a listener thread to remove its unused pool files, then ends it (bounded). */
function stopWorker(w: Worker): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      w.terminate();
      resolve();
    };
    const timer = setTimeout(done, 1000);
    w.onmessage = (e: MessageEvent) => {
      if (e.data?.kind === "stopped") {
        clearTimeout(timer);
        done();
      }
    };
    w.postMessage({ kind: "stop" });
  });
}

function startWorker(init: WorkerInit): Promise<Worker> {
  const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
  return new Promise((resolve, reject) => {
    w.onmessage = (e: MessageEvent) => {
      if (e.data?.kind === "ready") resolve(w);
      else if (e.data?.kind === "failed") reject(new Error(String(e.data.reason)));
    };
    w.onerror = (e) => {
      e.preventDefault();
      reject(new Error(e.message));
    };
    w.postMessage(init);
  });
}

/**
 * A listener thread's body: loads the same configuration, builds its own
 * policy, cleanup and listeners on the shared ports (SO_REUSEPORT).
 * @param init what the main thread sent
 * @returns resolves when the thread is serving
 */
export async function serveInWorker(init: WorkerInit): Promise<QueueStore> {
  const loaded = await loadConfig(init.file, {
    overrides: init.overrides,
    systemHostname: systemHostname(),
  });
  const logger = makeLogger(loaded.config, init.verbose);
  const policy = buildPolicy(loaded, logger);
  PoolLock.adopt(init.poolLock);
  TriggerClock.adopt(init.triggerClock);
  const { deps, store } = buildDeps(
    loaded,
    policy,
    logger,
    "incoming",
    FreeSpace.reading(init.freeSpace),
    MemoryBudget.adopt(init.memory),
  );
  await store.prefill("incoming");
  const { server } = await startListening({
    deps,
    store,
    listen: init.listen,
    tls: undefined,
    shared: init.shared,
    ledger: new ConnectionLedger(init.ledger),
    reusePort: true,
  });
  const heartbeat = new Int32Array(init.heartbeat);
  const beating = setInterval(() => Atomics.add(heartbeat, 0, 1), 1000);
  // A listener that cannot be opened again: stop beating, and the main
  // thread replaces this thread.
  void server.failed.then(() => clearInterval(beating));
  return store;
}
