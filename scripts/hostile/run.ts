/**
 * The hostile harness's run: starts the real server (STARTTLS offered;
 * a second instance with the PROXY protocol for the PROXY attacks) and
 * the legitimate stream, then runs each attack in its own window and
 * measures, per attack: the stream's messages/s, worst 250 latency and
 * longest stall, the server's peak RSS, whether it lived and greets, and
 * acknowledged against complete queue files. Everything is on loopback,
 * every window is bounded, and every process is stopped by its PID.
 *
 * @module
 */

import { join } from "node:path";
import {
  type Attack,
  type AttackContext,
  type AttackOutcome,
  type Check,
  RATE_LIMITS,
  STRESS,
  type Target,
} from "./attack.ts";
import { ATTACKS, HARD_ERROR_LIMIT, JUNK_COMMAND_LIMIT } from "./attacks/mod.ts";
import { Ledger } from "./ledger.ts";
import { LegitStream } from "./legit_stream.ts";
import { failures, type Row, TARGETS } from "./report.ts";
import { makeCertificate, ROOT, ServerUnderTest } from "./server.ts";
import { type Dovecot, hasDovecot, startDovecot } from "../../tests/_dovecot.ts";

/** Options for {@linkcode runHostile}. */
export interface HostileOptions {
  /** Short form: windows of 1.5-6 s that end early once the stream flows. */
  quick: boolean;
  /** Attack names to run (all when empty). */
  only: readonly string[];
  /** Fixed window length in seconds (overrides the mode's). */
  seconds?: number;
  /** Keep the work directory (queues, logs). */
  keep: boolean;
  /** Progress lines (stderr). */
  progress: (line: string) => void;
  /** Aborts the whole run (SIGINT). */
  signal?: AbortSignal;
}

/** The result of a run. */
export interface HostileReport {
  quick: boolean;
  started: string;
  seconds: number;
  rows: Row[];
  /** Attacks that did not run (their instance could not start, or the run was stopped). */
  notRun: string[];
  pass: boolean;
  workDir: string;
}

/** A server instance with its ledger and legitimate stream. */
interface Instance {
  server: ServerUnderTest;
  ledger: Ledger;
  stream: LegitStream | undefined;
  smtpSource: boolean;
  /** It failed a target: restart it before the next attack. */
  dirty: boolean;
  proxyClient?: string;
  /** AUTH through a private Dovecot, started with the instance (when installed). */
  sasl?: boolean;
  dovecot?: Dovecot;
  /** The configuration without the SASL lines (added once Dovecot runs). */
  baseConfig: string;
}

const PROXY_CLIENT = "192.0.2.10";

/**
 * Runs the selected attacks.
 * @param opts mode, selection, progress
 * @returns the rows
 */
export async function runHostile(opts: HostileOptions): Promise<HostileReport> {
  const selected = opts.only.length
    ? opts.only.map((n) => {
      const a = ATTACKS.find((x) => x.name === n);
      if (!a) throw new Error(`unknown attack "${n}" (known: ${ATTACKS.map((x) => x.name)})`);
      return a;
    })
    : [...ATTACKS];
  const started = new Date();
  const workDir = join(
    ROOT,
    "var",
    "hostile",
    `${started.toISOString().replace(/[:.]/g, "-")}-${Deno.pid}`,
  );
  await Deno.mkdir(workDir, { recursive: true });
  const rel = (p: string) => p.slice(ROOT.length);
  const instances: Instance[] = [];
  const rows: Row[] = [];
  try {
    const certDir = join(workDir, "tls");
    await Deno.mkdir(certDir);
    const { cert, key } = await makeCertificate(certDir);
    const common = [
      `myhostname = "mx.hostile.example"`,
      `mydestination = ["hostile.example"]`,
      `smtpd_peername_lookup = false`,
      `smtpd_junk_command_limit = ${JUNK_COMMAND_LIMIT}`,
      `smtpd_hard_error_limit = ${HARD_ERROR_LIMIT}`,
      `default_process_limit = ${STRESS.processLimit}`,
      `smtpd_stress_threshold = ${STRESS.thresholdPercent}`,
      `smtpd_stress_timeout = ${STRESS.timeoutS}`,
      `smtpd_stress_starttls_timeout = ${STRESS.timeoutS}`,
    ];
    const tlsFiles = [
      `smtpd_tls_security_level = "may"`,
      `smtpd_tls_cert_file = "${rel(cert)}"`,
      `smtpd_tls_key_file = "${rel(key)}"`,
    ];
    const lazy = new Map<Target, () => Instance>([
      ["main", () =>
        makeInstance(workDir, "main", [
          ...common,
          `mynetworks = ["127.0.0.1/32"]`,
          `smtpd_tls_security_level = "may"`,
          `smtpd_tls_cert_file = "${rel(cert)}"`,
          `smtpd_tls_key_file = "${rel(key)}"`,
        ], { smtpSource: true })],
      ["proxy", () =>
        makeInstance(workDir, "proxy", [
          ...common,
          `mynetworks = ["127.0.0.1/32", "192.0.2.0/24"]`,
          `smtpd_upstream_proxy_protocol = "haproxy"`,
          `smtpd_upstream_proxy_networks = ["127.0.0.1/32"]`,
        ], { smtpSource: false, proxyClient: PROXY_CLIENT })],
      ["tls", () =>
        makeInstance(workDir, "tls", [
          ...common,
          `mynetworks = ["127.0.0.1/32"]`,
          ...tlsFiles,
          `smtpd_client_new_tls_session_rate_limit = ${RATE_LIMITS.newTlsSession}`,
          `smtpd_client_auth_rate_limit = ${RATE_LIMITS.auth}`,
        ], { smtpSource: true, wrapper: true, sasl: hasDovecot() })],
    ]);
    const running = new Map<Target, Instance>();
    const broken = new Set<Target>();
    for (const [index, attack] of selected.entries()) {
      if (opts.signal?.aborted) break;
      if (broken.has(attack.target)) continue; // its row is missing, so the run fails
      let inst = running.get(attack.target);
      if (!inst) {
        // One PROXY instance at a time beside the main one; stop it when no longer needed.
        inst = lazy.get(attack.target)!();
        instances.push(inst);
        opts.progress(`starting the ${attack.target} instance`);
        try {
          await startInstance(inst);
        } catch (e) {
          opts.progress(`cannot start: ${(e as Error).message}`);
          broken.add(attack.target);
          continue;
        }
        running.set(attack.target, inst);
      }
      if (inst.dirty) {
        opts.progress(
          `${inst.server.spec.name} instance ${
            inst.server.exited
              ? `died (status ${inst.server.exitCode})`
              : "failed a target in the last attack"
          }; restarting it`,
        );
        await stopInstance(inst);
        try {
          await startInstance(inst);
        } catch (e) {
          opts.progress(`cannot restart: ${(e as Error).message}`);
          running.delete(attack.target);
          broken.add(attack.target);
          continue;
        }
      }
      opts.progress(`${attack.name}: ${attack.summary}`);
      const row = await runOne(attack, inst, index, opts);
      rows.push(row);
      const f = failures(row);
      opts.progress(
        `${attack.name}: ${f.length ? `FAIL (${f.join("; ")})` : "pass"}; stall ${
          (row.stream.longestStallMs / 1000).toFixed(2)
        } s, ${row.stream.msgsPerSec.toFixed(1)} msgs/s, RSS ${row.peakRssMiB.toFixed(0)} MiB`,
      );
      // A server that failed a target (dead, wedged, bloated) would spoil the next row:
      // every row starts from a server that passed the one before, or a fresh one.
      if (f.length) inst.dirty = true;
      const next = selected[index + 1];
      if (attack.target !== "main" && next?.target !== attack.target) {
        await stopInstance(inst);
        running.delete(attack.target);
      }
    }
  } finally {
    for (const inst of instances) await stopInstance(inst);
    if (!opts.keep) await Deno.remove(workDir, { recursive: true }).catch(() => {});
  }
  const seconds = (Date.now() - started.getTime()) / 1000;
  return {
    quick: opts.quick,
    started: started.toISOString().slice(0, 19).replace("T", " "),
    seconds,
    rows,
    notRun: selected.filter((a) => !rows.some((r) => r.attack === a.name)).map((a) => a.name),
    pass: rows.length === selected.length && rows.every((r) => failures(r).length === 0),
    workDir,
  };
}

function makeInstance(
  workDir: string,
  name: string,
  config: string[],
  o: { smtpSource: boolean; proxyClient?: string; wrapper?: boolean; sasl?: boolean },
): Instance {
  const dir = join(workDir, name);
  const server = new ServerUnderTest({
    name,
    dir,
    config: config.join("\n"),
    ...(o.proxyClient ? { proxyHeader: `PROXY TCP4 ${o.proxyClient} 127.0.0.1 1 25` } : {}),
    ...(o.wrapper ? { wrapper: true } : {}),
  });
  return {
    server,
    ledger: new Ledger(server.queueDir, join(dir, "swept")),
    stream: undefined,
    smtpSource: o.smtpSource,
    dirty: false,
    ...(o.proxyClient ? { proxyClient: o.proxyClient } : {}),
    ...(o.sasl ? { sasl: true } : {}),
    baseConfig: config.join("\n"),
  };
}

async function startInstance(inst: Instance): Promise<void> {
  await Deno.mkdir(inst.server.spec.dir, { recursive: true });
  if (inst.sasl && !inst.dovecot) {
    // A private Dovecot (auth only) on a free loopback port and a UNIX socket, as the tests run it.
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    inst.dovecot = await startDovecot(port, { mechanisms: "plain login" });
    inst.server.spec.config = `${inst.baseConfig}\nsmtpd_sasl_auth_enable = true\n` +
      `smtpd_sasl_path = "${inst.dovecot.socket}"`;
  }
  await inst.server.start();
  inst.dirty = false;
  inst.stream = await LegitStream.start({
    port: inst.server.port,
    ledger: inst.ledger,
    smtpSource: inst.smtpSource,
    ...(inst.proxyClient ? { proxyClient: inst.proxyClient } : {}),
  });
}

async function stopInstance(inst: Instance): Promise<void> {
  await inst.stream?.stop().catch(() => {});
  inst.stream = undefined;
  await inst.server.stop();
  const dovecot = inst.dovecot;
  inst.dovecot = undefined;
  await dovecot?.dispose();
}

async function runOne(
  attack: Attack,
  inst: Instance,
  index: number,
  opts: HostileOptions,
): Promise<Row> {
  const { server, ledger } = inst;
  const stream = inst.stream!;
  const fixedMs = opts.seconds !== undefined ? opts.seconds * 1000 : opts.quick ? 0 : 15_000;
  const minMs = opts.quick ? attack.quickMinMs ?? 1500 : fixedMs;
  const maxMs = opts.quick ? Math.max(6000, minMs + 1000) : fixedMs;
  const readyLimitMs = opts.quick ? 8000 : 20_000;
  const mark = server.logMark;
  const ctlBefore = server.controlBytes;
  const exitsBefore = stream.volumeExits.length;
  server.resetPeak();
  const window = new AbortController();
  const onOuterAbort = () => window.abort();
  opts.signal?.addEventListener("abort", onOuterAbort);
  const ended = new Promise<void>((r) => window.signal.addEventListener("abort", () => r()));
  const readyP = Promise.withResolvers<number>();
  const t0 = Date.now();
  const ctx: AttackContext = {
    port: server.port,
    wrapperPort: server.wrapperPort,
    auth: inst.dovecot !== undefined,
    server,
    ledger,
    quick: opts.quick,
    signal: window.signal,
    ready: () => readyP.resolve(Date.now()),
    address: (host) => `127.0.${10 + index}.${1 + (host % 254)}`,
    ended,
  };
  const notes: string[] = [];
  const outcomeP: Promise<AttackOutcome> = attack.run(ctx).catch((e) => ({
    checks: [{ name: "attack ran", ok: false, detail: `harness error: ${(e as Error).message}` }],
    notes: [],
  }));
  // The window: from ready, a fixed time (full), or at least minMs and until the stream
  // flows again, at most maxMs (quick).
  let readyAt = await withTimeout(readyP.promise, readyLimitMs, () => Date.now());
  readyAt = Math.min(readyAt, Date.now());
  if (Date.now() - t0 >= readyLimitMs) notes.push("attack not at full strength in time");
  for (;;) {
    const since = Date.now() - readyAt;
    if (window.signal.aborted || server.exited) break;
    if (opts.quick && opts.seconds === undefined) {
      if (since >= maxMs || (since >= minMs && stream.allAckedWithin(1000))) break;
    } else if (since >= fixedMs) break;
    await sleep(50);
  }
  const t1 = Date.now();
  window.abort();
  opts.signal?.removeEventListener("abort", onOuterAbort);
  const outcome = await withTimeout(outcomeP, 20_000, (): AttackOutcome => ({
    checks: [{ name: "attack stopped", ok: false, detail: "still running 20 s after its window" }],
    notes: [],
  }));
  // Past 5 s the stall fails its target anyway: the short form waits no longer.
  const graceMs = opts.quick ? 6000 : 10_000;
  const rec = server.exited ? { at: Date.now(), ok: false } : await stream.recovered(t1, graceMs);
  const peakRssMiB = server.peakMiB();
  const lived = !server.exited;
  const greets = lived && await server.greets(graceMs);
  const settled = await ledger.sweep();
  const checks: Check[] = [
    ...outcome.checks,
    ...(outcome.verify?.(settled.files) ?? []),
    {
      name: "log free of raw control bytes",
      ok: server.controlBytes === ctlBefore,
      detail: server.controlBytes === ctlBefore
        ? "none"
        : `${server.controlBytes - ctlBefore} raw control bytes, first: ${server.controlSample}`,
    },
  ];
  const exits = stream.volumeExits.slice(exitsBefore);
  if (exits.length) notes.push(`smtp-source stopped ${exits.length}x (${exits[0]})`);
  if (outcome.rssTarget) {
    notes.push(`peak RSS target ${outcome.rssTarget.miB.toFixed(0)} MiB: ${outcome.rssTarget.why}`);
  }
  notes.push(...logDigest(server.logSince(mark)));
  if (!lived) {
    notes.push(
      `server exited with status ${server.exitCode}; last log: ${
        server.logSince(mark).slice(-3).join(" | ").slice(0, 400)
      }`,
    );
  }
  return {
    attack: attack.name,
    summary: attack.summary,
    target: attack.target,
    windowS: (t1 - t0) / 1000,
    stream: stream.window(t0, t1, rec.at),
    recovered: rec.ok,
    peakRssMiB,
    rssTargetMiB: outcome.rssTarget?.miB ?? TARGETS.maxRssMiB,
    lived,
    greets,
    acked: settled.acked,
    complete: settled.complete,
    ackProblems: settled.problems,
    checks,
    notes: [...outcome.notes, ...notes],
  };
}

/**
 * The most frequent warnings and errors of a stretch of log, digits and
 * addresses folded, for the notes.
 * @param lines log lines
 * @returns up to three "N x text" notes
 */
export function logDigest(lines: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const line of lines) {
    const text = line.replace(/^.*?\]: /, "");
    if (!/warning|error|fatal|panic|uncaught|limit|timeout/i.test(text)) continue;
    const key = text.replace(/\[[^\]]*\]/g, "[.]").replace(/\d+/g, "N").slice(0, 120);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, n]) => `log ${n}x: ${k}`);
}

/** A promise's value, or the fallback's after `ms` (the timer is cleared either way). */
async function withTimeout<T>(p: Promise<T>, ms: number, fallback: () => T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<T>((r) => timer = setTimeout(() => r(fallback()), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
