/**
 * `deno task bench`: deno-smtpd against a private Postfix on the same
 * machine, in one run, alternating which server goes first.
 *
 * Postfix's smtp-source drives fixed load cases (sessions x messages x
 * size) in two modes (`conn`: one message per connection; `reuse`: many
 * messages per connection, smtp-source -d) against both servers. For every
 * run it reports messages/second (messages / wall time of smtp-source),
 * queue files landed against messages sent, peak memory sampled every
 * 100 ms (ours: summed RSS of our server's process tree; Postfix: summed
 * PSS of the master's process tree) and CPU time per message of the
 * server's tree. Both servers are durable: ours fsyncs every queue file
 * before it answers 250; Postfix's cleanup does the same by default.
 *
 * Every measured run gets a freshly started server (so no run inherits
 * processes or heap from the one before), an untimed warm-up, an empty
 * queue and a `sync` plus one second of quiet. Both servers run in
 * sessions (so scheduler autogroups) of their own; the memory sampler is a
 * separate process at nice 19 in an autogroup of its own.
 *
 * Usage (as root, from anywhere):
 *
 *     deno run -A scripts/bench.ts [--quick] [--write BENCHMARKS.md]
 *       [--reps N] [--cases a,b,c,d] [--modes conn,reuse] [--timeout SECONDS] [--keep]
 *
 * Needs Debian's postfix package (smtp-source, postfix, postconf); the
 * reference instance is scripts/bench/postfix_instance.ts. Every
 * process it starts is stopped by PID, also on errors and on SIGINT/SIGTERM;
 * its work directories (var/bench/RUN and a 0755 directory under /tmp for
 * Postfix) are removed unless --keep is given.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { flagsForArgs } from "./permissions.ts";
import { PostfixInstance } from "./bench/postfix_instance.ts";
import { replaceSection } from "./bench/report_file.ts";
import {
  type BenchCert,
  clientElapsedS,
  makeBenchCert,
  ourTlsConfig,
  postfixTlsConfig,
  tlsSourceCommand,
} from "./bench/tls_case.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SMTP_SOURCE = "/usr/sbin/smtp-source";
const SAMPLE_MS = 100;
const SENDER = "from@bench.example";
const RECIPIENT = "to@bench.example";
const HELO = "bench.localdomain";
/** Untimed load a freshly started server gets before each measured run. */
const WARMUP: LoadCase = { id: "warm-up", sessions: 10, messages: 500, size: 4096 };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---------------------------------------------------------------------------
// Output

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  let off = 0;
  while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
}

/** A result line on stdout. */
function out(text = ""): void {
  writeAll(Deno.stdout, `${text}\n`);
}

/** A progress line on stderr. */
function note(text: string): void {
  writeAll(Deno.stderr, `[${new Date().toISOString().slice(11, 19)}] ${text}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

let trashSerial = 0;

/** Whether a queue file is marked complete (mode has the owner-execute bit). */
function isComplete(path: string): boolean {
  try {
    return ((Deno.lstatSync(path).mode ?? 0) & 0o100) !== 0;
  } catch {
    return false; // removed meanwhile
  }
}

/**
 * Empties a queue directory of its messages: deletes them, or renames them
 * into a fresh subdirectory of `trash` (same file system), which the bench
 * removes at its end.
 * @param dir the queue directory
 * @param how delete or move
 * @param trash the trash directory (for move)
 */
function emptyDir(dir: string, how: ClearMode, trash: string): void {
  const to = join(trash, String(++trashSerial));
  if (how === "move") Deno.mkdirSync(to, { recursive: true });
  for (const e of Deno.readDirSync(dir)) {
    // Messages only: a file without the owner-execute bit is one the server
    // is writing or keeps ready (our pools' empty files); moving it would
    // take it from under the server.
    if (!e.isFile || !isComplete(join(dir, e.name))) continue;
    if (how === "move") Deno.renameSync(join(dir, e.name), join(to, e.name));
    else Deno.removeSync(join(dir, e.name));
  }
}
// ---------------------------------------------------------------------------
// Options

interface LoadCase {
  id: string;
  sessions: number;
  messages: number;
  size: number;
  /** Over STARTTLS (scripts/bench/tls_source.ts instead of smtp-source; both servers offer TLS). */
  tls?: boolean;
}

type Mode = "conn" | "reuse";
const MODES: readonly Mode[] = ["conn", "reuse"];

const CASES: readonly LoadCase[] = [
  { id: "a", sessions: 1, messages: 2000, size: 4096 },
  { id: "b", sessions: 20, messages: 10000, size: 4096 },
  { id: "c", sessions: 100, messages: 10000, size: 4096 },
  { id: "d", sessions: 10, messages: 200, size: 1048576 },
  { id: "t", sessions: 20, messages: 4000, size: 4096, tls: true },
];

const USAGE = `Usage: deno run -A scripts/bench.ts [options]

Compares deno-smtpd with a private Postfix on 127.0.0.1 using smtp-source.

  --quick            message counts / 10 (at least 200 per case)
  --write FILE       put the Markdown report into FILE (e.g. BENCHMARKS.md), replacing
                     the previous full (or quick) run's section
  --reps N           repetitions of every case and mode (default 1; medians reported)
  --cases LIST       cases to run, from a,b,c,d,t (default all; t = 20 sessions of
                     4 KiB over STARTTLS; a run of t alone is written as the TLS section)
  --modes LIST       modes to run, from conn,reuse (default both)
  --timeout SECONDS  bound for each smtp-source run (default 300, 60 with --quick)
  --keep             keep the work directories (for inspection)
  --ours NAME=VALUE  a parameter for our server's configuration (repeatable; TOML value,
                     e.g. --ours smtpd_listen_threads=1)
  --clear HOW        how a queue is emptied before a run: move (default) renames the
                     files into a trash directory removed when the bench ends; delete
                     unlinks them at once (see "Emptying the queues" in BENCHMARKS.md)
`;

interface Options {
  quick: boolean;
  write?: string;
  reps: number;
  cases: LoadCase[];
  modes: Mode[];
  timeoutS: number;
  keep: boolean;
  clear: ClearMode;
  /** Extra TOML lines for our server's configuration. */
  ours: string[];
}

/**
 * How a queue is emptied between runs. On a file system that skips
 * recently freed inodes when it allocates (ext4 without a journal), files
 * deleted just before a run make every file created in that run scan past
 * them; "move" keeps the inodes in use until the bench ends.
 */
type ClearMode = "move" | "delete";

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      write: { type: "string" },
      reps: { type: "string", default: "1" },
      cases: { type: "string", default: "a,b,c,d,t" },
      modes: { type: "string", default: "conn,reuse" },
      timeout: { type: "string" },
      keep: { type: "boolean", default: false },
      clear: { type: "string", default: "move" },
      ours: { type: "string", multiple: true, default: [] },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    writeAll(Deno.stdout, USAGE);
    Deno.exit(0);
  }
  const reps = Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1 || reps > 20) throw new Error("--reps: want 1..20");
  const cases = values.cases.split(",").map((id) => {
    const c = CASES.find((x) => x.id === id.trim());
    if (!c) throw new Error(`--cases: unknown case "${id}" (want a,b,c,d,t)`);
    return values.quick ? { ...c, messages: Math.max(200, Math.floor(c.messages / 10)) } : c;
  });
  const modes = values.modes.split(",").map((m) => {
    const mode = MODES.find((x) => x === m.trim());
    if (!mode) throw new Error(`--modes: unknown mode "${m}" (want conn,reuse)`);
    return mode;
  });
  const timeoutS = values.timeout === undefined
    ? (values.quick ? 60 : 300)
    : Number(values.timeout);
  if (!(timeoutS > 0 && timeoutS <= 3600)) throw new Error("--timeout: want 1..3600 seconds");
  const clear = values.clear;
  if (clear !== "move" && clear !== "delete") throw new Error("--clear: want move or delete");
  return {
    quick: values.quick,
    write: values.write,
    reps,
    cases,
    modes,
    timeoutS,
    keep: values.keep,
    clear,
    ours: (values.ours ?? []).map((kv) => {
      const m = /^([a-z_0-9]+)=(.+)$/.exec(kv);
      if (!m) throw new Error(`--ours: want NAME=VALUE, got "${kv}"`);
      return `${m[1]} = ${m[2]}`;
    }),
  };
}

// ---------------------------------------------------------------------------
// /proc

/** Fields of /proc/PID/stat after "(comm) ": [0] state, [1] ppid, [11..14] utime stime cutime cstime. */
function procStat(pid: number): string[] | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  return text.slice(text.lastIndexOf(")") + 2).trim().split(" ");
}

function alive(pid: number): boolean {
  const f = procStat(pid);
  return f !== null && f[0] !== "Z";
}

/** ROOT and all its descendants (parent links from /proc/*\/stat). */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  let seen = false;
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    const f = procStat(pid);
    if (!f || f[0] === "Z") continue;
    if (pid === root) seen = true;
    const ppid = Number(f[1]);
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  if (!seen) return [];
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

/** utime+stime+cutime+cstime (clock ticks) summed over the tree. */
function treeCpuTicks(root: number): number {
  let sum = 0;
  for (const pid of processTree(root)) {
    const f = procStat(pid);
    if (f) sum += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return sum;
}

/** This process: own CPU and that of its reaped children (smtp-source), in ticks. */
function selfCpuTicks(): { own: number; children: number } {
  const f = procStat(Deno.pid)!;
  return { own: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
}

/** Machine-wide busy (without steal) and steal ticks from /proc/stat. */
function systemTicks(): { busy: number; steal: number } {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return { busy: v[0]! + v[1]! + v[2]! + v[5]! + v[6]!, steal: v[7] ?? 0 };
}

type MemKind = "rss" | "pss";

/** VmRSS (from status) or Pss (from smaps_rollup) of one process, KiB; 0 when gone. */
function memKiB(pid: number, kind: MemKind): number {
  try {
    if (kind === "rss") {
      const m = /^VmRSS:\s+(\d+)/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
      return m ? Number(m[1]) : 0;
    }
    const m = /^Pss:\s+(\d+)/m.exec(Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** What the sampler process found (written as JSON to its report file). */
interface SampleReport {
  peakKiB: number;
  peakProcs: number;
  samples: number;
  /** Time spent taking samples, ms. */
  busyMs: number;
  /** The sampler's own CPU (utime+stime), clock ticks. */
  cpuTicks: number;
  /** Whether it got its own autogroup at nice 19. */
  niced: boolean;
}

/**
 * The sampler process: `bench.ts --sampler ROOT rss|pss REPORT_FILE`.
 * Sums the memory of ROOT's process tree every SAMPLE_MS and keeps the
 * peak until SIGTERM. It runs in a session (so an autogroup) of its own at
 * nice 19, so that reading smaps_rollup of 100+ Postfix processes ten
 * times a second takes CPU from neither server: with autogroup
 * scheduling, a plain `nice` in the bench's own session would not keep it
 * from taking a full share against Postfix's session.
 */
async function samplerMain(args: string[]): Promise<number> {
  const root = Number(args[0]);
  const kind: MemKind = args[1] === "pss" ? "pss" : "rss";
  const file = args[2];
  if (!(root > 0) || !file) return 2;
  let niced = false;
  const own = procStat(Deno.pid);
  if (own && Number(own[3]) === Deno.pid) { // session leader: its autogroup is its own
    try {
      Deno.writeTextFileSync("/proc/self/autogroup", "19");
      niced = true;
    } catch { /* no autogroup support */ }
  }
  const parent = Number(own?.[1]);
  let stop = false;
  const onTerm = () => {
    stop = true;
  };
  Deno.addSignalListener("SIGTERM", onTerm);
  const report: SampleReport = {
    peakKiB: 0,
    peakProcs: 0,
    samples: 0,
    busyMs: 0,
    cpuTicks: 0,
    niced,
  };
  const save = () => {
    report.cpuTicks = selfCpuTicks().own;
    Deno.writeTextFileSync(`${file}.tmp`, JSON.stringify(report));
    Deno.renameSync(`${file}.tmp`, file);
  };
  let next = performance.now();
  // Bounded: 2 h of samples, or until the bench that started it is gone.
  for (let i = 0; i < 72000; i++) {
    const t0 = performance.now();
    const pids = processTree(root);
    let sum = 0;
    for (const pid of pids) sum += memKiB(pid, kind);
    const higher = sum > report.peakKiB || pids.length > report.peakProcs;
    report.peakKiB = Math.max(report.peakKiB, sum);
    report.peakProcs = Math.max(report.peakProcs, pids.length);
    report.samples++;
    report.busyMs += performance.now() - t0;
    // The first save tells the bench to start the clock; later ones keep the
    // file current in case this process has to be SIGKILLed.
    if (i === 0 || higher) save();
    if (stop || procStat(Deno.pid)?.[1] !== String(parent)) break;
    next += SAMPLE_MS;
    const now = performance.now();
    if (next < now) next = now; // behind (starved at nice 19): no burst of catch-up samples
    await sleep(next - now);
  }
  save();
  Deno.removeSignalListener("SIGTERM", onTerm);
  return 0;
}

/** A running sampler process (see {@linkcode samplerMain}). */
class Sampler {
  #child: Deno.ChildProcess;
  #file: string;
  /** Its CPU ticks at the first sample (start-up), before the clock starts. */
  startTicks = 0;

  private constructor(child: Deno.ChildProcess, file: string) {
    this.#child = child;
    this.#file = file;
  }

  /** Starts sampling ROOT's tree; resolves after the first sample. */
  static async start(root: number, kind: MemKind, file: string): Promise<Sampler> {
    try {
      Deno.removeSync(file);
    } catch { /* none */ }
    // setsid execs (no fork: our child is no process-group leader), so the PID is Deno's.
    const child = new Deno.Command("setsid", {
      args: [
        "nice",
        "-n",
        "19",
        Deno.execPath(),
        "run",
        "-A",
        new URL(import.meta.url).pathname,
        "--sampler",
        String(root),
        kind,
        file,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    const sampler = new Sampler(child, file);
    let exited = false;
    child.status.then(() => exited = true);
    // Up to 60 s: on a machine loaded by other work a Deno start-up can take more than 10.
    for (let i = 0; i < 1200 && !exited; i++) {
      const first = sampler.#read();
      if (first) {
        sampler.startTicks = first.cpuTicks;
        return sampler;
      }
      await sleep(50);
    }
    await sampler.stop();
    throw new Error("the memory sampler did not start");
  }

  #read(): SampleReport | null {
    try {
      return JSON.parse(Deno.readTextFileSync(this.#file)) as SampleReport;
    } catch {
      return null;
    }
  }

  /** Stops it by PID (SIGTERM, then SIGKILL after 5 s) and returns its report. */
  async stop(): Promise<SampleReport> {
    try {
      this.#child.kill("SIGTERM");
    } catch { /* gone */ }
    const done = await Promise.race([
      this.#child.status.then(() => true),
      sleep(5000).then(() => false),
    ]);
    if (!done) {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
      await Promise.race([this.#child.status, sleep(2000)]);
    }
    return this.#read() ??
      { peakKiB: NaN, peakProcs: 0, samples: 0, busyMs: 0, cpuTicks: 0, niced: false };
  }
}

// ---------------------------------------------------------------------------
// Processes

/** smtp-source children in flight, killed by PID on SIGINT/SIGTERM. */
const inFlight = new Set<Deno.ChildProcess>();

interface ExecResult {
  code: number;
  output: string;
  timedOut: boolean;
}

/**
 * Runs a command with stdout+stderr going to `logFile` (never a pipe: a
 * daemon that inherits it cannot hold us up), killed by PID after
 * `timeoutS`.
 */
async function execLogged(
  cmd: string,
  args: string[],
  logFile: string,
  timeoutS: number,
  track = false,
): Promise<ExecResult> {
  const child = new Deno.Command("sh", {
    args: ["-c", 'o=$1; shift; exec "$@" >"$o" 2>&1', "sh", logFile, cmd, ...args],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  if (track) inFlight.add(child);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeoutS * 1000);
  try {
    const status = await child.status;
    let output = "";
    try {
      output = Deno.readTextFileSync(logFile);
    } catch { /* none */ }
    return { code: status.code, output, timedOut };
  } finally {
    clearTimeout(timer);
    inFlight.delete(child);
  }
}

/** Runs a short helper command with piped output (for facts like versions). */
async function capture(cmd: string, args: string[]): Promise<string> {
  try {
    const r = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
      .output();
    return decoder.decode(r.stdout).trim();
  } catch {
    return "";
  }
}

function tail(text: string, lines = 8): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** A random port in 20000..29999 (below the ephemeral range) free on 127.0.0.1. */
function freePort(taken: number[]): number {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    if (taken.includes(port)) continue;
    try {
      const l = Deno.listen({ hostname: "127.0.0.1", port });
      l.close();
      return port;
    } catch { /* in use */ }
  }
  throw new Error("no free port in 20000..29999");
}

/** SIGTERM the root, wait (bounded), then SIGKILL whatever is left of the tree, by PID. */
async function stopTree(root: number, waitS: number): Promise<void> {
  if (!alive(root)) return;
  const pids = processTree(root);
  try {
    Deno.kill(root, "SIGTERM");
  } catch { /* gone */ }
  for (let i = 0; i < waitS * 10 && alive(root); i++) await sleep(100);
  const left = pids.filter(alive);
  if (left.length) note(`still alive after ${waitS}s, SIGKILL: ${left.join(" ")}`);
  for (const pid of left) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
}

// ---------------------------------------------------------------------------
// The two servers

type Label = "ours" | "postfix";

interface Server {
  readonly label: Label;
  readonly port: number;
  readonly memKind: MemKind;
  /** Where its queue files land (for the same-filesystem check). */
  readonly spool: string;
  /** PID of the root of its process tree, or null when not running. */
  rootPid(): Promise<number | null>;
  /**
   * Stops it (when started) and starts it afresh.
   * @returns true when it had been started but was found dead (a crash)
   */
  restart(): Promise<boolean>;
  /** True when it has been started and is no longer running. */
  isDead(): Promise<boolean>;
  /** Empties the queue (see {@linkcode ClearMode}). */
  clear(how: ClearMode): Promise<void>;
  count(): Promise<number>;
  /** Problem lines (warning/error/fatal/panic) in its log. */
  problems(): string[];
  stop(): Promise<void>;
  /** Offer STARTTLS with this certificate from the next restart on (undefined: no TLS). */
  tls: BenchCert | undefined;
}

const PROBLEM = /\b(warning|error|fatal|panic):/;

class OurServer implements Server {
  readonly label = "ours";
  tls: BenchCert | undefined;
  #extra: readonly string[] = [];
  readonly memKind = "rss";
  readonly spool: string;
  readonly #configFile: string; // relative to ROOT
  readonly #queueDir: string; // relative to ROOT
  readonly #logFile: string;
  #child: Deno.ChildProcess | null = null;
  #exited = false;
  /** The current child got ready (so a later death is a crash, not a failed start). */
  #ready = false;

  constructor(readonly port: number, readonly runDir: string, readonly enginePort: number) {
    const rel = runDir.slice(ROOT.length);
    this.#queueDir = `${rel}/spool`;
    this.#configFile = `${rel}/smtpd.toml`;
    this.#logFile = join(runDir, "smtpd.log");
    this.spool = join(ROOT, this.#queueDir, "incoming");
  }

  writeConfig(extra: readonly string[] = this.#extra): void {
    this.#extra = extra;
    Deno.writeTextFileSync(
      join(ROOT, this.#configFile),
      [
        `queue_directory = "${this.#queueDir}"`,
        `smtpd_listen = ["127.0.0.1:${this.port}"]`,
        `myhostname = "bench.localdomain"`,
        `smtpd_peername_lookup = false`,
        `message_size_limit = 20000000`,
        ...(this.tls ? ourTlsConfig(this.tls, this.enginePort) : []),
        ...extra,
        "",
      ].join("\n"),
    );
  }

  rootPid(): Promise<number | null> {
    const pid = this.#child?.pid;
    return Promise.resolve(pid !== undefined && !this.#exited && alive(pid) ? pid : null);
  }

  async isDead(): Promise<boolean> {
    return this.#child !== null && this.#ready && await this.rootPid() === null;
  }

  async restart(): Promise<boolean> {
    const dead = await this.isDead();
    if (dead) note(`ours: SERVER DIED (pid ${this.#child?.pid}); log tail:\n${this.logTail()}`);
    await this.stop();
    this.writeConfig();
    await this.#start();
    return dead;
  }

  async #start(): Promise<void> {
    const flags = await flagsForArgs(["-c", this.#configFile]);
    const offset = this.#logSize();
    // setsid: our daemon gets a session (autogroup) of its own, as Postfix's
    // master does; setsid and sh exec, so the PID is Deno's.
    const child = new Deno.Command("setsid", {
      args: [
        "sh",
        "-c",
        'o=$1; shift; exec "$@" >>"$o" 2>&1',
        "sh",
        this.#logFile,
        Deno.execPath(),
        "run",
        ...flags,
        "mod.ts",
        "serve",
        "-c",
        this.#configFile,
      ],
      cwd: ROOT,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.#child = child;
    this.#exited = false;
    this.#ready = false;
    child.status.then(() => {
      if (this.#child === child) this.#exited = true;
    });
    const ready = `listening on 127.0.0.1:${this.port}`;
    for (let i = 0; i < 600; i++) {
      if (this.#logSince(offset).includes(ready)) {
        let exe = "";
        try {
          exe = Deno.readLinkSync(`/proc/${child.pid}/exe`);
        } catch { /* gone */ }
        if (exe !== Deno.execPath()) {
          throw new Error(`pid ${child.pid} runs ${exe || "nothing"}, not ${Deno.execPath()}`);
        }
        note(`ours: pid ${child.pid} on 127.0.0.1:${this.port} (queue ${this.#queueDir})`);
        this.#ready = true;
        return;
      }
      if (this.#exited) break;
      await sleep(100);
    }
    const why = this.#exited ? "exited" : "did not get ready within 60 s";
    throw new Error(`our server ${why}; log:\n${tail(this.#logSince(offset), 20)}`);
  }

  #logSize(): number {
    try {
      return Deno.statSync(this.#logFile).size;
    } catch {
      return 0;
    }
  }

  #logSince(offset: number): string {
    try {
      return decoder.decode(Deno.readFileSync(this.#logFile).subarray(offset));
    } catch {
      return "";
    }
  }

  logTail(): string {
    return tail(this.#logSince(0));
  }

  clear(how: ClearMode): Promise<void> {
    emptyDir(this.spool, how, join(this.runDir, "trash"));
    return Promise.resolve();
  }

  count(): Promise<number> {
    let n = 0;
    for (const e of Deno.readDirSync(this.spool)) {
      if (e.isFile && isComplete(join(this.spool, e.name))) n++;
    }
    return Promise.resolve(n);
  }

  problems(): string[] {
    return this.#logSince(0).split("\n").filter((l) => PROBLEM.test(l));
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    if (!this.#exited && alive(child.pid)) {
      const pids = processTree(child.pid);
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const done = await Promise.race([
        child.status.then(() => true),
        sleep(10000).then(() => false),
      ]);
      const left = pids.filter(alive);
      if (!done || left.length) {
        note(`ours: SIGKILL ${left.join(" ")}`);
        for (const pid of left) {
          try {
            Deno.kill(pid, "SIGKILL");
          } catch { /* gone */ }
        }
      }
    }
    await Promise.race([child.status, sleep(5000)]);
    this.#child = null;
  }
}

class PostfixServer implements Server {
  readonly label = "postfix";
  tls: BenchCert | undefined;
  readonly memKind = "pss";
  readonly spool: string;
  #master: number | null = null;
  #started = false;
  #earlierProblems: string[] = [];

  constructor(readonly port: number, readonly dir: string, readonly runDir: string) {
    this.#instance = new PostfixInstance(port, dir);
    this.spool = this.#instance.queue;
  }

  readonly #instance: PostfixInstance;

  rootPid(): Promise<number | null> {
    return Promise.resolve(this.#instance.masterPid());
  }

  async isDead(): Promise<boolean> {
    return this.#master !== null && await this.rootPid() === null;
  }

  async restart(): Promise<boolean> {
    const dead = await this.isDead();
    if (dead) note(`postfix: MASTER DIED; log tail:\n${this.logTail()}`);
    await this.stop();
    this.#started = true;
    const started = await this.#instance.start(this.tls ? postfixTlsConfig(this.tls) : "");
    this.#master = await this.rootPid();
    if (this.#master === null) throw new Error("postfix started but has no master pid");
    note(`postfix: ${started}`);
    return dead;
  }

  clear(how: ClearMode): Promise<void> {
    if (how === "move") {
      // Postfix's queue (hold/) is emptied the same way as ours.
      emptyDir(join(this.spool, "hold"), how, join(this.dir, "trash"));
    } else {
      this.#instance.clear();
    }
    return Promise.resolve();
  }

  count(): Promise<number> {
    return Promise.resolve(this.#instance.count());
  }

  #log(): string {
    try {
      return Deno.readTextFileSync(this.#instance.logFile);
    } catch {
      return "";
    }
  }

  logTail(): string {
    return tail(this.#log());
  }

  problems(): string[] {
    return [...this.#earlierProblems, ...this.#log().split("\n").filter((l) => PROBLEM.test(l))];
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    // The next start rewrites DIR (log included): keep this instance's problems.
    this.#earlierProblems = this.problems();
    const master = this.#master ?? await this.rootPid();
    const pids = master === null ? [] : processTree(master);
    await this.#instance.stop();
    if (master !== null) await stopTree(master, 5);
    for (const pid of pids.filter(alive)) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    this.#started = false;
    this.#master = null;
  }
}

// ---------------------------------------------------------------------------
// Runs

interface RunResult {
  seq: number;
  label: Label;
  caseId: string;
  mode: Mode;
  rep: number;
  sent: number;
  landed: number;
  elapsedS: number;
  rate: number;
  peakMiB: number;
  peakProcs: number;
  samples: number;
  samplerMs: number;
  samplerCpuS: number;
  samplerNiced: boolean;
  serverCpuS: number;
  sourceCpuS: number;
  benchCpuS: number;
  otherCpuS: number;
  stealS: number;
  rc: number;
  timedOut: boolean;
  /** The server was found dead before its next run (a crash after this one). */
  diedAfter: boolean;
  diedDuring: boolean;
  sourceOutput: string;
}

function failed(r: RunResult): boolean {
  return r.rc !== 0 || r.timedOut || r.landed !== r.sent || r.diedDuring || r.diedAfter;
}

let clkTck = 100;
let interrupted = false;

/** smtp-source arguments for a load case. */
function sourceArgs(c: LoadCase, mode: Mode, port: number): string[] {
  return [
    "-s",
    String(c.sessions),
    "-m",
    String(c.messages),
    "-l",
    String(c.size),
    ...(mode === "reuse" ? ["-d"] : []),
    "-f",
    SENDER,
    "-t",
    RECIPIENT,
    "-M",
    HELO,
    `127.0.0.1:${port}`,
  ];
}

/** The load command for a case: smtp-source, or the STARTTLS client for a TLS case. */
function loadCommand(
  c: LoadCase,
  mode: Mode,
  port: number,
  cert: BenchCert | undefined,
): [string, string[]] {
  const args = sourceArgs(c, mode, port);
  if (!c.tls) return [SMTP_SOURCE, args];
  if (!cert) throw new Error("a TLS case without a certificate");
  return tlsSourceCommand(cert, args);
}

async function runOne(
  server: Server,
  c: LoadCase,
  mode: Mode,
  rep: number,
  seq: number,
  opts: Options,
  workDir: string,
  previous: readonly RunResult[],
  cert: BenchCert | undefined,
): Promise<RunResult> {
  server.tls = c.tls ? cert : undefined;
  // A fresh server for every run: no run inherits processes or heap from the one before.
  if (await server.restart()) {
    const prev = previous.findLast((p) => p.label === server.label);
    if (prev) prev.diedAfter = true;
  }
  const [warmCmd, warmArgs] = loadCommand({ ...WARMUP, tls: c.tls }, "reuse", server.port, cert);
  const w = await execLogged(
    warmCmd,
    warmArgs,
    join(workDir, "warmup.out"),
    opts.timeoutS,
    true,
  );
  if (w.code !== 0 || w.timedOut) {
    throw new Error(`warm-up of ${server.label} failed (rc ${w.code}):\n${tail(w.output)}`);
  }
  await server.clear(opts.clear);
  const before = await server.count();
  if (before !== 0) throw new Error(`${server.label}: ${before} files left after clearing`);
  // Settle: the deletes reach the disk before the clock starts.
  await capture("sync", []);
  await sleep(1000);
  const root = await server.rootPid();
  if (root === null) throw new Error(`${server.label}: SERVER DIED before the measured run`);

  const [cmd, args] = loadCommand(c, mode, server.port, cert);
  const sampler = await Sampler.start(root, server.memKind, join(workDir, "sampler.json"));
  let sample: SampleReport | null = null;
  let m;
  try {
    const cpu0 = treeCpuTicks(root);
    const sys0 = systemTicks();
    const self0 = selfCpuTicks();
    const t0 = performance.now();
    const r = await execLogged(
      cmd,
      args,
      join(workDir, "smtp-source.out"),
      opts.timeoutS,
      true,
    );
    const t1 = performance.now();
    const stillAlive = alive(root);
    const cpu1 = treeCpuTicks(root);
    sample = await sampler.stop();
    m = { r, t0, t1, cpu0, cpu1, sys0, self0, stillAlive };
  } finally {
    if (!sample) await sampler.stop();
  }
  const { r, t0, t1, cpu0, cpu1, sys0, self0, stillAlive } = m;
  const sys1 = systemTicks();
  const self1 = selfCpuTicks();
  const landed = await server.count();

  // The STARTTLS client times itself (a Deno start-up is not the server's time).
  const elapsedS = (c.tls ? clientElapsedS(r.output) : undefined) ?? (t1 - t0) / 1000;
  const serverCpuS = stillAlive ? (cpu1 - cpu0) / clkTck : NaN;
  // This process's reaped children in the window: smtp-source and the whole sampler.
  // (Our server is a child too: when it died in the window, its CPU is in there as well.)
  const sourceCpuS = server.label === "ours" && !stillAlive
    ? NaN
    : Math.max(0, (self1.children - self0.children - sample.cpuTicks) / clkTck);
  const samplerCpuS = (sample.cpuTicks - sampler.startTicks) / clkTck; // after its start-up
  const benchCpuS = (self1.own - self0.own) / clkTck;
  const busyS = (sys1.busy - sys0.busy) / clkTck;
  return {
    seq,
    label: server.label,
    caseId: c.id,
    mode,
    rep,
    sent: c.messages,
    landed,
    elapsedS,
    rate: r.code === 0 && !r.timedOut ? c.messages / elapsedS : NaN,
    peakMiB: sample.peakKiB / 1024,
    peakProcs: sample.peakProcs,
    samples: sample.samples,
    samplerMs: sample.busyMs,
    samplerCpuS,
    samplerNiced: sample.niced,
    serverCpuS,
    sourceCpuS,
    benchCpuS,
    otherCpuS: busyS - (Number.isNaN(serverCpuS) ? 0 : serverCpuS) - (sourceCpuS || 0) -
      samplerCpuS -
      benchCpuS,
    stealS: (sys1.steal - sys0.steal) / clkTck,
    rc: r.code,
    timedOut: r.timedOut,
    diedAfter: false,
    diedDuring: !stillAlive,
    sourceOutput: r.output,
  };
}

function describeRun(r: RunResult): string {
  const flags = [
    r.landed !== r.sent ? `MISMATCH ${r.landed}/${r.sent}` : "",
    r.rc !== 0 ? `smtp-source rc=${r.rc}` : "",
    r.timedOut ? "TIMED OUT" : "",
    r.diedDuring ? "SERVER DIED" : "",
    r.diedAfter ? "SERVER DIED AFTER THIS RUN" : "",
  ].filter(Boolean).join(" ");
  return `${r.label.padEnd(7)} (${r.caseId}) ${r.mode.padEnd(5)} rep ${r.rep}: ` +
    `${fmtNum(r.rate, 1).padStart(7)} msg/s ${r.elapsedS.toFixed(2).padStart(6)} s ` +
    `landed ${r.landed}/${r.sent} peak ${r.peakMiB.toFixed(1)} MiB ` +
    `${r.label === "ours" ? "RSS" : "PSS"} (${r.peakProcs} procs) ` +
    `cpu server ${fmtNum(r.serverCpuS, 2)} s src ${fmtNum(r.sourceCpuS, 2)} s ` +
    `other ${r.otherCpuS.toFixed(2)} s steal ${r.stealS.toFixed(2)} s; ` +
    `sampler ${r.samples} samples, ${fmtNum(r.samplerMs / r.samples, 1)} ms each, ` +
    `${r.samplerCpuS.toFixed(2)} s CPU${r.samplerNiced ? "" : " (NOT niced)"}` +
    `${flags ? `  ${flags}` : ""}`;
}

// ---------------------------------------------------------------------------
// Report

function median(xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function fmtNum(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : "-";
}

function sizeLabel(bytes: number): string {
  return bytes >= 1048576 ? `${bytes / 1048576} MiB` : `${bytes / 1024} KiB`;
}

const HEADER = [
  "case",
  "mode",
  "ours msg/s",
  "postfix msg/s",
  "ours/postfix",
  "landed ours/sent",
  "landed postfix/sent",
  "ours peak MiB (RSS)",
  "postfix peak MiB (PSS)",
  "mem ours/postfix",
  "ours CPU ms/msg",
  "postfix CPU ms/msg",
];

function summaryRows(results: RunResult[], opts: Options): string[][] {
  const rows: string[][] = [];
  for (const c of opts.cases) {
    for (const mode of opts.modes) {
      const pick = (label: Label) =>
        results.filter((r) => r.label === label && r.caseId === c.id && r.mode === mode);
      const ours = pick("ours");
      const pf = pick("postfix");
      if (!ours.length && !pf.length) continue;
      const rate = (rs: RunResult[]) => median(rs.filter((r) => !failed(r)).map((r) => r.rate));
      const landed = (rs: RunResult[]) => {
        const got = rs.reduce((s, r) => s + r.landed, 0);
        const sent = rs.reduce((s, r) => s + r.sent, 0);
        const bad = rs.some(failed);
        return `${got}/${sent}${bad ? " MISMATCH" : ""}`;
      };
      const cpu = (rs: RunResult[]) =>
        median(rs.filter((r) => r.landed > 0).map((r) => (r.serverCpuS / r.landed) * 1000));
      const ro = rate(ours);
      const rp = rate(pf);
      const mo = ours.length ? Math.max(...ours.map((r) => r.peakMiB)) : NaN;
      const mp = pf.length ? Math.max(...pf.map((r) => r.peakMiB)) : NaN;
      rows.push([
        `(${c.id}) ${c.sessions} x ${c.messages} x ${sizeLabel(c.size)}`,
        mode,
        fmtNum(ro, 1),
        fmtNum(rp, 1),
        fmtNum(ro / rp, 2),
        landed(ours),
        landed(pf),
        fmtNum(mo, 1),
        fmtNum(mp, 1),
        fmtNum(mo / mp, 2),
        fmtNum(cpu(ours), 2),
        fmtNum(cpu(pf), 2),
      ]);
    }
  }
  return rows;
}

function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

function mdTable(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

interface Machine {
  lines: string[];
}

async function describeMachine(ours: Server, pf: Server): Promise<Machine> {
  const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown";
  const memKiB = Number(/^MemTotal:\s+(\d+)/m.exec(Deno.readTextFileSync("/proc/meminfo"))?.[1]);
  const kernel = Deno.readTextFileSync("/proc/sys/kernel/osrelease").trim();
  const nproc = await capture("nproc", []);
  const postfix = await capture("postconf", ["-d", "-h", "mail_version"]);
  const rev = await capture("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"]) ||
    "(not a git checkout)";
  const dirty = (await capture("git", ["-C", ROOT, "status", "--porcelain"])) !== "";
  const fs = async (p: string) =>
    (await capture("findmnt", ["-n", "-o", "SOURCE,FSTYPE", "-T", p]))
      .replace(/\s+/g, " ");
  const sameDev = Deno.statSync(ours.spool).dev === Deno.statSync(pf.spool).dev;
  const load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  return {
    lines: [
      `- CPU: ${nproc} (nproc) x ${model}`,
      `- Memory: ${(memKiB / 1048576).toFixed(1)} GiB`,
      `- Kernel: Linux ${kernel}`,
      `- Postfix ${postfix} (private instance, scripts/bench/postfix_instance.ts: every message on HOLD, ` +
      `cleanup fsyncs before 250)`,
      `- Deno ${Deno.version.deno} (V8 ${Deno.version.v8}); deno-smtpd ${rev}${
        dirty ? " (working tree has changes)" : ""
      }`,
      `- Queues: ours ${await fs(ours.spool)}, Postfix ${await fs(pf.spool)}; same filesystem: ${
        sameDev ? "yes" : "NO (figures not comparable)"
      }`,
      `- Load average before the run: ${load}`,
    ],
  };
}

/** Which section of the report file a run replaces: a run of TLS cases alone is the TLS section. */
function reportKind(opts: Options): string {
  if (opts.cases.every((c) => c.tls)) return "tls";
  return opts.quick ? "quick" : "full";
}

function markdown(
  results: RunResult[],
  opts: Options,
  machine: Machine,
  started: Date,
  problems: string[],
): string {
  const kind = reportKind(opts);
  const cmd = ["deno run -A scripts/bench.ts", ...Deno.args].join(" ");
  const when = started.toISOString().slice(0, 16).replace("T", " ");
  const details = results.map((r) => [
    String(r.seq),
    r.label,
    `(${r.caseId})`,
    r.mode,
    String(r.rep),
    r.elapsedS.toFixed(2),
    fmtNum(r.rate, 1),
    `${r.landed}/${r.sent}${r.landed !== r.sent ? " MISMATCH" : ""}`,
    `${r.peakMiB.toFixed(1)} (${r.peakProcs})`,
    fmtNum(r.serverCpuS, 2),
    fmtNum(r.sourceCpuS, 2),
    `${r.samplerCpuS.toFixed(2)} (${r.samples})`,
    r.otherCpuS.toFixed(2),
    r.stealS.toFixed(2),
    `${r.rc}${r.timedOut ? " timeout" : ""}${r.diedDuring || r.diedAfter ? " SERVER DIED" : ""}`,
  ]);
  return [
    `## ${when} UTC, ${kind} run`,
    "",
    `\`${cmd}\``,
    "",
    ...machine.lines,
    "",
    mdTable(HEADER, summaryRows(results, opts)),
    "",
    `smtp-source -s SESSIONS -m MESSAGES -l SIZE [-d] -f ${SENDER} -t ${RECIPIENT} -M ${HELO}` +
    `, 1 recipient per message; \`conn\` = one message per connection, \`reuse\` = -d. ` +
    (opts.cases.some((c) => c.tls)
      ? `TLS case (t): scripts/bench/tls_source.ts with the same options (EHLO, STARTTLS, EHLO, ` +
        `then lock-step MAIL/RCPT/DATA; one RSA 2048 certificate served by both servers, no ` +
        `session resumption); its msg/s = messages / the client's own elapsed time (first ` +
        `connect to last QUIT, without its start-up), and its warm-up is over STARTTLS too. `
      : "") +
    `msg/s = messages / wall time of smtp-source${
      opts.reps > 1 ? ` (median of ${opts.reps} runs; peak memory = maximum)` : ""
    }. ` +
    `Order alternates between the servers. Before every run the server is restarted, gets an ` +
    `untimed warm-up (${WARMUP.sessions} x ${WARMUP.messages} x 4 KiB, reuse) and its queue ` +
    (opts.clear === "move"
      ? `is emptied of its messages (complete files; our pool's empty files stay) by moving them ` +
        `into a trash directory that is removed when the bench ends. `
      : `is emptied of its messages by deleting them. `) +
    `Peak memory sampled every ${SAMPLE_MS} ms by a helper process at nice 19 in an ` +
    `autogroup of its own (so it takes no CPU share from the servers; when the CPUs are ` +
    `saturated it samples less often: see the sample counts below): ours = RSS summed over our server's ` +
    `process tree, Postfix = PSS summed over the master's tree. CPU = utime+stime ` +
    `(with reaped children) of the server's tree per message.`,
    "",
    "<details><summary>Every run, in order</summary>",
    "",
    mdTable(
      [
        "#",
        "server",
        "case",
        "mode",
        "rep",
        "s",
        "msg/s",
        "landed",
        "peak MiB (procs)",
        "server CPU s",
        "smtp-source CPU s",
        "sampler CPU s (samples)",
        "other CPU s",
        "steal s",
        "rc",
      ],
      details,
    ),
    "",
    "</details>",
    ...(problems.length ? ["", "Log problems:", "", ...problems.map((p) => `- ${p}`)] : []),
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------
// Main

async function preflight(): Promise<void> {
  if (Deno.uid() !== 0) throw new Error("run as root (the private Postfix instance needs it)");
  for (const f of [SMTP_SOURCE, "/usr/sbin/postfix"]) {
    try {
      Deno.statSync(f);
    } catch {
      throw new Error(`${f} not found (Debian package postfix)`);
    }
  }
  const tck = Number(await capture("getconf", ["CLK_TCK"]));
  if (tck > 0) clkTck = tck;
}

async function main(): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(Deno.args);
  } catch (e) {
    writeAll(Deno.stderr, `bench: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  await preflight();
  const started = new Date();
  const stamp = started.toISOString().replace(/[-:]/g, "").slice(0, 15);
  const runDir = join(ROOT, "var", "bench", `${stamp}-${Deno.pid}`);
  await Deno.mkdir(runDir, { recursive: true });
  const pfDir = await Deno.makeTempDir({ prefix: "bench-postfix-" });
  await Deno.chmod(pfDir, 0o755);
  const ourPort = freePort([]);
  const pfPort = freePort([ourPort]);
  const ours = new OurServer(ourPort, runDir, freePort([ourPort, pfPort]));
  ours.writeConfig(opts.ours);
  const pf = new PostfixServer(pfPort, pfDir, runDir);
  // The TLS case's certificate, served by both (Postfix reads it as root, before dropping privileges).
  const cert = opts.cases.some((c) => c.tls) ? await makeBenchCert(join(runDir, "tls")) : undefined;

  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    note("interrupted: stopping after cleanup");
    for (const c of inFlight) {
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
    }
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  const results: RunResult[] = [];
  let problems: string[] = [];
  let machine: Machine | null = null;
  let error: Error | null = null;
  try {
    note(`work directories: ${runDir} and ${pfDir}`);
    // Start both once up front: fail early, and describe the machine with both spools present.
    await pf.restart();
    await ours.restart();
    machine = await describeMachine(ours, pf);
    let seq = 0;
    let pair = 0;
    for (let rep = 1; rep <= opts.reps; rep++) {
      for (const c of opts.cases) {
        for (const mode of opts.modes) {
          const order: Server[] = pair++ % 2 === 0 ? [ours, pf] : [pf, ours];
          for (const server of order) {
            if (interrupted) throw new Error("interrupted");
            note(
              `${server.label}: case (${c.id}) ${c.sessions} x ${c.messages} x ` +
                `${sizeLabel(c.size)} ${mode} rep ${rep} ...`,
            );
            const r = await runOne(server, c, mode, rep, ++seq, opts, runDir, results, cert);
            results.push(r);
            note(describeRun(r));
            if (failed(r)) {
              note(
                `!!! ${server.label} (${c.id}) ${mode}: MISMATCH or failure; smtp-source said:\n` +
                  (tail(r.sourceOutput, 5) || "(nothing)"),
              );
            }
          }
        }
      }
    }
  } catch (e) {
    error = e as Error;
  } finally {
    problems = [
      ...ours.problems().slice(0, 10).map((l) => `ours: ${l}`),
      ...pf.problems().slice(0, 10).map((l) => `postfix: ${l}`),
    ];
    const ourProblemCount = ours.problems().length;
    const pfProblemCount = pf.problems().length;
    if (ourProblemCount + pfProblemCount) {
      note(`log problems: ours ${ourProblemCount}, postfix ${pfProblemCount} lines`);
    }
    for (const server of [ours, pf]) {
      if (await server.isDead().catch(() => false)) {
        note(`${server.label}: SERVER DIED (found dead when the bench ended)`);
        const prev = results.findLast((p) => p.label === server.label);
        if (prev && !prev.diedDuring) prev.diedAfter = true;
      }
    }
    await ours.stop().catch((e) => note(`stopping ours: ${e.message}`));
    await pf.stop().catch((e) => note(`stopping postfix: ${e.message}`));
    if (opts.keep) {
      note(`kept ${runDir} and ${pfDir}`);
    } else {
      await Deno.remove(runDir, { recursive: true }).catch(() => {});
      await Deno.remove(join(ROOT, "var", "bench")).catch(() => {}); // only when empty
      await Deno.remove(pfDir, { recursive: true }).catch(() => {});
    }
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }

  if (results.length && machine) {
    const rows = summaryRows(results, opts);
    out(textTable(HEADER, rows));
    out();
    const md = markdown(results, opts, machine, started, problems);
    out(md);
    if (opts.write && error) {
      note(`not writing ${opts.write}: the run did not complete`);
    } else if (opts.write) {
      const file = resolve(opts.write);
      let text = "# Benchmarks\n";
      try {
        text = Deno.readTextFileSync(file);
      } catch { /* a new file */ }
      const kind = reportKind(opts);
      Deno.writeTextFileSync(file, replaceSection(text, kind, md));
      note(`wrote the ${kind} run into ${file}`);
    }
  }
  const bad = results.filter(failed);
  for (const r of bad) note(`MISMATCH/FAILURE: ${describeRun(r)}`);
  if (error) {
    note(`bench: ${error.message}`);
    return 1;
  }
  return bad.length ? 1 : 0;
}

if (import.meta.main) {
  Deno.exit(await (Deno.args[0] === "--sampler" ? samplerMain(Deno.args.slice(1)) : main()));
}
