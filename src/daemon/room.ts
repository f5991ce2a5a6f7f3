/**
 * Making room across listener threads. Each thread sees only its own
 * connections, but the session cap (default_process_limit) and the
 * descriptors are the process's: when the thread that accepted a client
 * has no idle or slow connection to close, it asks the main thread, which
 * asks every other thread for the connection it would close, picks the
 * first in {@linkcode betterCandidate}'s order (the order one thread uses
 * for its own) and has its thread close it.
 *
 * Each request has a shared cell. The thread that closes a connection
 * first claims the cell (waiting → taken); the asking thread, when its
 * answer comes or its short wait ends, claims it too (waiting →
 * cancelled). Only one of them wins: no connection is closed for a
 * client that has been refused, and at most one for each client. The main
 * thread serves one request at a time, so two requests never pick the
 * same connection.
 *
 * @module
 */

import {
  betterCandidate,
  type RoomCandidate,
  type RoomPurpose,
} from "../transport/tcp_listener.ts";

/** How long a thread waits for another thread to make room (ms). */
export const ROOM_WAIT_MS = 100;
/**
 * Requests a thread has waiting at once; past that a new client goes
 * straight to the wait for a slot (a flood at the cap costs the main
 * thread no more than this many requests per thread per wait).
 */
const MOST_WAITING = 8;

/** What a thread offers the others: the connection it would close, and the close. */
export interface RoomParty {
  /**
   * The connection it would close now, if any.
   * @param purpose for a session slot or a descriptor
   * @param newcomerHeld sessions the new client's address held (see TcpServer.evictIdle)
   */
  candidate(purpose: RoomPurpose, newcomerHeld?: number): RoomCandidate | undefined;
  /**
   * Closes that connection if it still qualifies, room is still needed and
   * `claim` (asked just before the close) agrees.
   * @returns whether it closed it
   */
  evict(id: number, purpose: RoomPurpose, claim: () => boolean, newcomerHeld?: number): boolean;
}

/** A request's cell: [0] holds one of these. */
const WAITING = 0;
const TAKEN = 1;
const CANCELLED = 2;

/** What threads and the main thread tell each other about making room. */
export type RoomMessage =
  /** Thread → main thread: make room for a client of mine. */
  | {
    kind: "room";
    seq: number;
    purpose: RoomPurpose;
    newcomerHeld?: number;
    cell: SharedArrayBuffer;
  }
  /** Main thread → thread: done with it (the cell says how). */
  | { kind: "room-done"; seq: number }
  /** Main thread → thread: which connection would you close? */
  | { kind: "room-candidate"; seq: number; purpose: RoomPurpose; newcomerHeld?: number }
  /** Thread → main thread: this one, or none. */
  | { kind: "room-offer"; seq: number; candidate: RoomCandidate | undefined }
  /** Main thread → thread: close it for the request of this cell. */
  | {
    kind: "room-evict";
    seq: number;
    id: number;
    purpose: RoomPurpose;
    newcomerHeld?: number;
    cell: SharedArrayBuffer;
  }
  /** Thread → main thread: closed, or not. */
  | { kind: "room-evicted"; seq: number; ok: boolean };

/**
 * Whether a message is about making room.
 * @param m a message between threads
 * @returns true for a {@linkcode RoomMessage}
 */
export function isRoomMessage(m: unknown): m is RoomMessage {
  const kind = (m as { kind?: unknown } | null)?.kind;
  return typeof kind === "string" && (kind === "room" || kind.startsWith("room-"));
}

/** The optional field, present only when set (messages are cloned as they are). */
function held(newcomerHeld: number | undefined): { newcomerHeld?: number } {
  return newcomerHeld === undefined ? {} : { newcomerHeld };
}

/** Claims a request's cell for the close; false once the asking thread gave up. */
function claimFor(cell: SharedArrayBuffer): () => boolean {
  const c = new Int32Array(cell);
  return () => Atomics.compareExchange(c, 0, WAITING, TAKEN) === WAITING;
}

/**
 * A thread's requests for room: sent to the main thread, each waiting at
 * most `waitMs`.
 */
export class RoomRequests {
  #post: (m: RoomMessage) => void;
  #waitMs: number;
  #seq = 0;
  #pending = new Map<number, () => void>();

  /**
   * @param post sends a message to the main thread
   * @param waitMs the longest wait for an answer
   */
  constructor(post: (m: RoomMessage) => void, waitMs = ROOM_WAIT_MS) {
    this.#post = post;
    this.#waitMs = waitMs;
  }

  /**
   * Asks the other threads to close a connection (at once false when
   * eight requests of this thread wait already).
   * @param purpose for a session slot or a descriptor
   * @param newcomerHeld sessions the new client's address held (see TcpServer.evictIdle)
   * @returns whether one was closed for this request
   */
  async ask(purpose: RoomPurpose, newcomerHeld?: number): Promise<boolean> {
    if (this.#pending.size >= MOST_WAITING) return false;
    const cell = new SharedArrayBuffer(4);
    const seq = ++this.#seq;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#pending.delete(seq);
        resolve();
      };
      const timer = setTimeout(done, this.#waitMs);
      this.#pending.set(seq, done);
      this.#post({ kind: "room", seq, purpose, ...held(newcomerHeld), cell });
    });
    // Answered, or the wait is over: from now on no thread closes one for it.
    return Atomics.compareExchange(new Int32Array(cell), 0, WAITING, CANCELLED) === TAKEN;
  }

  /**
   * Takes the main thread's answer.
   * @param seq the request's number
   */
  answered(seq: number): void {
    this.#pending.get(seq)?.();
  }
}

/**
 * A listener thread's side: answers the main thread's questions and
 * takes its answers.
 * @param m the message (a {@linkcode RoomMessage})
 * @param party this thread's connections
 * @param requests this thread's requests
 * @param post sends a message to the main thread
 */
export function answerRoom(
  m: RoomMessage,
  party: RoomParty,
  requests: RoomRequests,
  post: (m: RoomMessage) => void,
): void {
  switch (m.kind) {
    case "room-done":
      return requests.answered(m.seq);
    case "room-candidate":
      return post({
        kind: "room-offer",
        seq: m.seq,
        candidate: party.candidate(m.purpose, m.newcomerHeld),
      });
    case "room-evict": {
      const ok = party.evict(m.id, m.purpose, claimFor(m.cell), m.newcomerHeld);
      return post({ kind: "room-evicted", seq: m.seq, ok });
    }
    case "room":
    case "room-offer":
    case "room-evicted":
      return;
  }
}

/** A thread the main thread can ask: a listener thread's Worker. */
type Peer = Pick<Worker, "postMessage" | "addEventListener">;

/**
 * The main thread's side: serves the requests of every thread, its own
 * included, one at a time.
 */
export class RoomCoordinator {
  #local: RoomParty;
  #threads: () => readonly Peer[];
  #waitMs: number;
  #seq = 0;
  #replies = new Map<number, (m: RoomMessage) => void>();
  #queue: Promise<void> = Promise.resolve();
  #own: RoomRequests;

  /**
   * @param local the main thread's connections
   * @param threads the listener threads running now
   * @param waitMs how long a request waits (and the main thread for a thread's answer)
   */
  constructor(local: RoomParty, threads: () => readonly Peer[], waitMs = ROOM_WAIT_MS) {
    this.#local = local;
    this.#threads = threads;
    this.#waitMs = waitMs;
    this.#own = new RoomRequests((m) => {
      if (m.kind === "room") this.#enqueue(m, undefined, () => this.#own.answered(m.seq));
    }, waitMs);
  }

  /**
   * The main thread's own request ({@linkcode RoomRequests.ask}).
   * @param purpose for a session slot or a descriptor
   * @param newcomerHeld sessions the new client's address held (see TcpServer.evictIdle)
   * @returns whether another thread closed a connection for it
   */
  ask(purpose: RoomPurpose, newcomerHeld?: number): Promise<boolean> {
    return this.#own.ask(purpose, newcomerHeld);
  }

  /**
   * Serves a listener thread's requests and takes its answers.
   * @param thread the thread, once started
   */
  adopt(thread: Peer): void {
    thread.addEventListener("message", (e: MessageEvent) => {
      const m = e.data;
      if (!isRoomMessage(m)) return;
      if (m.kind === "room") {
        this.#enqueue(m, thread, () => thread.postMessage({ kind: "room-done", seq: m.seq }));
      } else if (m.kind === "room-offer" || m.kind === "room-evicted") {
        this.#replies.get(m.seq)?.(m);
      }
    });
  }

  #enqueue(
    m: Extract<RoomMessage, { kind: "room" }>,
    from: Peer | undefined,
    done: () => void,
  ): void {
    this.#queue = this.#queue.then(() => this.#serve(m, from)).catch(() => {}).finally(done);
  }

  async #serve(m: Extract<RoomMessage, { kind: "room" }>, from: Peer | undefined): Promise<void> {
    const cell = new Int32Array(m.cell);
    const until = Date.now() + this.#waitMs;
    const waiting = () => Atomics.load(cell, 0) === WAITING && Date.now() < until;
    if (!waiting()) return;
    const others = this.#threads().filter((t) => t !== from);
    const offers = (await Promise.all(others.map(async (t) => {
      const ask = { kind: "room-candidate", seq: 0, purpose: m.purpose, ...held(m.newcomerHeld) };
      const r = await this.#call(t, ask as RoomMessage, until);
      return r?.kind === "room-offer" && r.candidate ? [{ thread: t, c: r.candidate }] : [];
    }))).flat() as { thread: Peer | undefined; c: RoomCandidate }[];
    // The main thread's own connections, unless the request is its own.
    const mine = from ? this.#local.candidate(m.purpose, m.newcomerHeld) : undefined;
    if (mine) offers.push({ thread: undefined, c: mine });
    offers.sort((a, b) => betterCandidate(a.c, b.c) ? -1 : betterCandidate(b.c, a.c) ? 1 : 0);
    for (const { thread, c } of offers) {
      if (!waiting()) return;
      if (!thread) {
        if (this.#local.evict(c.id, m.purpose, claimFor(m.cell), m.newcomerHeld)) return;
        continue;
      }
      const evict = {
        kind: "room-evict",
        seq: 0,
        id: c.id,
        purpose: m.purpose,
        ...held(m.newcomerHeld),
        cell: m.cell,
      };
      const r = await this.#call(thread, evict as RoomMessage, until);
      // (A late answer changes nothing: the cell is no longer waiting.)
      if (r?.kind === "room-evicted" && r.ok) return;
    }
  }

  /** Sends a question to a thread; its answer, or undefined at `until`. */
  #call(thread: Peer, m: RoomMessage, until: number): Promise<RoomMessage | undefined> {
    const seq = ++this.#seq;
    return new Promise((resolve) => {
      const finish = (r: RoomMessage | undefined) => {
        clearTimeout(timer);
        this.#replies.delete(seq);
        resolve(r);
      };
      const timer = setTimeout(() => finish(undefined), Math.max(0, until - Date.now()));
      this.#replies.set(seq, finish);
      thread.postMessage({ ...m, seq });
    });
  }
}
