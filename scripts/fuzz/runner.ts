/**
 * The fuzz loop: for each target, generate inputs from a seeded generator
 * (input i of target t comes from seed (S, t, i) alone), check them, and
 * collect failures. Failing inputs are shrunk (greedy chunk deletion) and,
 * when asked, saved as hex under a corpus directory. Failures that match
 * a known, reported bug are counted apart.
 *
 * @module
 */

import { join } from "node:path";
import { fromHex, toHex, utf8 } from "./bytes.ts";
import { deriveSeed, fnv1a, Rng } from "./prng.ts";
import { failureCode, failureMessage, type FuzzTarget } from "./target.ts";

/** A bug already reported: its failures do not count as new ones. */
export interface KnownBug {
  /** Short id, e.g. "address-quoted-pair-control". */
  readonly id: string;
  /** The target whose failures it explains. */
  readonly target: string;
  /** One line for the report. */
  readonly summary: string;
  /** A minimal input that shows it (kept as an ignored regression test). */
  readonly input: Uint8Array;
  /**
   * Whether a failure is this bug.
   * @param input the failing input
   * @param err what the check threw
   * @returns true when the failure is explained by this bug
   */
  matches(input: Uint8Array, err: unknown): boolean | Promise<boolean>;
}

/** Options for {@linkcode runFuzz}. */
export interface FuzzOptions {
  /** The seed; the same seed gives the same inputs. */
  seed: number;
  /** Inputs per target (default: unlimited when a time budget is given, else 1000). */
  iterations?: number;
  /** Total wall-clock budget in ms, shared equally by the targets. */
  timeBudgetMs?: number;
  /** Only these targets (by name). */
  only?: readonly string[];
  /** Where to save failing inputs as hex (not saved when undefined). */
  corpusDir?: string;
  /** Bugs already reported. */
  knownBugs?: readonly KnownBug[];
  /** Progress and summary lines. */
  log?: (line: string) => void;
  /** Failing inputs to shrink and keep per target (default 3). */
  keepFailures?: number;
  /** Budget for shrinking one failing input, ms (default 3000). */
  shrinkMs?: number;
  /** Report a target's slowest input when its check took this long, ms (default 250). */
  slowMs?: number;
}

/** One kept failure. */
export interface FailureRecord {
  readonly target: string;
  readonly iteration: number;
  readonly code: string;
  readonly message: string;
  /** The shrunk input. */
  readonly input: Uint8Array;
  /** The corpus file it was saved to, if any. */
  readonly file?: string;
}

/** Per-target counts. */
export interface TargetStats {
  readonly name: string;
  inputs: number;
  failures: number;
  /** Known-bug id → hits. */
  readonly known: Map<string, number>;
  ms: number;
  readonly kept: FailureRecord[];
  /** The slowest input's check time, ms, its size and index. */
  slowest: { ms: number; bytes: number; iteration: number };
}

/** What {@linkcode runFuzz} found. */
export interface FuzzReport {
  readonly seed: number;
  readonly inputs: number;
  readonly failures: number;
  readonly targets: TargetStats[];
}

/**
 * The known bug that explains a failure, if any.
 * @param known the known bugs
 * @param target the target name
 * @param input the failing input
 * @param err what the check threw
 * @returns the bug, or undefined for a new failure
 */
export async function knownBug(
  known: readonly KnownBug[],
  target: string,
  input: Uint8Array,
  err: unknown,
): Promise<KnownBug | undefined> {
  for (const b of known) if (b.target === target && await b.matches(input, err)) return b;
  return undefined;
}

/**
 * Runs a check and returns what it threw, if anything.
 * @param target the target
 * @param input the input
 * @param thorough replay mode
 * @returns the error, or undefined when the input passed
 */
export async function tryCheck(
  target: FuzzTarget,
  input: Uint8Array,
  thorough: boolean,
): Promise<unknown> {
  try {
    await target.check(input, thorough);
    return undefined;
  } catch (err) {
    return err ?? new Error("threw a nullish value");
  }
}

/**
 * Shrinks a failing input by deleting chunks (halving sizes) while it
 * still fails the same way.
 * @param input the failing input
 * @param fails whether a candidate still shows the failure
 * @param budgetMs time limit
 * @returns the smallest failing input found
 */
export async function shrink(
  input: Uint8Array,
  fails: (candidate: Uint8Array) => Promise<boolean>,
  budgetMs: number,
): Promise<Uint8Array> {
  const deadline = performance.now() + budgetMs;
  let best = input;
  let chunk = Math.max(1, Math.floor(best.length / 2));
  while (chunk >= 1 && performance.now() < deadline) {
    let i = 0;
    let progressed = false;
    while (i < best.length && performance.now() < deadline) {
      const candidate = new Uint8Array(best.length - Math.min(chunk, best.length - i));
      candidate.set(best.subarray(0, i));
      candidate.set(best.subarray(i + chunk), i);
      if (await fails(candidate)) {
        best = candidate;
        progressed = true;
      } else {
        i += chunk;
      }
    }
    if (!progressed) chunk = Math.floor(chunk / 2);
    else chunk = Math.min(chunk, Math.max(1, Math.floor(best.length / 2)));
  }
  return best;
}

/**
 * Saves an input as hex under the corpus directory.
 * @param dir the corpus directory
 * @param target the target name
 * @param input the bytes
 * @param note a comment line (failure message, seed)
 * @returns the file path
 */
export async function saveCorpusInput(
  dir: string,
  target: string,
  input: Uint8Array,
  note: string,
): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const path = join(dir, `${target}.${fnv1a(input).toString(16).padStart(8, "0")}.hex`);
  const hex = toHex(input).replace(/(.{64})/g, "$1\n").trimEnd();
  const comment = note.split("\n").map((l) => `# ${l}`).join("\n");
  await Deno.writeFile(path, utf8(`${comment}\n${hex}\n`));
  return path;
}

/** One corpus file, read. */
export interface CorpusEntry {
  readonly file: string;
  readonly target: string;
  readonly input: Uint8Array;
}

/**
 * Reads every `<target>.<label>.hex` file of a corpus directory.
 * @param dir the directory
 * @returns the entries, sorted by file name
 */
export async function readCorpus(dir: string): Promise<CorpusEntry[]> {
  const out: CorpusEntry[] = [];
  let names: string[];
  try {
    names = (await Array.fromAsync(Deno.readDir(dir))).filter((e) => e.isFile).map((e) => e.name);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  for (const name of names.sort()) {
    if (!name.endsWith(".hex")) continue;
    const file = join(dir, name);
    out.push({
      file,
      target: name.slice(0, name.indexOf(".")),
      input: fromHex(await Deno.readTextFile(file)),
    });
  }
  return out;
}

/** One replayed corpus file that failed. */
export interface ReplayFailure {
  readonly file: string;
  readonly target: string;
  readonly message: string;
  /** The known bug that explains it, if any. */
  readonly knownBug?: string;
}

/**
 * Replays corpus files through their targets (thorough checks).
 * @param entries the corpus
 * @param targets the targets by name
 * @param known bugs already reported (their failures are marked, not hidden)
 * @returns the failures (an unknown target name is one)
 */
export async function replayCorpus(
  entries: readonly CorpusEntry[],
  targets: readonly FuzzTarget[],
  known: readonly KnownBug[] = [],
): Promise<ReplayFailure[]> {
  const failures: ReplayFailure[] = [];
  const byName = new Map(targets.map((t) => [t.name, t]));
  const used = new Set(entries.map((e) => e.target));
  for (const t of targets) if (used.has(t.name)) await t.setup?.();
  try {
    for (const e of entries) {
      const t = byName.get(e.target);
      if (!t) {
        failures.push({ file: e.file, target: e.target, message: "no such target" });
        continue;
      }
      const err = await tryCheck(t, e.input, true);
      if (err === undefined) continue;
      const bug = await knownBug(known, t.name, e.input, err);
      failures.push({
        file: e.file,
        target: e.target,
        message: failureMessage(err),
        ...(bug ? { knownBug: bug.id } : {}),
      });
    }
  } finally {
    for (const t of targets) if (used.has(t.name)) await t.teardown?.();
  }
  return failures;
}

/**
 * The summary line CI looks for.
 * @param r the report
 * @returns `fuzz: N inputs, F failures (seed S)`
 */
export function summaryLine(r: FuzzReport): string {
  return `fuzz: ${r.inputs} inputs, ${r.failures} failures (seed ${r.seed})`;
}

/**
 * Runs every target.
 * @param targets the targets
 * @param options seed, limits, corpus, known bugs
 * @returns the counts and kept failures
 */
export async function runFuzz(
  targets: readonly FuzzTarget[],
  options: FuzzOptions,
): Promise<FuzzReport> {
  const log = options.log ?? (() => {});
  const chosen = options.only ? targets.filter((t) => options.only?.includes(t.name)) : targets;
  const perTargetMs = options.timeBudgetMs === undefined
    ? Infinity
    : options.timeBudgetMs / Math.max(1, chosen.length);
  const maxIterations = options.iterations ??
    (options.timeBudgetMs === undefined ? 1000 : Infinity);
  const keep = options.keepFailures ?? 3;
  const known = options.knownBugs ?? [];
  const stats: TargetStats[] = [];
  log(
    `fuzz: seed ${options.seed}, ${chosen.length} targets, ${
      Number.isFinite(perTargetMs) ? `${(perTargetMs / 1000).toFixed(1)} s each` : "no time limit"
    }${Number.isFinite(maxIterations) ? `, at most ${maxIterations} inputs each` : ""}`,
  );
  for (const target of chosen) {
    const s: TargetStats = {
      name: target.name,
      inputs: 0,
      failures: 0,
      known: new Map(),
      ms: 0,
      kept: [],
      slowest: { ms: 0, bytes: 0, iteration: -1 },
    };
    stats.push(s);
    const start = performance.now();
    try {
      await target.setup?.();
    } catch (err) {
      s.failures++;
      s.kept.push({
        target: target.name,
        iteration: -1,
        code: "setup",
        message: failureMessage(err),
        input: new Uint8Array(),
      });
      log(`  ${target.name}: setup failed: ${failureMessage(err)}`);
      continue;
    }
    const shrinkMs = Math.min(options.shrinkMs ?? 3000, perTargetMs / 10);
    const tag = fnv1a(utf8(target.name));
    const codesSeen = new Set<string>();
    try {
      // Shrinking time is not charged to the input budget.
      let spentShrinking = 0;
      for (let i = 0; i < maxIterations; i++) {
        if (performance.now() - start - spentShrinking >= perTargetMs) break;
        const rng = new Rng(deriveSeed(options.seed, tag, i));
        const input = target.generate(rng);
        s.inputs++;
        const t = performance.now();
        const err = await tryCheck(target, input, false);
        const took = performance.now() - t;
        if (took > s.slowest.ms) s.slowest = { ms: took, bytes: input.length, iteration: i };
        if (err === undefined) continue;
        const bug = await knownBug(known, target.name, input, err);
        if (bug) {
          s.known.set(bug.id, (s.known.get(bug.id) ?? 0) + 1);
          continue;
        }
        s.failures++;
        const code = failureCode(err);
        // Keep the first few failures, one per failure code.
        if (s.kept.length >= keep || codesSeen.has(code)) continue;
        codesSeen.add(code);
        const t0 = performance.now();
        const small = await shrink(input, async (candidate) => {
          const e = await tryCheck(target, candidate, false);
          return e !== undefined && failureCode(e) === code &&
            !(await knownBug(known, target.name, candidate, e));
        }, shrinkMs);
        spentShrinking += performance.now() - t0;
        const smallErr = await tryCheck(target, small, false);
        const message = failureMessage(smallErr ?? err);
        let file: string | undefined;
        if (options.corpusDir) {
          file = await saveCorpusInput(
            options.corpusDir,
            target.name,
            small,
            `${message}\nfound by: deno task fuzz --seed ${options.seed} (input ${i} of ${target.name})`,
          );
        }
        s.kept.push({
          target: target.name,
          iteration: i,
          code,
          message,
          input: small,
          ...(file ? { file } : {}),
        });
        log(`  ${target.name}: FAILURE at input ${i}: ${message}`);
        log(
          `    input (${small.length} bytes, hex): ${toHex(small.subarray(0, 256))}${
            small.length > 256 ? "…" : ""
          }`,
        );
        if (file) log(`    saved to ${file}`);
      }
    } finally {
      await target.teardown?.();
    }
    s.ms = performance.now() - start;
    const rate = s.inputs / Math.max(s.ms / 1000, 1e-9);
    const knownText = [...s.known].map(([id, n]) => `, ${n} known-bug hits (${id})`).join("");
    log(
      `  ${target.name.padEnd(14)} ${String(s.inputs).padStart(8)} inputs ${
        String(s.failures).padStart(4)
      } failures ${rate.toFixed(0).padStart(7)}/s${knownText}`,
    );
    if (s.slowest.ms >= (options.slowMs ?? 250)) {
      log(
        `    slowest input: ${
          s.slowest.ms.toFixed(0)
        } ms (${s.slowest.bytes} bytes, input ${s.slowest.iteration})`,
      );
    }
  }
  const report: FuzzReport = {
    seed: options.seed,
    inputs: stats.reduce((n, s) => n + s.inputs, 0),
    failures: stats.reduce((n, s) => n + s.failures, 0),
    targets: stats,
  };
  log(summaryLine(report));
  return report;
}
