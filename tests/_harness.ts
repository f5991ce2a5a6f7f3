/**
 * End-to-end test harness: starts the real program (`deno run` with the
 * production permission flags from scripts/permissions.ts) in daemon or
 * stand-alone mode, with a private queue directory under var/, and reads
 * queue files back with Postfix's own postcat.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { flagsForArgs } from "../scripts/permissions.ts";

/** The repository root. */
export const ROOT = new URL("..", import.meta.url).pathname;
const decoder = new TextDecoder();

const handedOut = new Set<number>();

/**
 * The first port of the kernel's local port range (32768 by default): the
 * ports of outgoing connections and of a listen on port 0 come from it.
 */
const LOCAL_PORT_LOW = (() => {
  try {
    const text = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range");
    const low = Number(text.trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 21000 ? low : 32768;
  } catch {
    return 32768;
  }
})();

/** Where test processes of this checkout record the ports they were given. */
const PORTS_DIR = join(ROOT, "var", "tests", "ports");
/** How long a port another test process was given stays its own. */
const PORT_HELD_MS = 30 * 60_000;

/**
 * Records `port` as this process's among the test processes of this
 * checkout (a file named after it, created only if none is there), so that
 * two test files of the parallel run are never given the same port.
 * @returns false when another process recorded it within PORT_HELD_MS
 */
function reservePort(port: number): boolean {
  const path = join(PORTS_DIR, String(port));
  try {
    Deno.mkdirSync(PORTS_DIR, { recursive: true });
    Deno.openSync(path, { write: true, createNew: true }).close();
    return true;
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) return true; // no record here: as before
  }
  try {
    const age = Date.now() - (Deno.statSync(path).mtime?.getTime() ?? 0);
    if (age < PORT_HELD_MS) return false;
    Deno.utimeSync(path, new Date(), new Date()); // left by an earlier run: taken
    return true;
  } catch {
    return false;
  }
}

/**
 * A free TCP port on 127.0.0.1 for a server a test starts later (Postfix,
 * Dovecot, a daemon's listener): a random port below the local port range
 * that a listen takes right now (it is closed again at once), never one
 * this process or another test process of this checkout was given before
 * (see reservePort). Not the kernel's port 0: that port comes from the
 * local port range, where another test file of the parallel run may take
 * the same number as an outgoing connection's local port before the server
 * binds it (EADDRINUSE even with SO_REUSEADDR), as happened to the TLS
 * engine's port (8a4fb5f) and to the tests' name servers (bdf858d). Nor one
 * another test file drew too, before either bound it: Postfix's master
 * listens with SO_REUSEPORT, so two instances on one port both start, and
 * the kernel hands some sessions of one to the other (a reference Postfix
 * answered 250 with no line in its own log, bc9e3df).
 */
export function freePort(): number {
  for (let i = 0; i < 1000; i++) {
    const port = 20000 + Math.floor(Math.random() * (LOCAL_PORT_LOW - 20000));
    if (handedOut.has(port)) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
    } catch {
      continue; // in use: another
    }
    if (!reservePort(port)) continue; // another test process's
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free loopback port between 20000 and ${LOCAL_PORT_LOW}`);
}

/** A private work area under var/ (inside what the production flags allow). */
export async function makeWorkDir(prefix = "test"): Promise<string> {
  await Deno.mkdir(join(ROOT, "var", "tests"), { recursive: true });
  return await Deno.makeTempDir({ dir: join(ROOT, "var", "tests"), prefix: `${prefix}-` });
}

/**
 * Writes a TOML config in `dir` with a queue under it and the given extra text.
 * @param dir the work directory
 * @param extra additional TOML lines
 * @returns the config path (relative to the repo root) and the queue directory
 */
export async function writeConfig(
  dir: string,
  extra = "",
): Promise<{ configFile: string; queueDir: string }> {
  const given = /^queue_directory\s*=\s*"([^"]+)"/m.exec(extra)?.[1];
  const queueDir = given ? join(ROOT, given) : join(dir, "spool");
  const configFile = join(dir, "smtpd.toml");
  const base = [
    `queue_directory = "${rel(queueDir)}"`,
    `smtpd_listen = ["127.0.0.1:0"]`,
    `myhostname = "mx.test.example"`,
    `smtpd_error_sleep_time = 0`,
  ].filter((line) => !new RegExp(`^${line.split(" ")[0]}\\s*=`, "m").test(extra));
  // No test asks the machine's resolver: without a DNS server of its own
  // (dns_server, tests/_dns.ts) a test looks up no client names.
  const tail = /^(dns_server|smtpd_peername_lookup)\s*=/m.test(extra)
    ? ""
    : "smtpd_peername_lookup = false\n";
  await Deno.writeTextFile(configFile, `${base.join("\n")}\n${extra}\n${tail}`);
  return { configFile: rel(configFile), queueDir };
}

/**
 * Writes a configuration as {@linkcode writeConfig} does and asserts that
 * `smtpd config --check` accepts it (exit 0), as an operator checks before a start.
 * @param dir the test's work directory
 * @param extra the configuration's lines
 */
export async function assertConfigChecks(dir: string, extra: string): Promise<void> {
  const { configFile } = await writeConfig(dir, extra);
  const checked = await run(
    Deno.execPath(),
    await smtpdArgs(["config", "--check", "-c", configFile]),
  );
  assert.equal(checked.code, 0, checked.stderr);
}

function rel(p: string): string {
  return p.startsWith(ROOT) ? p.slice(ROOT.length) : p;
}

/**
 * The deno command line for the program with the flags derived from the
 * configuration in `args` (`-c`, `-o`), as `deno task smtpd` runs it.
 * @param args the program's arguments
 * @returns arguments for `deno`
 */
export async function smtpdArgs(args: string[]): Promise<string[]> {
  return ["run", ...await flagsForArgs(args, ROOT), "mod.ts", ...args];
}

/** A process started by {@linkcode spawnLogged}, its stderr collected. */
export interface LoggedProcess {
  readonly child: Deno.ChildProcess;
  /** Its stderr so far. */
  log(): string;
  /**
   * Waits until its stderr contains `want`, asking every 20 ms; throws with
   * the log after `timeoutMs` (default 5 s).
   * @returns the match, for a RegExp
   */
  waitForLog(want: string | RegExp, timeoutMs?: number): Promise<RegExpExecArray | undefined>;
  /** Waits until it has ended and its stderr is read to the end. */
  exited(): Promise<Deno.CommandStatus>;
  /** Sends `signal` (default SIGTERM) by its PID, unless it has ended, then waits as exited(). */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  /**
   * Stops reading its stderr (a log reader that hangs): once the pipe is
   * full, its writes to stderr no longer complete. {@linkcode resumeLog}
   * reads again.
   */
  pauseLog(): void;
  /** Reads its stderr again after {@linkcode pauseLog}. */
  resumeLog(): void;
}

/**
 * Starts a long-running command in the repository root with no stdin and
 * no stdout, and collects what it writes on stderr (a server's log).
 * @param cmd the program
 * @param args its arguments
 * @returns the process
 */
export function spawnLogged(cmd: string, args: string[]): LoggedProcess {
  const child = new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const reader = child.stderr.getReader();
  let ended = false; // stderr is at its end: the text can no longer change
  let paused: PromiseWithResolvers<void> | undefined;
  const pump = (async () => {
    for (;;) {
      if (paused) await paused.promise;
      const { value, done } = await reader.read();
      if (done) return;
      text += decoder.decode(value, { stream: true });
    }
  })().finally(() => {
    ended = true;
  });
  const exited = async () => {
    const status = await child.status;
    // Its stderr is read to the end, even if the test stopped reading it.
    paused?.resolve();
    paused = undefined;
    await pump;
    return status;
  };
  return {
    child,
    log: () => text,
    async waitForLog(want, timeoutMs = 5000) {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        const last = ended;
        if (typeof want === "string") {
          if (text.includes(want)) return undefined;
        } else {
          const m = want.exec(text);
          if (m) return m;
        }
        // A process whose stderr has ended will never show it (a daemon
        // that refused to start): no need to wait out the whole timeout.
        if (last) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`log never showed ${want}:\n${text}`);
    },
    exited,
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch { /* gone */ }
      return await exited();
    },
    pauseLog() {
      paused ??= Promise.withResolvers<void>();
    },
    resumeLog() {
      paused?.resolve();
      paused = undefined;
    },
  };
}

/** A running daemon. */
export interface Daemon {
  readonly port: number;
  readonly pid: number;
  readonly queueDir: string;
  /** Log text so far. */
  log(): string;
  /** Waits until the log contains text (bounded). */
  waitForLog(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Stops the process by its PID (SIGTERM, or SIGKILL) and waits. */
  stop(signal?: Deno.Signal): Promise<void>;
  /** Stops reading its stderr ({@linkcode LoggedProcess.pauseLog}). */
  pauseLog(): void;
  /** Reads its stderr again. */
  resumeLog(): void;
  /** Resolves with its exit status once it has ended and its stderr is read to the end. */
  exited(): Promise<Deno.CommandStatus>;
}

/**
 * Starts `smtpd serve` on a free loopback port.
 * @param extraConfig TOML lines added to the test config
 * @param options an existing work dir to reuse; how long the start may take
 *   (default 15 s: more for a configuration with large tables)
 * @returns the daemon handle
 */
export async function startDaemon(
  extraConfig = "",
  options: { dir?: string; startTimeoutMs?: number } = {},
): Promise<Daemon> {
  const dir = options.dir ?? await makeWorkDir("daemon");
  const { configFile, queueDir } = await writeConfig(dir, extraConfig);
  const proc = spawnLogged(Deno.execPath(), await smtpdArgs(["serve", "-c", configFile]));
  const listening = await proc.waitForLog(
    /listening on 127\.0\.0\.1:(\d+)/,
    options.startTimeoutMs ?? 15000,
  )
    .catch(() => undefined);
  if (!listening) {
    await proc.stop("SIGKILL");
    throw new Error(`daemon did not start:\n${proc.log()}`);
  }
  let stopped = false;
  return {
    port: Number(listening[1]),
    pid: proc.child.pid,
    queueDir,
    log: proc.log,
    async waitForLog(want, timeoutMs) {
      await proc.waitForLog(want, timeoutMs);
    },
    async stop(signal: Deno.Signal = "SIGTERM") {
      if (stopped) return;
      stopped = true;
      await proc.stop(signal);
    },
    pauseLog: proc.pauseLog,
    resumeLog: proc.resumeLog,
    exited: proc.exited,
  };
}

/** Options for {@linkcode startHaproxy}. */
export interface HaproxyOptions {
  /** The backend servers' loopback ports, balanced round robin. */
  servers: number[];
  /** The PROXY protocol version HAProxy sends to them. */
  proxy: "send-proxy" | "send-proxy-v2";
  /** `maxconn` of the global section. @default {100} */
  maxconn?: number;
  /** Client and server timeouts. @default {"30s"} */
  timeout?: string;
  /**
   * A UNIX socket for the frontend instead of a loopback port: HAProxy has
   * no client address to send then (PROXY UNKNOWN, or a v2 LOCAL header).
   */
  unixSocket?: string;
}

/** A running HAProxy (see {@linkcode startHaproxy}). */
export interface Haproxy {
  /** The frontend's port on 127.0.0.1 (0 with a UNIX-socket frontend). */
  readonly port: number;
  /** Stops it by its PID (SIGTERM) and waits. */
  stop(): Promise<void>;
}

/**
 * Starts Debian's HAProxy in TCP mode on a free loopback port in front of
 * our servers, with its configuration in `dir`, and waits until it accepts
 * (the probe connection reaches a server from 127.0.0.1).
 * @param dir a work directory
 * @param options the servers and the PROXY protocol version
 * @returns the running HAProxy
 */
export async function startHaproxy(dir: string, options: HaproxyOptions): Promise<Haproxy> {
  const { servers, proxy, maxconn = 100, timeout = "30s", unixSocket } = options;
  const port = unixSocket ? 0 : freePort();
  const cfg = join(dir, "haproxy.cfg");
  await Deno.writeTextFile(
    cfg,
    [
      "global",
      `  maxconn ${maxconn}`,
      "defaults",
      "  mode tcp",
      "  timeout connect 5s",
      `  timeout client ${timeout}`,
      `  timeout server ${timeout}`,
      "frontend smtp",
      unixSocket ? `  bind unix@${unixSocket}` : `  bind 127.0.0.1:${port}`,
      "  default_backend mx",
      "backend mx",
      "  balance roundrobin",
      ...servers.map((p, i) => `  server s${i} 127.0.0.1:${p} ${proxy}`),
      "",
    ].join("\n"),
  );
  const child = new Deno.Command("haproxy", {
    args: ["-db", "-f", cfg],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
  };
  for (let i = 0; i < 50; i++) {
    try {
      (await (unixSocket
        ? Deno.connect({ transport: "unix", path: unixSocket })
        : Deno.connect({ hostname: "127.0.0.1", port }))).close();
      return { port, stop };
    } catch {
      await sleep(100);
    }
  }
  await stop();
  throw new Error(`haproxy did not listen on ${unixSocket ?? `127.0.0.1:${port}`}`);
}

/** Result of a finished process. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to completion with optional stdin text.
 * @param cmd program
 * @param args arguments
 * @param options stdin, env, timeout
 * @returns exit code and output
 */
export async function run(
  cmd: string,
  args: string[],
  options: { stdin?: string | Uint8Array; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<RunResult> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: options.env,
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, options.timeoutMs ?? 60000);
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(
      typeof options.stdin === "string" ? new TextEncoder().encode(options.stdin) : options.stdin,
    ).catch(() => {});
    await w.close().catch(() => {});
  }
  const out = await child.output();
  clearTimeout(timer);
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/**
 * Runs swaks against a server on 127.0.0.1:port.
 * @param port the server's port
 * @param args swaks's other arguments
 * @param options a timeout (default 60 s)
 * @returns swaks's exit code and transcript
 */
export async function swaks(
  port: number,
  args: string[],
  options: { timeoutMs?: number } = {},
): Promise<RunResult> {
  return await run("swaks", ["--server", `127.0.0.1:${port}`, ...args], options);
}

/**
 * The server's reply to the first RCPT TO in a swaks transcript: the line
 * after swaks's ` -> RCPT TO:` line, trimmed ("" when there is none).
 * @param transcript swaks's standard output
 * @returns the reply line
 */
export function swaksRcptReply(transcript: string): string {
  const lines = transcript.split("\n");
  return (lines[lines.findIndex((l) => / -> RCPT TO:/.test(l)) + 1] ?? "").trim();
}

/**
 * Runs `smtpd stdin` with a scripted client session on stdin.
 * @param configFile the config (relative to the root)
 * @param session the client's bytes
 * @param env environment for the peer identity
 * @returns what the server printed
 */
export async function runStdin(
  configFile: string,
  session: string | Uint8Array,
  env: Record<string, string> = {},
): Promise<RunResult> {
  return await run(Deno.execPath(), await smtpdArgs(["stdin", "-c", configFile]), {
    stdin: session,
    env,
  });
}

/**
 * Runs a shell command line and fails unless it exits 0.
 * @param cmd the command line for `sh -c`
 * @returns its standard output, trimmed
 */
export async function sh(cmd: string): Promise<string> {
  const r = await run("sh", ["-c", cmd]);
  if (r.code !== 0) throw new Error(`${cmd}: ${r.stdout}${r.stderr}`);
  return r.stdout.trim();
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Asks `check` every `intervalMs` until it says yes.
 * @param what what is awaited, for the error
 * @param check the condition
 * @param timeoutMs how long to wait before throwing
 * @param intervalMs the pause between asks (short where the wait races a
 *   window of the server's, such as its 250 ms wait for a slot)
 */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 20000,
  intervalMs = 100,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(intervalMs);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * A file's text, or "" while it does not exist yet (a mailbox before the
 * first delivery, a log before its first line).
 * @param path the file
 * @returns its text or ""
 */
export function readOrEmpty(path: string): Promise<string> {
  return Deno.readTextFile(path).catch(() => "");
}

/** Whether strace is installed and may trace here (containers may forbid ptrace). */
export async function canTrace(): Promise<boolean> {
  try {
    return (await run("strace", ["-f", "-qq", "-o", "/dev/null", "true"])).code === 0;
  } catch {
    return false;
  }
}

let postcatConf: string | undefined;

/**
 * Prints a queue file with Postfix's postcat and checks it read to the end.
 * @param file the queue file
 * @returns postcat's output
 */
export async function postcat(file: string): Promise<string> {
  if (!postcatConf) {
    postcatConf = await Deno.makeTempDir({ prefix: "postcat-" });
    await Deno.writeTextFile(join(postcatConf, "main.cf"), "");
  }
  const r = await run("postcat", ["-c", postcatConf, file]);
  if (r.code !== 0 || !r.stdout.includes("*** MESSAGE FILE END")) {
    throw new Error(`postcat failed on ${file} (${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}

/**
 * Lists the complete queue files (mode 0700/0744) of one queue.
 * @param queueDir the queue directory
 * @param queue incoming or maildrop
 * @returns full paths
 */
export async function queueFiles(queueDir: string, queue = "incoming"): Promise<string[]> {
  const out: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(join(queueDir, queue)));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return out; // no such queue yet
    throw err;
  }
  for (const e of entries) {
    const p = join(queueDir, queue, e.name);
    // An entry may vanish between the listing and its stat: a daemon removes
    // unused pool files (a refill that failed, a clean stop). Skip only that one.
    const st = await Deno.stat(p).catch((err) => {
      if (err instanceof Deno.errors.NotFound) return undefined;
      throw err;
    });
    if (st && ((st.mode ?? 0) & 0o100) !== 0) out.push(p);
  }
  return out.sort();
}

/**
 * Every entry in a queue directory, complete or not, except the daemon's
 * pre-created pool files (empty, mode 0600: nothing was ever written).
 */
export async function allEntries(queueDir: string, queue = "incoming"): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(queueDir, queue))) {
    const st = await Deno.stat(join(queueDir, queue, e.name)).catch(() => undefined);
    if (!st) continue; // removed since the listing: not left over
    if (st.size === 0 && ((st.mode ?? 0) & 0o777) === 0o600) continue;
    out.push(e.name);
  }
  return out.sort();
}

/**
 * A minimal raw SMTP client over TCP, for byte-exact tests.
 */
export class RawClient {
  #conn: Deno.TcpConn;
  #buf = "";
  #pending: Promise<Uint8Array | null> | undefined;
  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Connects to the daemon. */
  static async connect(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Sends bytes as they are. */
  async send(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  /** Reads one complete (possibly multi-line) reply; "" at EOF. */
  async reply(timeoutMs = 10000): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(this.#buf);
      if (m) {
        this.#buf = this.#buf.slice(m[0].length);
        return m[0];
      }
      if (Date.now() > end) throw new Error(`no reply; have ${JSON.stringify(this.#buf)}`);
      if (!this.#pending) {
        const chunk = new Uint8Array(65536);
        this.#pending = this.#conn.read(chunk)
          .then((n) => n === null ? null : chunk.subarray(0, n))
          .catch(() => null);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const got = await Promise.race([
        this.#pending,
        new Promise<"timeout">((r) => {
          timer = setTimeout(() => r("timeout"), Math.max(1, end - Date.now()));
        }),
      ]);
      clearTimeout(timer);
      if (got === "timeout") continue;
      this.#pending = undefined;
      if (got === null) {
        const rest = this.#buf;
        this.#buf = "";
        return rest;
      }
      this.#buf += decoder.decode(got);
    }
  }

  /** Closes the connection. */
  close(): void {
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }
}

/**
 * A raw client past the greeting and its HELO/EHLO (both replies read).
 * @param port the daemon's port
 * @param ehlo the command that follows the greeting
 * @returns the client
 */
export async function greeted(port: number, ehlo = "EHLO client.example"): Promise<RawClient> {
  const c = await RawClient.connect(port);
  await c.reply();
  await c.send(`${ehlo}\r\n`);
  await c.reply();
  return c;
}

/**
 * Takes the queue ID from the reply that ended a message (to DATA's end or
 * to BDAT LAST), then says QUIT and reads its reply.
 * @param c the client
 * @param last that reply
 * @returns the queue ID
 */
export async function queuedThenQuit(c: RawClient, last: string): Promise<string> {
  const id = /^250 2\.0\.0 Ok: (?:\d+ bytes )?queued as (\w+)/.exec(last)?.[1];
  assert.ok(id, last);
  await c.send("QUIT\r\n");
  await c.reply();
  return id;
}

/**
 * Makes a self-signed certificate for mx.test.example (openssl), valid two
 * days, as `cert.pem` and `key.pem` in `dir` (RSA 2048), or with `ecdsa`
 * as `ec.pem` and `ec.key` (P-256).
 * @param dir a work directory
 * @param options ecdsa: an ECDSA key instead of RSA
 * @returns the two files' paths
 */
export async function makeTestCert(
  dir: string,
  options: { ecdsa?: boolean } = {},
): Promise<{ cert: string; key: string }> {
  const cert = join(dir, options.ecdsa ? "ec.pem" : "cert.pem");
  const key = join(dir, options.ecdsa ? "ec.key" : "key.pem");
  const r = await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    ...(options.ecdsa ? ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"] : ["rsa:2048"]),
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "2",
    "-subj",
    "/CN=mx.test.example",
  ]);
  if (r.code !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  return { cert, key };
}

/**
 * Makes a self-signed certificate in `dir` (see makeTestCert) and returns
 * the TOML lines that offer STARTTLS with it.
 * @param dir a work directory under the repository (see makeWorkDir)
 * @param level smtpd_tls_security_level
 * @returns the configuration lines
 */
export async function tlsCertConfig(
  dir: string,
  level = "may",
  options: { engine?: boolean } = {},
): Promise<string> {
  await makeTestCert(dir);
  const relDir = rel(dir);
  return [
    `smtpd_tls_security_level = "${level}"`,
    `smtpd_tls_cert_file = "${relDir}/cert.pem"`,
    `smtpd_tls_key_file = "${relDir}/key.pem"`,
    // What most sites set (Postfix's defaults are 0 and no; a test of the
    // defaults leaves these two lines out): the handshake's log line, which
    // tests wait for, and the TLS comment in Received:.
    `smtpd_tls_loglevel = 1`,
    `smtpd_tls_received_header = true`,
    // The TLS engine (tls_engine.ts) instead of node:tls, on any free port.
    ...(options.engine ? [`smtpd_tls_loopback_listen = "127.0.0.1:0"`] : []),
  ].join("\n");
}

/**
 * Python (smtplib): N concurrent sessions, each EHLO, STARTTLS, EHLO and one
 * message; prints "ok TLSv1.x" or "fail ..." per session.
 * Arguments: port, N.
 */
export const CONCURRENT_STARTTLS = `
import smtplib, ssl, sys, threading
port, n = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
results = []
def one(i):
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
            s.ehlo("c%d.example" % i)
            s.starttls(context=ctx)
            s.ehlo("c%d.example" % i)
            s.sendmail("a@example.org", ["u@example.com"], "Subject: %d\\r\\n\\r\\nhi\\r\\n" % i)
            results.append("ok " + s.sock.version())
    except Exception as e:
        results.append("fail %r" % e)
ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
[t.start() for t in ts]; [t.join() for t in ts]
print("\\n".join(results))
`;

/**
 * Python: the STARTTLS command-injection attack. After EHLO it sends
 * STARTTLS with a MAIL pipelined behind it in plaintext, then over TLS EHLO,
 * RCPT and QUIT, printing "starttls:", "ehlo:", "rcpt:" and "quit:" replies.
 */
export const INJECTION = `
import socket, ssl, sys
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
def reply():
    lines = []
    while True:
        l = f.readline().decode()
        lines.append(l.strip())
        if len(l) < 4 or l[3] != "-":
            return lines
reply()
s.sendall(b"EHLO x\\r\\n"); reply()
# The attack: a command pipelined in plaintext behind STARTTLS.
s.sendall(b"STARTTLS\\r\\nMAIL FROM:<injected@evil.example>\\r\\n")
print("starttls:", reply()[-1])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s)
tf = t.makefile("rb")
def treply():
    lines = []
    while True:
        l = tf.readline().decode()
        lines.append(l.strip())
        if len(l) < 4 or l[3] != "-":
            return lines
t.sendall(b"EHLO x\\r\\n"); print("ehlo:", treply()[-1])
t.sendall(b"RCPT TO:<u@example.com>\\r\\n"); print("rcpt:", treply()[-1])
t.sendall(b"QUIT\\r\\n"); print("quit:", treply()[-1])
`;

/**
 * Python: connects, reads the greeting, says EHLO and STARTTLS and reads
 * their replies (reply(f) reads one whole reply from a file), and makes a
 * client TLS context that trusts any certificate (ctx).
 */
export const UP_TO_STARTTLS = `
import os, socket, ssl, sys
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port)); s.settimeout(10)
f = s.makefile("rb")
def reply(f=f):
    while True:
        l = f.readline()
        if len(l) < 4 or l[3:4] != b"-":
            return l.decode().strip()
reply(); s.sendall(b"EHLO x\\r\\n"); reply(); s.sendall(b"STARTTLS\\r\\n"); reply()
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
`;

/**
 * Python: after STARTTLS, EHLO and QUIT over TLS, then prints "end: b''"
 * when the session ended with a close_notify (an SSLEOFError's name after a
 * bare TCP end).
 */
export const CLOSE_NOTIFY = `${UP_TO_STARTTLS}
t = ctx.wrap_socket(s, suppress_ragged_eofs=False); tf = t.makefile("rb")
t.sendall(b"EHLO y\\r\\n"); reply(tf)
t.sendall(b"QUIT\\r\\n"); print("quit:", reply(tf))
try:
    print("end:", t.recv(100))
except ssl.SSLError as e:
    print("end:", type(e).__name__)
`;
