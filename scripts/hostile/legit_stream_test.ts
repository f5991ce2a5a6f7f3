import assert from "node:assert/strict";
import { type AckEvent, windowStats } from "./legit_stream.ts";

function ack(session: number, ackAt: number, latency = 10): AckEvent {
  return { session, id: `ID${session}x${ackAt}`, dotAt: ackAt - latency, ackAt };
}

Deno.test("windowStats() takes the longest gap of any one session, to the end of recovery", () => {
  const acks = [
    ack(0, 1100),
    ack(1, 1050),
    ack(0, 1200),
    ack(1, 4100), // session 1 silent from 1050 to 4100: 3050 ms
    ack(0, 1300),
    ack(0, 1400),
  ];
  acks.sort((a, b) => a.ackAt - b.ackAt);
  const s = windowStats(
    { acks, fails: [], greets: [], sessions: 2 },
    { t0: 1000, t1: 3000, tEnd: 4100, volume: 6 },
  );
  // Session 1: 1050 to 4100; session 0: 1400 to the end of the window, 4100.
  assert.equal(s.longestStallMs, 4100 - 1050);
  assert.equal(s.timedAcks, 5);
  assert.equal(s.volumeAcks, 6);
  assert.equal(s.msgsPerSec, 11 / 2);
});

Deno.test("windowStats() counts a failure after end of data as a 250 latency", () => {
  const s = windowStats(
    {
      acks: [ack(0, 1100, 30)],
      fails: [{ session: 0, at: 2500, dotAt: 1500, reason: "end of data: 451 4.3.0 x" }],
      greets: [{ session: 0, connectAt: 1000, greetAt: 3000 }],
      sessions: 1,
    },
    { t0: 1000, t1: 2000, tEnd: 3000, volume: 0 },
  );
  assert.equal(s.worst250Ms, 1000);
  assert.equal(s.worstGreetMs, 2000);
  assert.equal(s.failures, 1);
  assert.deepEqual(s.failureSamples, ["end of data: 451 4.3.0 x"]);
});

Deno.test("windowStats() with no acknowledgement at all reports the whole window as a stall", () => {
  const s = windowStats(
    { acks: [], fails: [], greets: [], sessions: 2 },
    { t0: 0, t1: 6000, tEnd: 12000, volume: 0 },
  );
  assert.equal(s.longestStallMs, 12000);
  assert.equal(s.msgsPerSec, 0);
});
