import assert from "node:assert/strict";
import { Deadline } from "./deadline.ts";

Deno.test("Deadline.race() passes a result that comes in time", async () => {
  const d = new Deadline(() => new Error("late"));
  d.at = Date.now() + 1000;
  assert.equal(await d.race(Promise.resolve(7)), 7);
  d.close();
});

Deno.test("Deadline.race() rejects with the timeout error once the deadline passes", async () => {
  const d = new Deadline(() => new Error("late"));
  d.at = Date.now() + 30;
  await assert.rejects(d.race(new Promise(() => {})), /late/);
  d.close();
});

Deno.test("Deadline.race() follows a deadline moved later by a new operation", async () => {
  const d = new Deadline(() => new Error("late"));
  d.at = Date.now() + 30;
  assert.equal(await d.race(Promise.resolve(1)), 1); // arms the timer for +30 ms
  d.at = Date.now() + 120;
  const t0 = Date.now();
  await assert.rejects(d.race(new Promise(() => {})), /late/);
  assert.ok(Date.now() - t0 >= 100, "fired at the moved deadline, not the first one");
  d.close();
});

Deno.test("Deadline.race() keeps a deadline moved earlier (the 1 s flush after a 300 s one)", async () => {
  const d = new Deadline(() => new Error("late"));
  d.at = Date.now() + 30_000;
  assert.equal(await d.race(Promise.resolve(1)), 1); // arms the timer for +30 s
  d.at = Date.now() + 50;
  const t0 = Date.now();
  await assert.rejects(d.race(new Promise(() => {})), /late/);
  // Far below the first deadline (room for a loaded host's delays).
  assert.ok(
    Date.now() - t0 < 10_000,
    `fired after ${Date.now() - t0} ms, not at the earlier deadline`,
  );
  d.close();
});
