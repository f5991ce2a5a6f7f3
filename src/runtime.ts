/**
 * Builds what a process or listener thread runs with, from one loaded
 * configuration: the checks that need the whole configuration (addresses,
 * networks), the mail_owner lookup, the STARTTLS context, the logger, the
 * compiled policy, the session dependencies and the memory budget. Each
 * refuses a bad configuration with a ConfigError (file and line).
 *
 * @module
 */

import type { SecureContext } from "node:tls";
import { Cleanup } from "./cleanup/mod.ts";
import { type Config, ConfigError, type LoadedConfig } from "./config/mod.ts";
import {
  type LineSink,
  Logger,
  MailLog,
  parseSyslogServer,
  stderrSink,
  syslogSink,
} from "./log/mod.ts";
import {
  type CompiledPolicy,
  compileNetworks,
  compilePeerList,
  compilePolicy,
  denoResolver,
  parseDnsServer,
} from "./policy/mod.ts";
import { qmgrFlushTrigger, type Wakeup, wakeupTrigger } from "./flush/mod.ts";
import { QueueStore } from "./queue/mod.ts";
import { FreeSpace } from "./queue/free_space.ts";
import { type SessionDeps } from "./session/mod.ts";
import { automaticBudget, MemoryBudget } from "./session/memory_budget.ts";
import { type ListenAddress, parseListenAddress } from "./transport/tcp_listener.ts";
import { stderrIsClient } from "./transport/stdio.ts";
import { parseIpAddress } from "./protocol/ip.ts";

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

/**
 * The logger: stderr (unless stderr is the client's socket in stand-alone
 * mode) and, with syslog_server, a syslog daemon.
 * @param config the configuration
 * @param verbose -v count
 * @param standAlone stand-alone mode with stderr on the client's socket
 * @returns the logger
 */
export function makeLogger(config: Config, verbose: number, standAlone = false): Logger {
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
export function buildPolicy(loaded: LoadedConfig, logger: Logger): CompiledPolicy {
  const c = loaded.config;
  return compilePolicy(loaded, {
    dns: denoResolver({ server: c.dns_server, timeoutMs: c.dns_timeout * 1000 }),
    warn: (text) => logger.warning(text),
  });
}

/**
 * A session's dependencies for one queue, with the queue store and the
 * wakeup trigger they use.
 * @returns the dependencies, the store, the trigger and the free-space figure
 */
export function buildDeps(
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

/**
 * The process's memory budget: smtpd_memory_budget, or when 0 a share of
 * V8's heap limit (measured once, here on the main thread).
 * @param config the configuration
 * @returns the budget, shared with listener threads
 */
export async function memoryBudget(config: Config): Promise<MemoryBudget> {
  return MemoryBudget.create(config.smtpd_memory_budget || await automaticBudget());
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
