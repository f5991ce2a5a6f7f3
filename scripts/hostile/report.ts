/**
 * One row per attack, its verdict against the targets of issue 14, and
 * the Markdown table and summary the harness prints.
 *
 * @module
 */

import type { Check } from "./attack.ts";
import type { WindowStats } from "./legit_stream.ts";

/** The targets every attack is held to. */
export const TARGETS = {
  /** Longest a legitimate session may go without an acknowledged message. */
  maxStallMs: 5000,
  /** Peak RSS of the server during any attack. */
  maxRssMiB: 256,
} as const;

/** What one attack did to the server and to the legitimate stream. */
export interface Row {
  attack: string;
  summary: string;
  target: "main" | "proxy" | "tls";
  /** Seconds the attack's window lasted (start to end of the attack). */
  windowS: number;
  stream: WindowStats;
  /** The stream had recovered (every session acknowledged a message) after the attack. */
  recovered: boolean;
  peakRssMiB: number;
  /** The peak RSS target this row is held to: the common one, or the attack's own. */
  rssTargetMiB: number;
  /** The process was running throughout. */
  lived: boolean;
  /** A fresh connection got 220 after the attack. */
  greets: boolean;
  acked: number;
  complete: number;
  ackProblems: string[];
  checks: Check[];
  notes: string[];
}

/**
 * Why a row fails its targets (empty: it passes).
 * @param row the row
 * @returns the reasons
 */
export function failures(row: Row): string[] {
  const why: string[] = [];
  if (!row.lived) why.push("server died");
  else if (!row.greets) why.push("no greeting after the attack");
  if (!row.recovered) why.push("legitimate stream did not recover");
  if (row.stream.longestStallMs >= TARGETS.maxStallMs) {
    why.push(`stall ${(row.stream.longestStallMs / 1000).toFixed(1)} s`);
  }
  if (row.peakRssMiB >= row.rssTargetMiB) {
    why.push(`RSS ${row.peakRssMiB.toFixed(0)} MiB (target ${row.rssTargetMiB.toFixed(0)})`);
  }
  if (row.complete < row.acked || row.ackProblems.length) {
    why.push(
      `${Math.max(row.acked - row.complete, row.ackProblems.length)} acknowledged not found intact`,
    );
  }
  for (const c of row.checks) if (!c.ok) why.push(c.name);
  return why;
}

/**
 * The Markdown table, notes and summary.
 * @param rows the rows
 * @param meta mode and duration
 * @returns the text
 */
export function formatReport(
  rows: readonly Row[],
  meta: { quick: boolean; seconds: number; started: string },
): string {
  const lines = [
    `## Hostile clients (${meta.quick ? "quick" : "full"} run, ${meta.started}, ${
      meta.seconds.toFixed(0)
    } s)`,
    "",
    "| attack | legit msgs/s | worst 250 latency ms | longest stall s | peak RSS MiB | server alive | acked/complete | verdict |",
    "|---|---:|---:|---:|---:|---|---:|---|",
  ];
  for (const r of rows) {
    const f = failures(r);
    lines.push(
      `| ${r.attack} | ${r.stream.msgsPerSec.toFixed(1)} | ${r.stream.worst250Ms.toFixed(0)} | ${
        (r.stream.longestStallMs / 1000).toFixed(2)
      } | ${r.peakRssMiB.toFixed(0)} | ${
        r.lived ? (r.greets ? "yes" : "yes, no greeting") : "no"
      } | ${r.acked}/${r.complete} | ${f.length ? `FAIL: ${f.join("; ")}` : "pass"} |`,
    );
  }
  lines.push("", "Notes:", "");
  for (const r of rows) {
    const parts = [
      r.summary,
      ...r.notes,
      `legit: ${r.stream.timedAcks} timed + ${r.stream.volumeAcks} smtp-source in ${
        r.windowS.toFixed(1)
      } s, worst connect-to-220 ${r.stream.worstGreetMs.toFixed(0)} ms` +
      (r.stream.failures
        ? `, ${r.stream.failures} failures (${r.stream.failureSamples.join("; ")})`
        : ""),
      ...r.checks.map((c) => `${c.ok ? "ok" : "FAILED"}: ${c.name}: ${c.detail}`),
      ...r.ackProblems.slice(0, 3),
    ];
    lines.push(`- **${r.attack}**: ${parts.join(". ")}`);
  }
  const failed = rows.filter((r) => failures(r).length);
  lines.push(
    "",
    `Targets: legitimate stream never stalled ${TARGETS.maxStallMs / 1000} s or more, server ` +
      `alive and greeting after every attack, peak RSS under ${TARGETS.maxRssMiB} MiB ` +
      "(100 concurrent header-bomb sessions included; an attack whose bytes the server " +
      "holds by design, dsn-bloat, under its own target, in its notes), 0 acknowledged " +
      "messages missing, " +
      "every attack's own checks.",
    failed.length
      ? `**FAIL**: ${failed.length} of ${rows.length} attacks miss a target: ${
        failed.map((r) => r.attack).join(", ")
      }.`
      : `**PASS**: all ${rows.length} attacks meet every target.`,
  );
  return lines.join("\n");
}
