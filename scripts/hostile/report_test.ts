import assert from "node:assert/strict";
import { failures, formatReport, type Row } from "./report.ts";
import { logDigest } from "./run.ts";

function row(over: Partial<Row> = {}): Row {
  return {
    attack: "x",
    summary: "an attack",
    target: "main",
    windowS: 2,
    stream: {
      msgsPerSec: 50,
      timedAcks: 90,
      volumeAcks: 10,
      worst250Ms: 40,
      worstGreetMs: 5,
      longestStallMs: 200,
      failures: 0,
      failureSamples: [],
    },
    recovered: true,
    peakRssMiB: 80,
    rssTargetMiB: 256,
    lived: true,
    greets: true,
    acked: 100,
    complete: 100,
    ackProblems: [],
    checks: [],
    notes: [],
    ...over,
  };
}

Deno.test("failures() passes a row that meets every target", () => {
  assert.deepEqual(failures(row()), []);
});

Deno.test("failures() names each missed target", () => {
  const r = row({
    stream: { ...row().stream, longestStallMs: 5000 },
    peakRssMiB: 256,
    lived: false,
    recovered: false,
    complete: 98,
    ackProblems: ["legit: A acknowledged but not found", "legit: B acknowledged but not found"],
    checks: [{ name: "no smuggled message", ok: false, detail: "1 file" }],
  });
  assert.deepEqual(failures(r), [
    "server died",
    "legitimate stream did not recover",
    "stall 5.0 s",
    "RSS 256 MiB (target 256)",
    "2 acknowledged not found intact",
    "no smuggled message",
  ]);
  assert.deepEqual(failures(row({ greets: false })), ["no greeting after the attack"]);
});

Deno.test("formatReport() prints one table row per attack and the overall verdict", () => {
  const text = formatReport([row(), row({ attack: "y", peakRssMiB: 300 })], {
    quick: true,
    seconds: 40,
    started: "2026-12-04 01:00:00",
  });
  assert.match(text, /^\| x \| 50\.0 \| 40 \| 0\.20 \| 80 \| yes \| 100\/100 \| pass \|$/m);
  assert.match(text, /^\| y \| .* \| FAIL: RSS 300 MiB \(target 256\) \|$/m);
  assert.match(text, /\*\*FAIL\*\*: 1 of 2 attacks miss a target: y\./);
});

Deno.test("failures() holds a row to its attack's own RSS target", () => {
  assert.deepEqual(failures(row({ peakRssMiB: 300, rssTargetMiB: 400 })), []);
  assert.deepEqual(failures(row({ peakRssMiB: 420, rssTargetMiB: 400 })), [
    "RSS 420 MiB (target 400)",
  ]);
});

Deno.test("failures() holds a row to the stall target", () => {
  const stalled = { ...row().stream, longestStallMs: 6000 };
  assert.deepEqual(failures(row({ stream: stalled })), ["stall 6.0 s"]);
  assert.deepEqual(failures(row({ stream: { ...stalled, longestStallMs: 4900 } })), []);
});

Deno.test("logDigest() folds numbers and addresses and counts the commonest warnings", () => {
  const lines = [
    "Dec  4 01:00:00 mx postfix/smtpd[1]: connect from unknown[127.0.0.1]",
    "Dec  4 01:00:00 mx postfix/smtpd[1]: warning: Connection limit exceeded: 100 sessions; refused [127.0.12.1]",
    "Dec  4 01:00:01 mx postfix/smtpd[1]: warning: Connection limit exceeded: 100 sessions; refused [127.0.12.2]",
  ];
  assert.deepEqual(logDigest(lines), [
    "log 2x: warning: Connection limit exceeded: N sessions; refused [.]",
  ]);
});
