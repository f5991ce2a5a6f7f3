import assert from "node:assert/strict";
import { ConnectionLimiter } from "./limits.ts";

const none = () => false;

Deno.test("ConnectionLimiter.enter() refuses over the global limit and leave() makes room", () => {
  const l = new ConnectionLimiter({ global: 2, perClient: 0, exempt: none });
  assert.equal(l.enter(), "ok");
  assert.equal(l.enter(), "ok");
  assert.equal(l.enter(), "global");
  assert.equal(l.total, 2, "a refusal leaves no count behind");
  l.leave();
  assert.equal(l.enter(), "ok");
});

Deno.test("ConnectionLimiter.enterClient() counts each address apart; exempt ones pass", () => {
  const l = new ConnectionLimiter({
    global: 100,
    perClient: 2,
    exempt: (a) => a === "10.0.0.9",
  });
  for (const a of ["192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.2"]) {
    assert.equal(l.enterClient(a), true, a);
  }
  assert.equal(l.enterClient("192.0.2.1"), false);
  assert.equal(l.enterClient("192.0.2.2"), false);
  l.leaveClient("192.0.2.1");
  assert.equal(l.enterClient("192.0.2.1"), true, "room again after leaveClient()");
  for (let i = 0; i < 5; i++) assert.equal(l.enterClient("10.0.0.9"), true);
});

Deno.test("ConnectionLimiter.enterClient() with perClient 0 has no per-client limit", () => {
  const l = new ConnectionLimiter({ global: 100, perClient: 0, exempt: none });
  for (let i = 0; i < 60; i++) assert.equal(l.enterClient("192.0.2.1"), true);
});

Deno.test("ConnectionLimiter enters stress at the threshold, once, and leaves below 3/4 of it", () => {
  const events: [boolean, number][] = [];
  const l = new ConnectionLimiter({
    global: 10,
    perClient: 0,
    exempt: none,
    stressPercent: 80,
    onStress: (s, n) => events.push([s, n]),
  });
  for (let i = 0; i < 7; i++) l.enter();
  assert.equal(l.stressed, false);
  l.enter(); // the 8th session: 80 % of 10
  assert.equal(l.stressed, true);
  l.enter();
  l.leave();
  l.leave(); // 7
  l.enter(); // 8 again: no second report
  assert.deepEqual(events, [[true, 8]]);
  l.leave(); // 7
  l.leave(); // 6: still at least 3/4 of 8
  assert.equal(l.stressed, true);
  l.leave(); // 5
  assert.equal(l.stressed, false);
  assert.deepEqual(events, [[true, 8], [false, 5]]);
});

Deno.test("ConnectionLimiter with stressPercent 0 never enters stress", () => {
  const l = new ConnectionLimiter({ global: 3, perClient: 0, exempt: none, stressPercent: 0 });
  for (let i = 0; i < 3; i++) l.enter();
  assert.equal(l.stressed, false);
});

Deno.test("ConnectionLimiter shares counts and stress state through its SharedArrayBuffer", () => {
  const events: string[] = [];
  const a = new ConnectionLimiter({
    global: 4,
    perClient: 1,
    exempt: none,
    stressPercent: 50,
    onStress: (s) => events.push(`a:${s}`),
  });
  const b = new ConnectionLimiter({
    global: 4,
    perClient: 1,
    exempt: none,
    stressPercent: 50,
    onStress: (s) => events.push(`b:${s}`),
  }, a.shared);
  a.enter();
  b.enter(); // 2 of 4: stress, reported by b alone
  assert.equal(a.stressed, true);
  a.enter();
  b.enter();
  assert.equal(a.enter(), "global");
  assert.equal(b.total, 4);
  assert.equal(a.enterClient("192.0.2.1"), true);
  assert.equal(b.enterClient("192.0.2.1"), false);
  for (let i = 0; i < 4; i++) (i % 2 ? a : b).leave();
  assert.equal(a.total, 0);
  assert.equal(b.stressed, false);
  assert.equal(events.length, 2);
  assert.equal(events[0], "b:true");
  assert.match(events[1] as string, /:false$/);
});
