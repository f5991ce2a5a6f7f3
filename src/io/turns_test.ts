import assert from "node:assert/strict";
import {
  clientWasHeard,
  listenerClosed,
  listenerOpened,
  lookDue,
  lookEvery,
  MAX_POLL_MS,
  pause,
  pausesTaken,
  POLL_MS,
  resetTurns,
  sessionEnded,
  sessionStarted,
  TURN_MS,
  turnOver,
} from "./turns.ts";

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* the CPU work of a turn */ }
}

Deno.test("a session alone on the thread never pauses; with another it pauses after TURN_MS", () => {
  resetTurns();
  sessionStarted();
  const start = performance.now();
  busy(TURN_MS * 2);
  assert.equal(turnOver(start), false);
  sessionStarted();
  assert.equal(turnOver(start), true);
  // A turn that has only begun is not over.
  assert.equal(turnOver(performance.now() + 60_000), false);
  sessionEnded();
  sessionEnded();
  resetTurns();
});

Deno.test("paused sessions go on in the order they paused, the first after a look for I/O", async () => {
  resetTurns();
  const order: string[] = [];
  const a = pause().then(() => order.push("a"));
  const b = pause().then(() => order.push("b"));
  const c = pause().then(() => order.push("c"));
  // Nothing goes on before the event loop has had a round.
  await Promise.resolve();
  assert.deepEqual(order, []);
  await Promise.all([a, b, c]);
  assert.deepEqual(order, ["a", "b", "c"]);
  // The first waited for a timer (no look for I/O yet).
  assert.ok(pausesTaken().polled >= 1, JSON.stringify(pausesTaken()));
  resetTurns();
});

Deno.test("the look for I/O backs off while no client is heard from, and comes back to POLL_MS when one is", async () => {
  resetTurns();
  await pause(); // the first pause looks: nobody heard meanwhile
  assert.equal(lookEvery(), POLL_MS * 2);
  lookDue();
  await pause();
  assert.equal(lookEvery(), POLL_MS * 4);
  for (let i = 0; i < 4; i++) {
    lookDue();
    await pause();
  }
  assert.equal(lookEvery(), MAX_POLL_MS);
  // A client heard from while a pause waits for the look: back to POLL_MS.
  lookDue();
  const p = pause();
  clientWasHeard();
  await p;
  assert.equal(lookEvery(), POLL_MS);
  resetTurns();
});

Deno.test("a session alone with a listener on the thread pauses only for the looks for I/O", async () => {
  resetTurns();
  sessionStarted();
  const start = performance.now();
  busy(TURN_MS * 2);
  assert.equal(turnOver(start), false);
  listenerOpened();
  assert.equal(turnOver(start), true); // no look yet
  // Looks with nobody heard from: the wait between them grows to MAX_POLL_MS.
  for (let i = 0; i < 4; i++) {
    lookDue();
    await pause();
  }
  // A look has just been made: no pause owed, however long the turn. The
  // check counts when it comes within MAX_POLL_MS of the look (a loaded
  // host may hold the thread longer in between: the look is made again
  // then, a bounded number of times).
  let checked = false;
  for (let i = 0; i < 20 && !checked; i++) {
    lookDue();
    const before = performance.now();
    await pause();
    const over = turnOver(start);
    if (performance.now() - before < MAX_POLL_MS) {
      assert.equal(over, false);
      checked = true;
    }
  }
  assert.ok(checked, "no check came within MAX_POLL_MS of its look");
  lookDue();
  assert.equal(turnOver(start), true);
  // With another session it is a turn like any other.
  await pause();
  sessionStarted();
  assert.equal(turnOver(start), true);
  sessionEnded();
  listenerClosed();
  assert.equal(turnOver(start), false);
  sessionEnded();
  resetTurns();
});
