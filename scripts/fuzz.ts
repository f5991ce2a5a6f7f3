/**
 * `deno run -A scripts/fuzz.ts [--seed N] [--minutes M] [--iterations N] [--target NAME]...`:
 * property-based fuzzing of every parser that reads untrusted bytes. With
 * no limit given it runs one minute. Prints per target the inputs tried and
 * the failures, then `fuzz: N inputs, F failures (seed S)`; failing inputs
 * are shrunk and saved as hex under tests/fuzz_corpus/ (replayed by
 * tests/fuzz_test.ts). Exits 1 on any failure that is not a known bug.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DEFAULT_SEED, KNOWN_BUGS, runFuzz, TARGETS } from "./fuzz/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seed: { type: "string" },
    minutes: { type: "string" },
    iterations: { type: "string" },
    target: { type: "string", multiple: true },
    "no-save": { type: "boolean" },
    "include-known": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  },
});
const enc = new TextEncoder();
const out = (s: string) => Deno.stdout.writeSync(enc.encode(s + "\n"));
if (values.help) {
  out(
    "usage: deno run -A scripts/fuzz.ts [--seed N] [--minutes M] [--iterations N] " +
      "[--target NAME]... [--no-save] [--include-known]\n" +
      `targets: ${TARGETS.map((t) => t.name).join(", ")}`,
  );
  Deno.exit(0);
}
const num = (name: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    Deno.stderr.writeSync(enc.encode(`fuzz: --${name} wants a number, got "${v}"\n`));
    Deno.exit(2);
  }
  return n;
};
const seed = num("seed", values.seed) ?? DEFAULT_SEED;
const minutes = num("minutes", values.minutes);
const iterations = num("iterations", values.iterations);
const unknown = (values.target ?? []).filter((n) => !TARGETS.some((t) => t.name === n));
if (unknown.length) {
  Deno.stderr.writeSync(enc.encode(`fuzz: no target ${unknown.join(", ")}\n`));
  Deno.exit(2);
}
const root = new URL("..", import.meta.url).pathname;
for (const t of TARGETS) {
  if (!values.target || values.target.includes(t.name)) {
    out(`  ${t.name.padEnd(14)} ${t.description}`);
  }
}
const report = await runFuzz(TARGETS, {
  seed,
  ...(iterations !== undefined ? { iterations } : {}),
  ...(minutes !== undefined || iterations === undefined
    ? { timeBudgetMs: (minutes ?? 1) * 60_000 }
    : {}),
  ...(values.target ? { only: values.target } : {}),
  ...(values["no-save"] ? {} : { corpusDir: `${root}tests/fuzz_corpus` }),
  knownBugs: values["include-known"] ? [] : KNOWN_BUGS,
  log: out,
});
Deno.exit(report.failures > 0 ? 1 : 0);
