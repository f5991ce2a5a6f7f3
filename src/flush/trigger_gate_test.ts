import assert from "node:assert/strict";
import { TriggerClock, TriggerGate } from "./trigger_gate.ts";

function counter(ok = true): { send: () => Promise<boolean>; times: number[] } {
  const times: number[] = [];
  return {
    times,
    send: () => {
      times.push(Date.now());
      return Promise.resolve(ok);
    },
  };
}

/**
 * Date.now, or the time it was when frozen: a burst asked "at once" stays
 * within one interval however long a loaded host holds the thread.
 */
function freezable() {
  let frozen: number | undefined;
  return {
    now: () => frozen ?? Date.now(),
    freeze: () => void (frozen = Date.now()),
    thaw: () => void (frozen = undefined),
  };
}

Deno.test("TriggerGate: a burst of requests makes one write now and one when the interval ends", async () => {
  const clock = new TriggerClock();
  const c = counter();
  const t = freezable();
  const gate = new TriggerGate("qmgr FADI", c.send, { clock, intervalMs: 200, now: t.now });
  t.freeze();
  const outcomes = await Promise.all(Array.from({ length: 100 }, () => gate.request()));
  t.thaw();
  assert.equal(outcomes[0], "sent");
  assert.ok(outcomes.slice(1).every((o) => o === "deferred"), outcomes.join());
  await gate.settled();
  assert.equal(c.times.length, 2);
  assert.ok((c.times[1] as number) - (c.times[0] as number) >= 195, c.times.join());
});

Deno.test("TriggerGate: two threads' gates on one clock write once per interval together", async () => {
  const clock = new TriggerClock();
  const copy = new TriggerClock(clock.buffer); // what a listener thread adopts
  const c = counter();
  const t = freezable();
  const a = new TriggerGate("qmgr FADI", c.send, { clock, intervalMs: 200, now: t.now });
  const b = new TriggerGate("qmgr FADI", c.send, { clock: copy, intervalMs: 200, now: t.now });
  t.freeze();
  for (let i = 0; i < 50; i++) {
    await a.request();
    await b.request();
  }
  t.thaw();
  await Promise.all([a.settled(), b.settled()]);
  assert.equal(c.times.length, 2, "one now, one for everything asked meanwhile");
  // Another target has its own cell.
  const w = counter();
  await new TriggerGate("qmgr W", w.send, { clock, intervalMs: 200 }).request();
  assert.equal(w.times.length, 1);
});

Deno.test("TriggerGate: a request after the interval is written at once", async () => {
  let now = 10_000;
  const clock = new TriggerClock();
  const c = counter();
  const gate = new TriggerGate("x", c.send, { clock, intervalMs: 1000, now: () => now });
  assert.equal(await gate.request(), "sent");
  now += 1000;
  assert.equal(await gate.request(), "sent");
  assert.equal(c.times.length, 2);
});

Deno.test("TriggerGate: a failed write shuts the gate only when failures count", async () => {
  const clock = new TriggerClock();
  const fails = counter(false);
  const etrn = new TriggerGate("qmgr FADI", fails.send, {
    clock,
    intervalMs: 60_000,
    failureCounts: false,
  });
  assert.equal(await etrn.request(), "failed");
  assert.equal(await etrn.request(), "failed", "tried again at once");
  const wake = new TriggerGate("qmgr W", fails.send, { clock, intervalMs: 60_000 });
  assert.equal(await wake.request(), "failed");
  assert.equal(await wake.request(), "deferred");
  assert.equal(fails.times.length, 3);
});

Deno.test("TriggerClock.cellOf: known targets have cells of their own", () => {
  const cells = ["qmgr FADI", "qmgr W", "pickup W"].map(TriggerClock.cellOf);
  assert.equal(new Set(cells).size, 3);
  assert.ok(TriggerClock.cellOf("other X") >= 3 && TriggerClock.cellOf("other X") < 8);
});
