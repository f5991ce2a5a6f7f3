import assert from "node:assert/strict";
import { answerRoom, type RoomMessage, type RoomParty, RoomRequests } from "./room.ts";
import { RoomCoordinator } from "./room.ts";
import type { RoomCandidate } from "../transport/tcp_listener.ts";

/**
 * A listener thread as the main thread sees it: postMessage() reaches the
 * thread (after `delayMs`), and what the thread posts comes back as
 * "message" events, as with a Worker.
 */
class FakeThread extends EventTarget {
  offer: RoomCandidate | undefined;
  delayMs = 0;
  /** Messages of these kinds wait here until {@linkcode release} (a thread slow to answer). */
  holdKinds = new Set<RoomMessage["kind"]>();
  readonly held: RoomMessage[] = [];
  readonly closed: number[] = [];
  /** The newcomerHeld each candidate() and evict() was given, in order. */
  readonly heard: [string, number | undefined][] = [];
  readonly requests: RoomRequests;
  readonly party: RoomParty = {
    candidate: (_purpose, newcomerHeld) => {
      this.heard.push(["candidate", newcomerHeld]);
      return this.offer;
    },
    evict: (id, _purpose, claim, newcomerHeld) => {
      this.heard.push(["evict", newcomerHeld]);
      if (this.offer?.id !== id || !claim()) return false;
      this.closed.push(id);
      this.offer = undefined;
      return true;
    },
  };

  /**
   * @param offer the connection it would close
   * @param waitMs how long its own requests wait (long: see setUp)
   */
  constructor(offer?: RoomCandidate, waitMs = 10_000) {
    super();
    this.offer = offer;
    this.requests = new RoomRequests((m) => this.#send(m), waitMs);
  }

  postMessage(m: RoomMessage): void {
    if (this.holdKinds.has(m.kind)) {
      this.held.push(m);
      return;
    }
    setTimeout(() => answerRoom(m, this.party, this.requests, (r) => this.#send(r)), this.delayMs);
  }

  /** Answers the held messages now. */
  release(): void {
    for (const m of this.held.splice(0)) {
      answerRoom(m, this.party, this.requests, (r) => this.#send(r));
    }
  }

  #send(m: RoomMessage): void {
    this.dispatchEvent(new MessageEvent("message", { data: m }));
  }
}

/**
 * The main thread and its listener threads. The wait is long by default:
 * a request that should be served must not run out of time on a loaded
 * host (each hop is a timer turn); a request that gets no room is
 * answered when the main thread has asked everyone, not at the wait's end.
 */
function setUp(main: FakeThread, threads: FakeThread[], waitMs = 10_000): RoomCoordinator {
  const rooms = new RoomCoordinator(main.party, () => threads, waitMs);
  for (const t of threads) rooms.adopt(t as unknown as Worker);
  return rooms;
}

const idle = (id: number, held: number, score: number) => ({
  id,
  why: "idle" as const,
  held,
  score,
});
const slow = (id: number, held: number, score: number) => ({
  id,
  why: "slow" as const,
  held,
  score,
});

Deno.test("RoomCoordinator closes the first candidate of all threads: idle, then held, then longest", async () => {
  const main = new FakeThread(slow(1, 9, 60_000));
  const a = new FakeThread(idle(2, 1, 5000));
  const b = new FakeThread(idle(3, 2, 1100));
  const asking = new FakeThread();
  setUp(main, [a, b, asking]);
  assert.equal(await asking.requests.ask("session"), true);
  assert.deepEqual([main.closed, a.closed, b.closed], [[], [], [3]]);
  // Then the other idle one, then the slow one, then none.
  assert.equal(await asking.requests.ask("session"), true);
  assert.deepEqual(a.closed, [2]);
  assert.equal(await asking.requests.ask("descriptor"), true);
  assert.deepEqual(main.closed, [1]);
  assert.equal(await asking.requests.ask("session"), false);
});

Deno.test("RoomCoordinator serves the main thread's own request from the listener threads", async () => {
  const main = new FakeThread(idle(1, 5, 9000));
  const a = new FakeThread(slow(2, 1, 12_000));
  const b = new FakeThread(slow(3, 1, 30_000));
  const rooms = setUp(main, [a, b]);
  assert.equal(await rooms.ask("session"), true);
  // Not its own (it looked there first): the slow one that waited longest.
  assert.deepEqual([main.closed, a.closed, b.closed], [[], [], [3]]);
});

Deno.test("RoomCoordinator: a thread answering after the wait closes nothing", async () => {
  const main = new FakeThread();
  const late = new FakeThread(idle(7, 1, 2000));
  // It offers its connection at once, but is told to close it only after
  // the asking thread's wait is over.
  late.holdKinds.add("room-evict");
  const asking = new FakeThread(undefined, 1000);
  const rooms = setUp(main, [late, asking], 1000);
  const started = Date.now();
  assert.equal(await asking.requests.ask("session"), false);
  assert.ok(Date.now() - started < 10_000, "bounded wait");
  // The order to close came (within the wait) and is answered too late:
  // the request is cancelled, and the claim fails.
  assert.deepEqual(late.held.map((m) => m.kind), ["room-evict"]);
  late.release();
  assert.deepEqual(late.heard, [["candidate", undefined], ["evict", undefined]]);
  assert.deepEqual(late.closed, []);
  // The main thread is done with the request: the next one is served.
  late.holdKinds.clear();
  assert.equal(await rooms.ask("session"), true);
  assert.deepEqual(late.closed, [7]);
});

Deno.test("RoomCoordinator closes one connection per request, even with candidates everywhere", async () => {
  const main = new FakeThread(idle(1, 1, 3000));
  const threads = [2, 3, 4].map((id) => new FakeThread(idle(id, 1, 3000 + id)));
  const asking = new FakeThread();
  setUp(main, [...threads, asking]);
  const answers = await Promise.all([
    asking.requests.ask("session"),
    asking.requests.ask("session"),
  ]);
  assert.deepEqual(answers, [true, true]);
  const closed = [main, ...threads].flatMap((t) => t.closed).sort();
  assert.deepEqual(closed, [3, 4]);
});

Deno.test("RoomRequests.ask() waits at most its bound, with at most eight requests waiting", async () => {
  const sent: RoomMessage[] = [];
  const requests = new RoomRequests((m) => sent.push(m), 50);
  const started = Date.now();
  const waiting = Array.from({ length: 8 }, () => requests.ask("session"));
  // The ninth is answered at once: before the eight, which wait for their bound.
  const first = await Promise.race([
    requests.ask("session").then((r) => `ninth: ${r}`),
    Promise.race(waiting).then(() => "one of the eight"),
  ]);
  assert.equal(first, "ninth: false");
  assert.equal(sent.length, 8);
  assert.deepEqual(await Promise.all(waiting), Array(8).fill(false));
  const waited = Date.now() - started;
  // Never answered: each gives up at its bound (50 ms; a loaded host adds its delays).
  assert.ok(waited >= 45 && waited < 5000, `waited ${waited} ms`);
});

Deno.test("RoomCoordinator hands the new client's count to every thread's candidate() and evict()", async () => {
  const crowd = (id: number) => ({ id, why: "crowding" as const, held: 5, score: 1 });
  const main = new FakeThread();
  const a = new FakeThread(crowd(2));
  const asking = new FakeThread();
  setUp(main, [a, asking]);
  assert.equal(await asking.requests.ask("session", 3), true);
  assert.deepEqual(a.heard, [["candidate", 3], ["evict", 3]]);
  assert.deepEqual(main.heard, [["candidate", 3]]);
  // Without a count (behind a balancer) none is told one.
  a.offer = crowd(4);
  assert.equal(await asking.requests.ask("session"), true);
  assert.deepEqual(a.heard.slice(2), [["candidate", undefined], ["evict", undefined]]);
  // The main thread's own request: its count reaches the listener threads.
  const b = new FakeThread(crowd(6));
  const rooms = setUp(new FakeThread(), [b]);
  assert.equal(await rooms.ask("session", 0), true);
  assert.deepEqual(b.heard, [["candidate", 0], ["evict", 0]]);
});
