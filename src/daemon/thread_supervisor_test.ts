import assert from "node:assert/strict";
import { ConnectionLedger, ConnectionLimiter } from "../transport/limits.ts";
import { type SupervisedThread, ThreadSupervisor } from "./thread_supervisor.ts";
import type { TestThreadInit } from "./_test_thread.ts";

/** Real Worker threads running _test_thread.ts, with the shared limiter. */
function harness(modes: TestThreadInit["mode"][], admits = 0) {
  const limiter = new ConnectionLimiter({ global: 100, perClient: 1, exempt: () => false });
  const lines: string[] = [];
  const workers: Worker[] = [];
  let starts = 0;
  const start = async (): Promise<SupervisedThread> => {
    const mode = modes[Math.min(starts, modes.length - 1)] as TestThreadInit["mode"];
    starts++;
    const ledger = new ConnectionLedger();
    const heartbeat = new SharedArrayBuffer(4);
    const worker = new Worker(new URL("./_test_thread.ts", import.meta.url), { type: "module" });
    workers.push(worker);
    await new Promise<void>((resolve) => {
      worker.onmessage = () => resolve();
      worker.postMessage(
        {
          mode,
          limiter: limiter.shared,
          ledger: ledger.shared,
          heartbeat,
          admits: starts === 1 ? admits : 0,
        } satisfies TestThreadInit,
      );
    });
    // Told to go on (die, hang or live) now: the supervisor adopts it, and
    // listens for its error, before this turn ends.
    worker.postMessage("go");
    return {
      worker,
      heartbeat: new Int32Array(heartbeat),
      release: () => ledger.returnTo(limiter),
    };
  };
  const log = {
    warning: (t: string) => lines.push(`warning: ${t}`),
    error: (t: string) => lines.push(`error: ${t}`),
  };
  return {
    limiter,
    lines,
    start,
    log,
    starts: () => starts,
    end: () => workers.forEach((w) => w.terminate()),
  };
}

/** Waits for a state; starting a Worker can take seconds on a loaded host. */
async function until(what: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("ThreadSupervisor: a thread that dies is logged, its slots given back, and replaced", async () => {
  const h = harness(["throw", "live"], 3);
  const sup = new ThreadSupervisor({ start: h.start, log: h.log, restartDelayMs: 10 });
  try {
    await sup.start(1);
    assert.equal(h.limiter.total, 3);
    // The per-client limit (1) holds for a client of the thread while it lives.
    assert.equal(h.limiter.enterClient("192.0.2.0"), false);
    await until(() => h.starts() === 2 && sup.threads.length === 1);
    assert.match(
      h.lines.join("\n"),
      /warning: listener thread 1 died: uncaught exception: .*boom; 3 connection slots released; starting another/,
    );
    assert.equal(h.limiter.total, 0);
    assert.equal(h.limiter.enterClient("192.0.2.0"), true);
  } finally {
    sup.stop();
    h.end();
  }
});

Deno.test("ThreadSupervisor: a thread whose heartbeat stops is ended and replaced", async () => {
  const h = harness(["hang", "live"], 2);
  const sup = new ThreadSupervisor({
    start: h.start,
    log: h.log,
    heartbeatTimeoutMs: 300,
    checkEveryMs: 50,
    restartDelayMs: 10,
  });
  try {
    await sup.start(1);
    // (On a loaded host the replacement, whose heart beats every 20 ms, may
    // itself go unscheduled for 300 ms and be replaced in turn.)
    await until(() => h.starts() >= 2 && sup.threads.length === 1);
    assert.match(
      h.lines[0] ?? "",
      /listener thread 1 died: not responding for \d+ s; 2 connection/,
    );
    assert.equal(h.limiter.total, 0);
  } finally {
    sup.stop();
    h.end();
  }
});

Deno.test("ThreadSupervisor: threads that keep dying make it give up", async () => {
  const h = harness(["throw"]);
  const sup = new ThreadSupervisor({
    start: h.start,
    log: h.log,
    maxDeaths: 3,
    restartDelayMs: 10,
  });
  try {
    await sup.start(1);
    const why = await sup.gaveUp;
    assert.match(why, /listener threads keep dying \(3 in 60 s\)/);
    assert.equal(h.starts(), 3);
    assert.match(h.lines.at(-1) ?? "", /^error: listener thread 1 died: .*giving up/);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(h.starts(), 3, "no thread started after giving up");
  } finally {
    sup.stop();
    h.end();
  }
});
