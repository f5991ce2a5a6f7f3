import assert from "node:assert/strict";
import { ConnectionLimiter } from "./limits.ts";
import { clientRange } from "./client_range.ts";

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
  assert.equal(l.clientCount("10.0.0.9"), 5);
  assert.equal(new ConnectionLimiter(LIMITS_FOR_COUNT, l.shared).clientCount("192.0.2.2"), 2);
});

const LIMITS_FOR_COUNT = { global: 100, perClient: 0, exempt: () => false };

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

Deno.test("ConnectionLimiter.enterWithin() waits at the cap and takes the slot given back", async () => {
  const l = new ConnectionLimiter({ global: 1, perClient: 0, exempt: none });
  assert.equal(await l.enterWithin(1000), "ok", "under the cap: at once");
  const t0 = Date.now();
  const waiting = l.enterWithin(30_000);
  assert.equal(l.waiting, 1);
  setTimeout(() => l.leave(), 50);
  assert.equal(await waiting, "ok");
  const took = Date.now() - t0;
  // At the slot's return, not at the end of its wait (room for a loaded host).
  assert.ok(took >= 40 && took < 10_000, `waited ${took} ms`);
  assert.equal(l.total, 1);
  assert.equal(l.waiting, 0);
  l.leave();
});

Deno.test("ConnectionLimiter.enterWithin() refuses when no slot comes free in time", async () => {
  const l = new ConnectionLimiter({ global: 1, perClient: 0, exempt: none });
  l.enter();
  const t0 = Date.now();
  assert.equal(await l.enterWithin(100), "global");
  const took = Date.now() - t0;
  assert.ok(took >= 90 && took < 5000, `gave up after ${took} ms`);
  assert.equal(l.total, 1, "a refusal leaves no count behind");
  assert.equal(l.waiting, 0);
  assert.equal(await l.enterWithin(0), "global", "no wait: at once");
});

Deno.test("ConnectionLimiter.enterWithin(): at most `global` connections wait, the rest are refused at once", async () => {
  const l = new ConnectionLimiter({ global: 2, perClient: 0, exempt: none });
  l.enter();
  l.enter();
  const waiters = [l.enterWithin(30_000), l.enterWithin(30_000)];
  assert.equal(l.waiting, 2);
  // The third is refused before the two waiting are served (they wait for
  // the slots given back below): it did not wait.
  const third = l.enterWithin(30_000);
  const first = await Promise.race([
    third.then((r) => `third: ${r}`),
    Promise.race(waiters).then(() => "a waiter"),
  ]);
  assert.equal(first, "third: global", "the third did not wait");
  l.leave();
  l.leave();
  assert.deepEqual(await Promise.all(waiters), ["ok", "ok"], "each waiter got a slot given back");
  assert.equal(l.total, 2);
  assert.equal(l.waiting, 0);
});

Deno.test("ConnectionLimiter.enterWithin() sees a slot given back through another thread's limiter", async () => {
  const a = new ConnectionLimiter({ global: 1, perClient: 0, exempt: none });
  const b = new ConnectionLimiter({ global: 1, perClient: 0, exempt: none }, a.shared);
  a.enter();
  const waiting = b.enterWithin(30_000);
  assert.equal(a.waiting, 1, "the waiters are counted in the shared counters");
  setTimeout(() => a.leave(), 30);
  assert.equal(await waiting, "ok");
  assert.equal(a.total, 1);
});

/** The slot a fixed (unkeyed) FNV-1a hash gives: what an attacker can compute. */
function fixedSlot(address: string): number {
  let h = 2166136261;
  for (let i = 0; i < address.length; i++) h = Math.imul(h ^ address.charCodeAt(i), 16777619);
  return (h >>> 0) % 65536;
}

Deno.test("ConnectionLimiter: addresses picked to share a victim's slot under a fixed hash do not lock it out", () => {
  // For each victim, an IPv6 address (canonical text, as the server sees it) that collides with it under the fixed hash.
  const pairs: [string, string][] = [];
  for (let v = 1; pairs.length < 8; v++) {
    const victim = `2001:db8::${v.toString(16)}`;
    for (let n = 0; n < 0x400000; n++) {
      const other = `2001:db8:${(1 + (n >> 12)).toString(16)}:${
        (1 + (n & 0xfff)).toString(16)
      }:1:1:1:1`;
      if (fixedSlot(other) === fixedSlot(victim)) {
        pairs.push([victim, other]);
        break;
      }
    }
  }
  let lockedOut = 0;
  for (const [victim, attacker] of pairs) {
    const l = new ConnectionLimiter({ global: 100, perClient: 1, exempt: none });
    assert.equal(l.enterClient(attacker), true);
    if (!l.enterClient(victim)) lockedOut++;
  }
  // Keyed with a random seed, each pair shares a slot with odds 1/65536.
  assert.ok(lockedOut <= 1, `${lockedOut} of ${pairs.length} victims locked out`);
});

Deno.test("ConnectionLimiter: threads sharing the counters agree on the slots", () => {
  const a = new ConnectionLimiter({ global: 100, perClient: 1, exempt: none });
  const b = new ConnectionLimiter({ global: 100, perClient: 1, exempt: none }, a.shared);
  for (const addr of ["192.0.2.1", "2001:db8::1", "198.51.100.7"]) {
    assert.equal(a.clientSlot(addr), b.clientSlot(addr));
    assert.equal(a.enterClient(addr), true);
    assert.equal(b.enterClient(addr), false, addr);
  }
});

Deno.test("ConnectionLimiter: an exempt client's sessions do not count against the other clients of its block", () => {
  // A trusted host (a /128 in smtpd_client_event_limit_exceptions) in a /84
  // it shares with others: Postfix does not count it (hogger_list), so its
  // sessions take nothing from its neighbours' per-client limit.
  const trusted = "2001:db8:1:2:3::10";
  const l = new ConnectionLimiter({
    global: 100,
    perClient: 2,
    exempt: (a) => a === trusted,
    range: clientRange(32, 84),
  });
  for (let i = 0; i < 5; i++) assert.equal(l.enterClient(trusted), true);
  assert.equal(l.clientCount(trusted), 5, "counted by its address");
  assert.equal(l.unit(trusted), trusted);
  assert.equal(l.unit("2001:db8:1:2:3::20"), "2001:db8:1:2:3::/84");
  assert.equal(l.enterClient("2001:db8:1:2:3::20"), true);
  assert.equal(l.enterClient("2001:db8:1:2:3::21"), true);
  assert.equal(l.clientCount("2001:db8:1:2:3::22"), 2, "the block holds its neighbours' two");
  assert.equal(l.enterClient("2001:db8:1:2:3::22"), false, "the block is at its limit");
  for (let i = 0; i < 5; i++) l.leaveClient(trusted);
  assert.equal(l.clientCount(trusted), 0, "given back to the slot it was taken from");
  assert.equal(l.clientCount("2001:db8:1:2:3::22"), 2);
});
