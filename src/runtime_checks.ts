/**
 * The checks and parts of the runtime that read the configuration as a
 * whole or read files: addresses and networks, mail_owner (the TLS
 * context is tls_context.ts's). Each refuses a bad configuration with a ConfigError
 * naming file and line. Only {@linkcode buildRuntime} calls them.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { ConfigError, type LoadedConfig } from "./config/mod.ts";
import type { StatFs } from "./queue/free_space.ts";
import { KNOWN_EHLO_DISCARDS, unknownEhloDiscards } from "./session/ehlo_keywords.ts";
import { parseSyslogServer } from "./log/mod.ts";
import { compileNetworks, type Network, parseDnsServer } from "./policy/mod.ts";
import { type ListenAddress, parseListenAddress } from "./transport/tcp_listener.ts";
import { parseIpAddress } from "./protocol/ip.ts";

/**
 * Checks what only makes sense as a whole (addresses, networks) and
 * parses what the listeners and the PROXY reader use. (mynetworks is
 * compiled, with file and line, by the policy.)
 * @param loaded the loaded configuration
 * @returns the listen addresses and smtpd_upstream_proxy_networks compiled
 * @throws {ConfigError}
 */
export function validateSemantics(
  loaded: LoadedConfig,
): { listen: ListenAddress[]; proxyNetworks: Network[] } {
  const c = loaded.config;
  const at = (key: string) => ({ file: loaded.file, line: loaded.lineOf(key), key });
  const proxyNetworks = located(
    loaded,
    "smtpd_upstream_proxy_networks",
    () => compileNetworks(c.smtpd_upstream_proxy_networks, "smtpd_upstream_proxy_networks"),
  );
  // One IP parser (protocol/ip.ts): an address written here that it refuses
  // (e.g. "127.0.0.010", octal to the C library) stops the start.
  for (const h of c.inet_interfaces) {
    if (looksLikeIp(h) && parseIpAddress(h.replace(/^\[(.*)\]$/, "$1")) === undefined) {
      throw new ConfigError(`inet_interfaces: cannot parse address "${h}"`, at("inet_interfaces"));
    }
  }
  const syslog = c.syslog_server ? parseSyslogServer(c.syslog_server) : undefined;
  if (c.syslog_server && !syslog) {
    throw new ConfigError(
      `syslog_server: cannot parse "${c.syslog_server}": expected udp://host:port or tcp://host:port`,
      at("syslog_server"),
    );
  }
  // node:dgram resolves a host name with getaddrinfo, which the permission
  // for host:port does not cover (EPERM): every line would be dropped.
  if (syslog?.transport === "udp" && parseIpAddress(syslog.host) === undefined) {
    throw new ConfigError(
      `syslog_server: "${c.syslog_server}": udp:// takes an IP address (127.0.0.1, [::1]), ` +
        "not a host name; or use tcp://, which takes either",
      at("syslog_server"),
    );
  }
  const dns = c.dns_server ? parseDnsServer(c.dns_server) : undefined;
  if (c.dns_server && !dns) {
    throw new ConfigError(
      `dns_server: cannot parse "${c.dns_server}": expected host:port`,
      at("dns_server"),
    );
  }
  // The resolver takes a name server's address only: with a name every
  // query would fail ("invalid IP address syntax"), a 4xx for each lookup.
  if (dns && parseIpAddress(dns.ipAddr) === undefined) {
    throw new ConfigError(
      `dns_server: "${c.dns_server}": expected an IP address and port ` +
        "(127.0.0.1:53, [::1]:53), not a host name",
      at("dns_server"),
    );
  }
  // Listener threads bind with SO_REUSEPORT, so an address named twice
  // (in one list, or in both) would be bound twice and the kernel would
  // spread connections over both: plain SMTP and implicit TLS at random
  // when the two lists share it. Port 0 asks for a new port each time.
  const seen = new Map<string, string>();
  const parseListen = (key: "smtpd_listen" | "smtpd_tls_wrappermode_listen", wrapper: boolean) =>
    c[key].map((a): ListenAddress => {
      const parsed = parseListenAddress(a);
      const ip = parsed ? parseIpAddress(parsed.hostname) : undefined;
      if (!parsed || (looksLikeIp(parsed.hostname) && !ip)) {
        throw new ConfigError(`${key}: cannot parse "${a}": expected host:port`, at(key));
      }
      // A name would be bound on the first of its addresses only (Deno's
      // listen), where Postfix listens on each one the name has
      // ("localhost": 127.0.0.1 and ::1 with a stock /etc/hosts).
      if (!ip) {
        const example = parsed.hostname.toLowerCase() === "localhost"
          ? `"127.0.0.1:${parsed.port}", "[::1]:${parsed.port}"`
          : `"192.0.2.1:${parsed.port}", "[2001:db8::1]:${parsed.port}"`;
        throw new ConfigError(
          `${key}: "${a}": takes IP addresses, not a host name (only one of its addresses ` +
            `would be listened on, where Postfix listens on each): write e.g. ${example}`,
          at(key),
        );
      }
      const id = `${
        ip ? `${ip.family}/${ip.value}` : parsed.hostname.toLowerCase()
      } ${parsed.port}`;
      const first = parsed.port === 0 ? undefined : seen.get(id);
      if (first !== undefined) {
        const where = first === key ? `listed twice in ${key}` : `also in ${first}`;
        throw new ConfigError(
          `${key}: "${a}" is ${where}: each address is served once ` +
            `(plain in smtpd_listen, or implicit TLS in smtpd_tls_wrappermode_listen)`,
          at(key),
        );
      }
      if (parsed.port !== 0) seen.set(id, key);
      return wrapper ? { ...parsed, wrapper } : parsed;
    });
  const listen = [
    ...parseListen("smtpd_listen", c.smtpd_tls_wrappermode),
    ...parseListen("smtpd_tls_wrappermode_listen", true),
  ];
  return { listen, proxyNetworks };
}

/**
 * Daemon mode needs an address: with smtpd_listen and
 * smtpd_tls_wrappermode_listen both empty (a configuration written for
 * stand-alone mode, or `-o smtpd_listen=`) it would run and serve nobody.
 * @param loaded the configuration
 * @throws {ConfigError} at smtpd_listen's line
 */
export function checkServeListen(loaded: LoadedConfig): void {
  const c = loaded.config;
  if (c.smtpd_listen.length > 0 || c.smtpd_tls_wrappermode_listen.length > 0) return;
  throw new ConfigError(
    "smtpd_listen: no address to listen on (smtpd_tls_wrappermode_listen is empty too): " +
      "smtpd serve would serve nobody; stand-alone mode (smtpd stdin) needs none",
    { file: loaded.file, line: loaded.lineOf("smtpd_listen"), key: "smtpd_listen" },
  );
}

/**
 * Whether the queue file system can take mail at all: MAIL needs room for
 * 1.5 messages of message_size_limit and queue_minfree (as Postfix asks).
 * More than the whole file system can never be had: every MAIL would get
 * 452 4.3.1, so the start is refused. More than is free now is a warning
 * (space can be freed while the server runs).
 * @param loaded the configuration
 * @param warn receives the warning
 * @param statfs statfs(2) (of queue_directory; before the first start,
 *   which makes it, of its nearest existing parent, the file system it
 *   will be made on; when that cannot be asked either, only MAIL measures)
 * @throws {ConfigError} at message_size_limit's line (or queue_minfree's)
 */
export function checkQueueRoom(
  loaded: LoadedConfig,
  warn: (text: string) => void,
  statfs: StatFs,
): void {
  const c = loaded.config;
  const fromSize = Math.floor(c.message_size_limit * 1.5);
  const need = Math.max(c.queue_minfree, fromSize);
  const s = queueFileSystem(c.queue_directory, statfs);
  if (!s) return; // nothing can be asked: MAIL measures
  const total = Number(s.blocks) * Number(s.bsize);
  const free = Number(s.bavail) * Number(s.bsize);
  const key = fromSize >= c.queue_minfree ? "message_size_limit" : "queue_minfree";
  const why = key === "message_size_limit"
    ? `MAIL needs room for 1.5 messages of message_size_limit (${need} bytes)`
    : `MAIL needs queue_minfree (${need} bytes) free`;
  if (need > total) {
    throw new ConfigError(
      `${key}: ${why}, more than the queue file system of ${c.queue_directory} holds ` +
        `(${total} bytes): every MAIL would get 452 4.3.1`,
      { file: loaded.file, line: loaded.lineOf(key), key },
    );
  }
  if (need > free) {
    warn(
      `${
        loaded.placeOf(key)
      }${key}: ${why}, and the queue file system of ${c.queue_directory} has ${free} ` +
        "bytes free: MAIL gets 452 4.3.1 until there is room",
    );
  }
}

/**
 * statfs(2) of the queue directory's file system: of the directory, or,
 * before the first start makes it, of its nearest existing parent (a fresh
 * install's /var/spool, where it will be made).
 * @param dir queue_directory
 * @param statfs statfs(2)
 * @returns the figures, or undefined when no directory on the way can be
 *   asked (another error than "not found": no permission, as under the
 *   compiled program's flags, which let it read only the queue directory)
 */
function queueFileSystem(dir: string, statfs: StatFs): ReturnType<StatFs> | undefined {
  for (let at = resolve(dir);; at = dirname(at)) {
    try {
      return statfs(at);
    } catch (e) {
      const notFound = e instanceof Deno.errors.NotFound ||
        (e as { code?: unknown } | null)?.code === "ENOENT";
      if (!notFound || dirname(at) === at) return undefined;
    }
  }
}

/**
 * What the start (and a reload) warns about without refusing: names in
 * smtpd_discard_ehlo_keywords that are no EHLO keyword.
 * @param loaded the configuration
 * @returns warning lines, each with file and line
 */
export function configWarnings(loaded: LoadedConfig): string[] {
  const key = "smtpd_discard_ehlo_keywords";
  return unknownEhloDiscards(loaded.config[key]).map((name) => {
    return `${loaded.placeOf(key, name)}${key}: "${name}" is no ` +
      `EHLO keyword this server knows, ignored (known: ${KNOWN_EHLO_DISCARDS.join(", ")})`;
  });
}

/**
 * The operator's line for an address the daemon could not listen on, with
 * the file and line of the parameter that names it (smtpd_listen,
 * smtpd_tls_wrappermode_listen, smtpd_tls_loopback_listen).
 * @param loaded the configuration
 * @param why the listener's message ("cannot listen on HOST:PORT: ..." or
 *   "smtpd_tls_loopback_listen: cannot listen on ...")
 * @returns the line to log
 */
export function listenFailure(loaded: LoadedConfig, why: string): string {
  const place = (key: string, item?: string) => loaded.placeOf(key, item);
  const engine = "smtpd_tls_loopback_listen";
  if (why.startsWith(`${engine}: `)) return `${place(engine)}${why}`;
  const m = /^cannot listen on (?:\[([^\]]+)\]|([^:\s]+)):(\d+):/.exec(why);
  if (!m) return /cannot listen/.test(why) ? why : `cannot listen: ${why}`;
  const [host, port] = [m[1] ?? m[2], Number(m[3])];
  for (const key of ["smtpd_listen", "smtpd_tls_wrappermode_listen"] as const) {
    const item = loaded.config[key].find((text) => {
      const a = parseListenAddress(text);
      return a !== undefined && a.hostname === host && a.port === port;
    });
    if (item !== undefined) return `${place(key, item)}${key}: ${why}`;
  }
  return why;
}

/**
 * Runs a build step for one parameter; a ConfigError it throws without a
 * file gets the parameter's file and line.
 * @param loaded the configuration
 * @param key the parameter
 * @param build the step
 * @returns what the step built
 * @throws {ConfigError}
 */
export function located<T>(loaded: LoadedConfig, key: string, build: () => T): T {
  try {
    return build();
  } catch (e) {
    if (e instanceof ConfigError && e.file === undefined) {
      throw new ConfigError(e.message, { file: loaded.file, line: loaded.lineOf(key), key });
    }
    throw e;
  }
}

/** Whether configuration text is meant as an IP address rather than a host name. */

function looksLikeIp(text: string): boolean {
  return /^\[.*\]$/.test(text) || text.includes(":") || /^[0-9.]+$/.test(text);
}

/**
 * Refuses a mail_owner this process cannot give its queue files: only root
 * may give a file to another user (chown(2)), so every message would get
 * 451 after its DATA, and the daemon would run without ever queueing one.
 * (Needs --allow-sys=uid, derived when mail_owner is set.)
 * @param loaded the configuration
 * @throws {ConfigError} at mail_owner's line
 */
export function checkMailOwner(loaded: LoadedConfig): void {
  const owner = resolveOwner(loaded);
  if (!owner) return;
  const uid = Deno.uid();
  if (uid === null || uid === 0 || uid === owner.uid) return;
  throw new ConfigError(
    `mail_owner: "${loaded.config.mail_owner.trim()}" (uid ${owner.uid}) cannot be given to ` +
      `queue files by this process (uid ${uid}): only root may give a file to another user; ` +
      "run it as root or as that user, or leave mail_owner empty",
    { file: loaded.file, line: loaded.lineOf("mail_owner"), key: "mail_owner" },
  );
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
