/**
 * The benchmark's reference server: a private Postfix instance that lives
 * entirely under one directory (configuration, queue, data, log), listens
 * only on 127.0.0.1:PORT and puts every accepted message on hold, so that
 * what is measured is exactly smtpd + cleanup writing one durable queue
 * file per message (cleanup fsyncs it before smtpd answers 250, Postfix's
 * default), as our server does. Nothing is delivered.
 *
 * Needs Debian's postfix package and root (Postfix's queue ownership).
 *
 * @module
 */

import { join } from "node:path";

const decoder = new TextDecoder();

/** A command's exit code and its output (stdout and stderr). */
export interface CommandOutput {
  readonly code: number;
  readonly output: string;
}

async function exec(cmd: string, args: string[], timeoutS: number): Promise<CommandOutput> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeoutS * 1000);
  try {
    const r = await child.output();
    return { code: r.code, output: decoder.decode(r.stdout) + decoder.decode(r.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
async function listening(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/** main.cf; smtpd_tls_security_level is left at none unless start() is given TLS lines. */
function mainCf(dir: string, port: number): string {
  return `# Written by scripts/bench/postfix_instance.ts: a private benchmark instance.
compatibility_level = 3.6
queue_directory = ${dir}/queue
data_directory = ${dir}/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-bench-${port}
maillog_file_prefixes = ${dir}/log
maillog_file = ${dir}/log/maillog

myhostname = reference.localdomain
mydomain = localdomain
myorigin = $myhostname
mydestination =
local_recipient_maps =
relay_domains =
alias_maps =
alias_database =

inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8

smtpd_client_restrictions =
smtpd_helo_restrictions =
smtpd_sender_restrictions =
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions =
smtpd_data_restrictions = check_client_access static:HOLD
smtpd_end_of_data_restrictions =
smtpd_helo_required = no

smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
smtp_tls_security_level = none
smtpd_sasl_auth_enable = no
biff = no
default_process_limit = 100
`;
}

/** Postfix's services, chroot off; the only inet service is 127.0.0.1:port. */
function masterCf(port: number): string {
  // service type private unpriv chroot wakeup maxproc command
  return [
    `127.0.0.1:${port} inet n - n - - smtpd`,
    "pickup unix n - n 60 1 pickup",
    "cleanup unix n - n - 0 cleanup",
    "qmgr unix n - n 300 1 qmgr",
    // The TLS case: smtpd's entropy and session-ticket keys come from tlsmgr.
    "tlsmgr unix - - n 1000? 1 tlsmgr",
    "rewrite unix - - n - - trivial-rewrite",
    "bounce unix - - n - 0 bounce",
    "defer unix - - n - 0 bounce",
    "trace unix - - n - 0 bounce",
    "verify unix - - n - 1 verify",
    "flush unix n - n 1000? 0 flush",
    "proxymap unix - - n - - proxymap",
    "proxywrite unix - - n - 1 proxymap",
    "smtp unix - - n - - smtp",
    "relay unix - - n - - smtp",
    "showq unix n - n - - showq",
    "error unix - - n - - error",
    "retry unix - - n - - error",
    "discard unix - - n - - discard",
    "local unix - n n - - local",
    "anvil unix - - n - 1 anvil",
    "scache unix - - n - 1 scache",
    "postlog unix-dgram n - n - 1 postlogd",
  ].join("\n") + "\n";
}

/** A private Postfix under `dir`, listening on 127.0.0.1:`port`. */
export class PostfixInstance {
  readonly conf: string;
  readonly queue: string;

  /**
   * @param port the loopback port for its smtpd
   * @param dir its directory (must be searchable by the postfix user)
   */
  constructor(readonly port: number, readonly dir: string) {
    this.conf = join(dir, "conf");
    this.queue = join(dir, "queue");
  }

  /** Its log (maillog_file, written by postlogd). */
  get logFile(): string {
    return join(this.dir, "log", "maillog");
  }

  /** The master's PID, or null when it is not running. */
  masterPid(): number | null {
    try {
      const pid = Number(Deno.readTextFileSync(join(this.queue, "pid", "master.pid")).trim());
      return pid > 0 && alive(pid) ? pid : null;
    } catch {
      return null;
    }
  }

  /**
   * Writes a fresh configuration and starts the instance.
   * @param extraMainCf lines added to main.cf (the TLS case's settings)
   * @returns what `postfix start` printed
   * @throws {Error} when it does not start or listens anywhere but loopback
   */
  async start(extraMainCf = ""): Promise<string> {
    if (this.masterPid() !== null) throw new Error("the reference Postfix is already running");
    if (await listening(this.port)) throw new Error(`port ${this.port} is already in use`);
    for (const d of ["conf", "queue", "data", "log"]) {
      await Deno.remove(join(this.dir, d), { recursive: true }).catch(() => {});
      await Deno.mkdir(join(this.dir, d), { recursive: true });
    }
    for (const d of [this.dir, this.conf, this.queue]) {
      await Deno.chown(d, 0, 0);
      await Deno.chmod(d, 0o755);
    }
    const owner = await exec("id", ["-u", "postfix"], 10);
    await Deno.chown(join(this.dir, "data"), Number(owner.output.trim()), null);
    await Deno.chmod(join(this.dir, "data"), 0o700);
    await Deno.writeTextFile(join(this.conf, "main.cf"), mainCf(this.dir, this.port) + extraMainCf);
    await Deno.writeTextFile(join(this.conf, "master.cf"), masterCf(this.port));
    const inet = await exec("postconf", ["-c", this.conf, "-M"], 30);
    const services = inet.output.split("\n").filter((l) => /^\S+\s+inet\s/.test(l));
    if (services.length !== 1 || !services[0]!.startsWith(`127.0.0.1:${this.port} `)) {
      throw new Error(`master.cf must have exactly one inet service, 127.0.0.1:${this.port}`);
    }
    const check = await exec("postfix", ["-c", this.conf, "check"], 60);
    if (check.code !== 0) throw new Error(`postfix check failed:\n${check.output}`);
    const start = await exec("postfix", ["-c", this.conf, "start"], 120);
    if (start.code !== 0) throw new Error(`postfix start failed:\n${start.output}`);
    for (let i = 0; i < 300 && !(await listening(this.port)); i++) await sleep(100);
    if (!(await listening(this.port))) throw new Error(`no smtpd on 127.0.0.1:${this.port}`);
    const version = await exec("postconf", ["-c", this.conf, "-h", "mail_version"], 30);
    return `postfix ${version.output.trim()} master pid ${this.masterPid()} on 127.0.0.1:${this.port}`;
  }

  /** Stops the instance (bounded); the caller kills any process left by PID. */
  async stop(): Promise<void> {
    const pid = this.masterPid();
    if (pid === null) return;
    await exec("postfix", ["-c", this.conf, "stop"], 60).catch(() => {});
    for (let i = 0; i < 200 && alive(pid); i++) await sleep(100);
  }

  /** Messages accepted and durable: the files in hold/. */
  count(): number {
    let n = 0;
    try {
      for (const e of Deno.readDirSync(join(this.queue, "hold"))) if (e.isFile) n++;
    } catch { /* no hold/ yet */ }
    return n;
  }

  /** Removes the held messages. */
  clear(): void {
    const hold = join(this.queue, "hold");
    try {
      for (const e of Deno.readDirSync(hold)) {
        if (e.isFile) Deno.removeSync(join(hold, e.name));
      }
    } catch { /* no hold/ yet */ }
  }
}
