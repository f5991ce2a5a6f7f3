import assert from "node:assert/strict";
import { keyedHash } from "./keyed_hash.ts";
import { RateLimiter } from "./rate_limiter.ts";

/** A limiter on a clock the test moves. */
function clocked(timeUnit = 60): { limiter: RateLimiter; advance: (s: number) => void } {
  let ms = 1_800_000_000_000;
  const limiter = new RateLimiter({ timeUnit, now: () => ms });
  return { limiter, advance: (s) => (ms += s * 1000) };
}

Deno.test("RateLimiter counts each event of a client apart", () => {
  const { limiter } = clocked();
  assert.equal(limiter.count("connection", "192.0.2.1"), 1);
  assert.equal(limiter.count("connection", "192.0.2.1"), 2);
  assert.equal(limiter.count("message", "192.0.2.1"), 1);
  assert.equal(limiter.count("recipient", "192.0.2.1"), 1);
  assert.equal(limiter.count("connection", "192.0.2.2"), 1);
  assert.equal(limiter.count("connection", "192.0.2.1"), 3);
});

Deno.test("RateLimiter starts a new window, with every count at 0, once anvil_rate_time_unit is over", () => {
  const { limiter, advance } = clocked(60);
  for (let i = 0; i < 5; i++) limiter.count("connection", "192.0.2.1");
  limiter.count("message", "192.0.2.1");
  advance(60); // start + unit < now is false: still the same window, as in anvil
  assert.equal(limiter.count("connection", "192.0.2.1"), 6);
  advance(1);
  assert.equal(limiter.count("connection", "192.0.2.1"), 1);
  assert.equal(limiter.count("message", "192.0.2.1"), 1);
});

Deno.test("RateLimiter: the window starts at the client's first event, not at a fixed tick", () => {
  const { limiter, advance } = clocked(60);
  limiter.count("connection", "192.0.2.1");
  advance(50);
  limiter.count("connection", "192.0.2.2"); // 192.0.2.2's window starts here
  advance(20);
  assert.equal(limiter.count("connection", "192.0.2.1"), 1, "192.0.2.1's window is over");
  assert.equal(limiter.count("connection", "192.0.2.2"), 2, "192.0.2.2's is not");
});

Deno.test("RateLimiter shares its counts with a limiter built on the same buffer (another thread)", () => {
  const a = new RateLimiter({ timeUnit: 60 });
  const b = new RateLimiter({ timeUnit: 60 }, a.shared);
  a.count("recipient", "2001:db8::1");
  b.count("recipient", "2001:db8::1");
  assert.equal(a.count("recipient", "2001:db8::1"), 3);
});

Deno.test("RateLimiter keeps 40,000 clients apart within their windows (probing, not one shared slot)", () => {
  const { limiter } = clocked();
  // 40,000 clients in 65,536 slots: with one probe about 10,000 would share,
  // with four about 1,100.
  let shared = 0;
  for (let i = 0; i < 40_000; i++) {
    if (limiter.count("connection", `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`) !== 1) shared++;
  }
  assert.ok(shared < 1_500, `${shared} of 40,000 clients share a slot`);
});

Deno.test("RateLimiter gives a stale slot to a new client", () => {
  const { limiter, advance } = clocked(60);
  for (let i = 0; i < 65_536 * 4; i++) limiter.count("connection", `old-${i}`);
  advance(61);
  // Every slot is held by an old client whose window is over: new clients start at 1.
  for (let i = 0; i < 1000; i++) assert.equal(limiter.count("message", `new-${i}`), 1);
});

Deno.test("RateLimiter stops at the largest Int32, as anvil stops at INT_MAX", () => {
  const { limiter } = clocked();
  const shared = new Int32Array(limiter.shared);
  limiter.count("recipient", "192.0.2.9");
  // The recipient count: field 4 of a 7-field slot after a 3-field header.
  const at = shared.findIndex((v, i) => i >= 3 && (i - 3) % 7 === 4 && v === 1);
  shared[at] = 0x7fffffff;
  assert.equal(limiter.count("recipient", "192.0.2.9"), 0x7fffffff);
  assert.equal(limiter.count("recipient", "192.0.2.9"), 0x7fffffff);
});

Deno.test("RateLimiter: a client whose first probe was taken keeps its count when that probe goes stale", () => {
  const { limiter, advance } = clocked(60);
  // Two addresses whose first probe is the same slot (found with the seed,
  // which an attacker cannot read; bounded search).
  const cells = new Int32Array(limiter.shared);
  const first = (a: string) => (keyedHash(a, cells[0] as number) >>> 0) % 65536;
  const a = "192.0.2.1";
  let b: string | undefined;
  for (let i = 0; i < 4_000_000 && b === undefined; i++) {
    const candidate = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    if (first(candidate) === first(a)) b = candidate;
  }
  assert.ok(b, "no colliding address found");
  limiter.count("connection", a); // a holds the slot from second 0
  advance(30);
  for (let i = 1; i <= 3; i++) assert.equal(limiter.count("connection", b), i); // b: the next probe
  advance(31); // a's window is over, b's (from second 30) is not
  assert.equal(limiter.count("connection", b), 4, "b's count goes on within its window");
  assert.equal(limiter.count("connection", b), 5);
});

Deno.test("RateLimiter: a flood of 200,000 distinct clients within one window leaves new clients their own count", () => {
  const { limiter, advance } = clocked(60);
  // 200,000 /84 blocks (one IPv6 /64 holds a million), 5 recipients each:
  // every slot is held inside its window.
  for (let i = 0; i < 200_000; i++) {
    const block = `2001:db8:0:1:${(i >>> 4).toString(16)}:${(i & 15).toString(16)}000::/84`;
    for (let k = 0; k < 5; k++) limiter.count("recipient", block);
  }
  advance(1);
  // A new client counts from 1, not from a flooding client's 5.
  for (let i = 0; i < 1000; i++) {
    const client = `198.51.${i >> 8}.${i & 255}`;
    assert.equal(limiter.count("recipient", client), 1, client);
    assert.equal(limiter.count("recipient", client), 2, client);
  }
});

Deno.test("RateLimiter.peek gives a client's count in its window without counting", () => {
  const { limiter, advance } = clocked(60);
  assert.equal(limiter.peek("newTls", "192.0.2.1"), 0, "never seen");
  limiter.count("newTls", "192.0.2.1");
  limiter.count("newTls", "192.0.2.1");
  assert.equal(limiter.peek("newTls", "192.0.2.1"), 2);
  assert.equal(limiter.peek("newTls", "192.0.2.1"), 2, "peeking counts nothing");
  assert.equal(limiter.peek("connection", "192.0.2.1"), 0, "another event");
  assert.equal(limiter.peek("newTls", "192.0.2.2"), 0, "another client");
  advance(61);
  assert.equal(limiter.peek("newTls", "192.0.2.1"), 0, "its window is over");
  assert.equal(limiter.count("newTls", "192.0.2.1"), 1);
});
