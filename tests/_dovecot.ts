/**
 * A private Dovecot (Debian's dovecot-core) for the SASL tests: only its
 * auth service, with a passwd-file of test users, listening on a UNIX
 * socket (mode 0666) and on a loopback TCP port, everything under one
 * temporary directory, logging to a file there. Started in the foreground
 * (`dovecot -F`) and stopped by its own PID.
 *
 * @module
 */

import { join } from "node:path";

/** The test users, as "name:password" (PLAIN scheme). */
export const DOVECOT_USERS = { alice: "secret", carol: "hunter2" } as const;

/**
 * swaks's options for AUTH as a user of {@linkcode DOVECOT_USERS}.
 * @param mechanism PLAIN or LOGIN
 * @param user the login
 * @param password its password, or another (a wrong guess)
 * @returns the options
 */
export function swaksAuth(
  mechanism: "PLAIN" | "LOGIN",
  user: keyof typeof DOVECOT_USERS,
  password: string = DOVECOT_USERS[user],
): string[] {
  return ["--auth", mechanism, "--auth-user", user, "--auth-password", password];
}

/** A running private Dovecot. */
export interface Dovecot {
  readonly dir: string;
  /** The auth-client UNIX socket. */
  readonly socket: string;
  /** Its TCP auth listener on 127.0.0.1. */
  readonly port: number;
  /** Its log file. */
  readonly logFile: string;
  /** Starts it again after {@linkcode Dovecot.stop} (same config). */
  start(): Promise<void>;
  /** Stops it (SIGTERM to its PID, then SIGKILL after 5 s) and waits. */
  stop(): Promise<void>;
  /** Stops it and removes its directory. */
  dispose(): Promise<void>;
}

/** Whether a `dovecot` binary is on PATH. */
export function hasDovecot(): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(join(dir, "dovecot")).isFile) return true;
    } catch { /* not here */ }
  }
  return false;
}

function userExists(name: string): boolean {
  try {
    return Deno.readTextFileSync("/etc/passwd").split("\n").some((l) => l.startsWith(`${name}:`));
  } catch {
    return false;
  }
}

/**
 * The users Dovecot's processes run as. As root: Debian's dovecot and
 * dovenull (nobody where they are missing), and Dovecot's own group. Not
 * as root: ourselves and our primary group for everything (Dovecot cannot
 * change owners then; it runs fine if every user and group is ours).
 */
function serviceSettings(): string {
  if (Deno.uid() !== 0) {
    const me = Deno.env.get("USER") ?? "nobody";
    const gid = Deno.gid();
    let group = "nogroup";
    try {
      const line = Deno.readTextFileSync("/etc/group").split("\n")
        .find((l) => l.split(":")[2] === String(gid));
      if (line) group = line.split(":")[0] ?? group;
    } catch { /* keep nogroup */ }
    return `default_internal_user = ${me}\ndefault_login_user = ${me}\n` +
      `default_internal_group = ${group}\n`;
  }
  const internal = userExists("dovecot") ? "dovecot" : "nobody";
  const login = userExists("dovenull") ? "dovenull" : "nobody";
  return `default_internal_user = ${internal}\ndefault_login_user = ${login}\n`;
}

/**
 * The minimal configuration: no protocols, no SSL, auth only.
 * @param dir the private directory
 * @param port the TCP port of the auth listener
 * @param mechanisms auth_mechanisms
 * @returns dovecot.conf text
 */
export function dovecotConf(
  dir: string,
  port: number,
  mechanisms = "plain login anonymous",
): string {
  return `# private test instance
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
protocols =
ssl = no
listen = 127.0.0.1
${serviceSettings()}auth_mechanisms = ${mechanisms}
auth_verbose = yes
passdb {
  driver = passwd-file
  args = scheme=PLAIN ${dir}/users
}
userdb {
  driver = passwd-file
  args = ${dir}/users
}
service auth {
  unix_listener auth-client {
    mode = 0666
  }
  inet_listener auth-inet {
    address = 127.0.0.1
    port = ${port}
  }
}
`;
}

/**
 * Starts a private Dovecot and waits until its auth socket answers.
 * @param port a free loopback TCP port for the auth listener
 * @param options auth_mechanisms (default "plain login anonymous"), the
 *   users (default {@linkcode DOVECOT_USERS}) and their extra fields,
 *   settings added to the end
 * @returns the running instance
 */
export async function startDovecot(
  port: number,
  options: {
    mechanisms?: string;
    users?: Record<string, string>;
    /** Per user, passwd-file extra fields ("nologin reason=Disabled"). */
    extraFields?: Record<string, string>;
    extraConf?: string;
  } = {},
): Promise<Dovecot> {
  const dir = await Deno.makeTempDir({ prefix: "smtpd-dovecot-" });
  await Deno.chmod(dir, 0o755); // the auth process (not root) reads the users file
  const users = Object.entries(options.users ?? DOVECOT_USERS)
    .map(([u, p]) =>
      `${u}:{PLAIN}${p}:1000:1000::/nonexistent::${options.extraFields?.[u] ?? ""}\n`
    )
    .join("");
  await Deno.writeTextFile(join(dir, "users"), users, { mode: 0o644 });
  await Deno.writeTextFile(
    join(dir, "dovecot.conf"),
    dovecotConf(dir, port, options.mechanisms) + (options.extraConf ?? ""),
  );
  let child: Deno.ChildProcess | undefined;
  const socket = join(dir, "run", "auth-client");

  const start = async () => {
    child = new Deno.Command("dovecot", {
      args: ["-F", "-c", join(dir, "dovecot.conf")],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      try {
        const c = await Deno.connect({ transport: "unix", path: socket });
        c.close();
        return;
      } catch { /* not yet */ }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`dovecot did not start: ${await Deno.readTextFile(join(dir, "dovecot.log"))}`);
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c) return;
    // Dovecot's master leaves a service process that still has clients
    // (auth, with our connection) running after it exits; a system stop
    // (systemd) ends them all. Do the same, by their own PIDs.
    const children = descendants(c.pid);
    try {
      c.kill("SIGTERM");
    } catch { /* gone */ }
    const timer = setTimeout(() => {
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5_000);
    await c.status;
    clearTimeout(timer);
    for (const pid of children) {
      try {
        if (Deno.readTextFileSync(`/proc/${pid}/cmdline`).startsWith("dovecot/")) {
          Deno.kill(pid, "SIGKILL");
        }
      } catch { /* gone */ }
    }
    // The master removes its sockets on exit; make sure the path is gone
    // so a "stopped" server really refuses connections.
    await Deno.remove(socket).catch(() => {});
  };
  await start();
  return {
    dir,
    socket,
    port,
    logFile: join(dir, "dovecot.log"),
    start,
    stop,
    dispose: async () => {
      await stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** The PIDs of a process's children and their children (from /proc). */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number) => {
    let text = "";
    try {
      text = Deno.readTextFileSync(`/proc/${p}/task/${p}/children`);
    } catch { /* gone */ }
    for (const c of text.split(/\s+/).filter((x) => x !== "").map(Number)) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}
