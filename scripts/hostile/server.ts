/**
 * The server under attack: the real program (`deno run` with the
 * production permission flags of scripts/permissions.ts) in daemon mode on
 * a loopback port, with its own configuration and queue under var/. It
 * keeps the tail of the log, counts raw control bytes in it, samples the
 * process's memory, and says whether the process lives and greets.
 *
 * @module
 */

import { join } from "node:path";
import { flagsForArgs } from "../permissions.ts";
import { SmtpConn } from "./smtp_conn.ts";

/** The repository root. */
export const ROOT: string = new URL("../..", import.meta.url).pathname;

const LOG_LINES = 4000;

/** How to start one instance. */
export interface ServerSpec {
  /** Instance name (log prefix, directory name). */
  name: string;
  /** Its work directory (absolute, under var/). */
  dir: string;
  /** TOML text; the queue directory and listen address are added. */
  config: string;
  /** PROXY v1 header a health check sends first (PROXY instances), without CRLF. */
  proxyHeader?: string;
  /** Also listen in implicit TLS (smtpd_tls_wrappermode_listen) on a port of its own. */
  wrapper?: boolean;
}

/** A running instance. */
export class ServerUnderTest {
  readonly spec: ServerSpec;
  readonly queueDir: string;
  readonly configFile: string;
  #child: Deno.ChildProcess | undefined;
  #pump: Promise<void> | undefined;
  #exited = true;
  #exitCode: number | null = null;
  #lines: string[] = [];
  #partial = "";
  #lineCount = 0;
  #ctlBytes = 0;
  #ctlSample = "";
  #peakKiB = 0;
  #sampler: ReturnType<typeof setInterval> | undefined;
  port = 0;
  /** Its implicit-TLS port (smtpd_tls_wrappermode_listen), 0 when it has none. */
  wrapperPort = 0;
  pid = 0;
  /** How many times it was started. */
  starts = 0;

  /** @param spec name, directory, configuration */
  constructor(spec: ServerSpec) {
    this.spec = spec;
    this.queueDir = join(spec.dir, "spool");
    this.configFile = join(spec.dir, "smtpd.toml");
  }

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Its exit status, when it has exited. */
  get exitCode(): number | null {
    return this.#exitCode;
  }

  /** Log lines received so far (a counter, for {@linkcode logSince}). */
  get logMark(): number {
    return this.#lineCount;
  }

  /** Raw control bytes (other than tab and newline) seen in the log so far. */
  get controlBytes(): number {
    return this.#ctlBytes;
  }

  /** Where the first raw control bytes were seen (escaped), for the report. */
  get controlSample(): string {
    return this.#ctlSample;
  }

  /**
   * The log lines since a mark that are still kept (the last 4000).
   * @param mark a value of {@linkcode logMark}
   * @returns the lines
   */
  logSince(mark: number): string[] {
    const keep = this.#lineCount - mark;
    return keep <= 0 ? [] : this.#lines.slice(-Math.min(keep, this.#lines.length));
  }

  /** Starts (or restarts) the process and waits until it listens (bounded: 30 s). */
  async start(): Promise<void> {
    const rel = (p: string) => p.startsWith(ROOT) ? p.slice(ROOT.length) : p;
    await Deno.mkdir(this.queueDir, { recursive: true });
    await Deno.writeTextFile(
      this.configFile,
      `queue_directory = "${rel(this.queueDir)}"\nsmtpd_listen = ["127.0.0.1:0"]\n${
        this.spec.wrapper ? `smtpd_tls_wrappermode_listen = ["127.0.0.1:0"]\n` : ""
      }${this.spec.config}\n`,
    );
    const mark = this.#lineCount;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...await flagsForArgs(["-c", rel(this.configFile)]),
        "mod.ts",
        "serve",
        "-c",
        rel(this.configFile),
      ],
      cwd: ROOT,
      // Deno's own warnings uncoloured: escape bytes in the log can then only come from clients.
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#exited = false;
    this.#exitCode = null;
    this.pid = child.pid;
    this.starts++;
    child.status.then((s) => {
      this.#exited = true;
      this.#exitCode = s.code;
    });
    const reader = child.stderr.getReader();
    const decoder = new TextDecoder("latin1");
    // The whole log also goes to smtpd.log in the work directory (kept with --keep).
    const file = await Deno.open(join(this.spec.dir, "smtpd.log"), {
      create: true,
      append: true,
    });
    this.#pump = (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read().catch(() => ({
            value: undefined,
            done: true,
          }));
          if (done || !value) return;
          this.#take(decoder.decode(value, { stream: true }));
          let off = 0;
          while (off < value.length) off += file.writeSync(value.subarray(off));
        }
      } finally {
        file.close();
      }
    })();
    const deadline = Date.now() + 30_000;
    this.port = 0;
    this.wrapperPort = 0;
    while (Date.now() < deadline && !this.#exited) {
      const line = this.logSince(mark).find((l) => / listening on /.test(l));
      const m = line && /listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m) {
        this.port = Number(m[1]);
        this.wrapperPort = Number(/127\.0\.0\.1:(\d+) \(TLS wrapper mode\)/.exec(line!)?.[1] ?? 0);
        break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    if (!this.port) {
      const tail = this.logSince(mark).slice(-20).join("\n");
      await this.stop();
      throw new Error(`${this.spec.name}: server did not start:\n${tail}`);
    }
    this.#sampler ??= setInterval(() => this.#sample(), 100);
  }

  #take(text: string): void {
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if ((c < 0x20 && c !== 0x0a && c !== 0x09) || c === 0x7f) {
        if (this.#ctlBytes === 0) {
          this.#ctlSample = JSON.stringify(text.slice(Math.max(0, i - 60), i + 20));
        }
        this.#ctlBytes++;
      }
    }
    const parts = (this.#partial + text).split("\n");
    this.#partial = parts.pop() ?? "";
    if (this.#partial.length > 65536) this.#partial = this.#partial.slice(0, 65536);
    for (const p of parts) this.#lines.push(p);
    this.#lineCount += parts.length;
    if (this.#lines.length > 2 * LOG_LINES) this.#lines = this.#lines.slice(-LOG_LINES);
  }

  #sample(): void {
    if (this.#exited) return;
    const kib = procStatusKiB(this.pid, "VmRSS");
    if (kib > this.#peakKiB) this.#peakKiB = kib;
  }

  /** Starts a new peak: the sampled maximum and the kernel's high-water mark (VmHWM). */
  resetPeak(): void {
    this.#peakKiB = procStatusKiB(this.pid, "VmRSS");
    try {
      // "5" resets VmHWM to the current RSS (proc(5), clear_refs).
      Deno.writeTextFileSync(`/proc/${this.pid}/clear_refs`, "5");
    } catch { /* not allowed: the samples alone */ }
  }

  /** Peak RSS since {@linkcode resetPeak}, MiB (kernel high-water mark and samples). */
  peakMiB(): number {
    this.#sample();
    const hwm = this.#exited ? 0 : procStatusKiB(this.pid, "VmHWM");
    return Math.max(this.#peakKiB, hwm) / 1024;
  }

  /** Current RSS, MiB. */
  rssMiB(): number {
    return procStatusKiB(this.pid, "VmRSS") / 1024;
  }

  /**
   * CPU time the process has used so far (all its threads, user and
   * system), in seconds, from /proc/PID/stat (0 when unknown).
   */
  cpuSeconds(): number {
    return procCpuSeconds(this.pid);
  }

  /** Open file descriptors of the process (0 when unknown). */
  openFds(): number {
    try {
      let n = 0;
      for (const _ of Deno.readDirSync(`/proc/${this.pid}/fd`)) n++;
      return n;
    } catch {
      return 0;
    }
  }

  /**
   * Whether a fresh connection from 127.0.0.1 gets a 220 greeting, trying
   * until the deadline (a 421 under load is retried).
   * @param timeoutMs longest time to keep trying
   * @returns whether it greeted
   */
  async greets(timeoutMs = 10_000): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end && !this.#exited) {
      const c = await SmtpConn.open({ port: this.port, timeoutMs: 2000 }).catch(() => undefined);
      if (c) {
        if (this.spec.proxyHeader) await c.write(`${this.spec.proxyHeader}\r\n`);
        const r = await c.reply(Math.max(100, Math.min(5000, end - Date.now())));
        if (r.startsWith("220")) {
          await c.write("QUIT\r\n");
          await c.reply(1000);
          c.destroy();
          return true;
        }
        c.destroy();
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    return false;
  }

  /** Stops the process by its PID (SIGTERM, then SIGKILL after 5 s) and waits. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    if (this.#sampler !== undefined) clearInterval(this.#sampler);
    this.#sampler = undefined;
    if (!this.#exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 5000);
      await child.status;
      clearTimeout(timer);
    }
    await this.#pump;
  }
}

/**
 * One field of /proc/PID/status, in KiB (0 when the process is gone).
 * @param pid the process
 * @param field e.g. VmRSS, VmHWM
 * @returns the value
 */
export function procStatusKiB(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(
      Deno.readTextFileSync(`/proc/${pid}/status`),
    );
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * A process's CPU time (utime + stime of /proc/PID/stat), in seconds.
 * @param pid the process
 * @returns the seconds, 0 when the process is gone
 */
export function procCpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name (which may hold spaces), from field 3 on.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 (1-based), in clock ticks (USER_HZ, 100 on Linux).
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return 0;
  }
}

/**
 * Makes a self-signed certificate and key (openssl) in a directory.
 * @param dir where to put cert.pem and key.pem
 * @returns the two paths
 */
export async function makeCertificate(dir: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "2",
      "-subj",
      "/CN=mx.hostile.example",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`openssl failed: ${new TextDecoder().decode(out.stderr)}`);
  return { cert, key };
}
