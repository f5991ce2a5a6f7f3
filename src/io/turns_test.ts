import assert from "node:assert/strict";
import {
  clientWasHeard,
  listenerClosed,
  listenerOpened,
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
  assert.equal(turnOver(performance.now()), false);
  sessionEnded();
  sessionEnded();
  resetTurns();
});

Deno.test("paused sessions go on one per round, in the order they paused, the first after a look for I/O", async () => {
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
  // The first waited for a timer (no look for I/O yet), the others were cheap.
  assert.deepEqual(pausesTaken(), { cheap: 2, polled: 1 });
  resetTurns();
});

Deno.test("the look for I/O backs off while no client is heard from, and comes back to POLL_MS when one is", async () => {
  // Two timer pauses in a row with nobody heard: the wait between looks is 20 ms.
  resetTurns();
  await pause();
  await pause(); // cheap: the look was just now
  busy(POLL_MS * 2.2); // past 10 ms: the second look
  await pause();
  busy(POLL_MS * 1.6); // 8 ms: under the 20 ms reached
  await pause();
  assert.deepEqual(pausesTaken(), { cheap: 2, polled: 2 });
  // The same with a client heard from during each timer wait: back to 5 ms.
  resetTurns();
  const heard = () => setTimeout(clientWasHeard, 0);
  heard();
  await pause();
  await pause();
  busy(POLL_MS * 2.2);
  heard();
  await pause();
  busy(POLL_MS * 1.6); // 8 ms: past the 5 ms it is back at
  await pause();
  assert.deepEqual(pausesTaken(), { cheap: 1, polled: 3 });
  resetTurns();
});

Deno.test("a session alone with a listener on the thread pauses (new clients need the looks for I/O)", async () => {
  resetTurns();
  sessionStarted();
  const start = performance.now();
  busy(TURN_MS * 2);
  assert.equal(turnOver(start), false);
  listenerOpened();
  assert.equal(turnOver(start), true);
  // With only the listener to serve, a look for I/O is owed, not a cheap
  // pause: none once a look has just been made.
  await pause();
  const again = performance.now();
  busy(TURN_MS * 2);
  assert.equal(turnOver(again), false);
  sessionStarted();
  assert.equal(turnOver(again), true);
  sessionEnded();
  listenerClosed();
  assert.equal(turnOver(start), false);
  sessionEnded();
  resetTurns();
});
