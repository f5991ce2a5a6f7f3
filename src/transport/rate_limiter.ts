/**
 * Client event rates, as Postfix's anvil counts them: per client address,
 * connections, MAIL commands, RCPT commands, new TLS sessions and AUTH
 * attempts within one window of anvil_rate_time_unit that starts at the
 * client's first event and is reset, with every count, once it is over.
 * The smtpd_client_*_rate_limit parameters compare against these counts.
 *
 * The counts live in a SharedArrayBuffer so listener threads share them.
 * A client owns one of 65536 slots (1.8 MB), found by up to four probes from a hash
 * keyed with a random seed and marked with a second hash of the address; a
 * slot whose window is over may be taken by another client. When all four
 * probes are held by other clients inside their windows, the one whose
 * window started first gives way (its client starts a new count): only a
 * flood of distinct clients fills the slots, and it then cannot start a
 * new client at another's count. Which addresses collide cannot be worked
 * out from outside.
 *
 * @module
 */

import { keyedHash as hash } from "./keyed_hash.ts";

/** The events counted. */
export type RateEvent = "connection" | "message" | "recipient" | "newTls" | "auth";

const EVENT_FIELD: Readonly<Record<RateEvent, number>> = {
  connection: 2,
  message: 3,
  recipient: 4,
  newTls: 5,
  auth: 6,
};

/** Int32 fields of a slot: mark, window start, then one count per event. */
const FIELDS = 7;
const MARK = 0;
const START = 1;
const SLOTS = 65536;
const PROBES = 4;
/** Header: the two hash seeds and the clock's base (seconds). */
const SEED_A = 0;
const SEED_B = 1;
const BASE = 2;
const HEADER = 3;

/** Options of a {@linkcode RateLimiter}. */
export interface RateLimiterOptions {
  /** The window, in seconds (anvil_rate_time_unit). */
  readonly timeUnit: number;
  /** The clock in milliseconds. @default {Date.now} */
  readonly now?: () => number;
}

/** Per-client event counts over anvil_rate_time_unit, shared by threads. */
export class RateLimiter {
  /** The counters, to hand to other threads. */
  readonly shared: SharedArrayBuffer;
  #cells: Int32Array;
  #unit: number;
  #now: () => number;

  /**
   * @param options the window and the clock
   * @param shared the counters of another thread's limiter, to share them
   */
  constructor(options: RateLimiterOptions, shared?: SharedArrayBuffer) {
    this.#unit = options.timeUnit;
    this.#now = options.now ?? Date.now;
    this.shared = shared ?? new SharedArrayBuffer(4 * (HEADER + SLOTS * FIELDS));
    this.#cells = new Int32Array(this.shared);
    if (!shared) {
      const seeds = crypto.getRandomValues(new Int32Array(2));
      this.#cells[SEED_A] = seeds[0] as number;
      this.#cells[SEED_B] = seeds[1] as number;
      // Seconds from a base keep the window start in an Int32; 1 marks "never".
      this.#cells[BASE] = Math.floor(this.#now() / 1000) - 1;
    }
  }

  /**
   * Counts one event of a client.
   * @param event what happened
   * @param address the client address
   * @returns the client's count of that event in the current window, this one included
   */
  count(event: RateEvent, address: string): number {
    const cells = this.#cells;
    const now = Math.floor(this.#now() / 1000) - Atomics.load(cells, BASE);
    const mark = hash(address, Atomics.load(cells, SEED_B)) | 1;
    const first = hash(address, Atomics.load(cells, SEED_A)) >>> 0;
    // Double hashing: the step (odd, so every slot is reachable) comes from the mark.
    const step = (mark >>> 1) | 1;
    const slotAt = (probe: number) => HEADER + ((first + probe * step) % SLOTS) * FIELDS;
    let at = -1;
    // The client's own slot first, wherever it is among the probes: were a
    // free or stale slot before it taken instead, the client's count would
    // start again inside its window (when the client that held its first
    // probe goes quiet).
    for (let probe = 0; probe < PROBES && at < 0; probe++) {
      if (Atomics.load(cells, slotAt(probe) + MARK) === mark) at = slotAt(probe);
    }
    for (let probe = 0; probe < PROBES && at < 0; probe++) {
      const slot = slotAt(probe);
      const held = Atomics.load(cells, slot + MARK);
      if (held === mark) at = slot;
      else if (held === 0 || this.#over(slot, now)) {
        // Free or stale: take it, unless another thread just did.
        if (Atomics.compareExchange(cells, slot + MARK, held, mark) === held) {
          this.#reset(slot, now);
          at = slot;
        } else if (Atomics.load(cells, slot + MARK) === mark) at = slot;
      }
    }
    if (at < 0) {
      // Every probe is held by another client inside its window: that of
      // the window that started first gives way, and its client starts a
      // new count at its next event. Sharing a slot instead would start the
      // new client at another's count: a flood of distinct addresses (one
      // IPv6 /64 holds a million /84 blocks) would fill every slot within
      // one window, and each new client would then start at an attacker's
      // count, over its limit before its first event.
      let oldest = slotAt(0);
      for (let probe = 1; probe < PROBES; probe++) {
        const slot = slotAt(probe);
        if (Atomics.load(cells, slot + START) < Atomics.load(cells, oldest + START)) oldest = slot;
      }
      const held = Atomics.load(cells, oldest + MARK);
      if (Atomics.compareExchange(cells, oldest + MARK, held, mark) === held) {
        this.#reset(oldest, now);
      }
      // Else another thread took it meanwhile: shared, as a collision.
      at = oldest;
    }
    if (this.#over(at, now)) this.#reset(at, now);
    const field = at + EVENT_FIELD[event];
    const before = Atomics.add(cells, field, 1);
    if (before < 0x7fffffff) return before + 1;
    Atomics.store(cells, field, 0x7fffffff); // as anvil: stop at INT_MAX
    return 0x7fffffff;
  }

  /**
   * A client's count of an event in the current window, without counting
   * one: 0 when it has none (or its window is over).
   * @param event the event
   * @param address the client address
   * @returns the count
   */
  peek(event: RateEvent, address: string): number {
    const cells = this.#cells;
    const now = Math.floor(this.#now() / 1000) - Atomics.load(cells, BASE);
    const mark = hash(address, Atomics.load(cells, SEED_B)) | 1;
    const first = hash(address, Atomics.load(cells, SEED_A)) >>> 0;
    const step = (mark >>> 1) | 1;
    for (let probe = 0; probe < PROBES; probe++) {
      const slot = HEADER + ((first + probe * step) % SLOTS) * FIELDS;
      if (Atomics.load(cells, slot + MARK) !== mark) continue;
      return this.#over(slot, now) ? 0 : Atomics.load(cells, slot + EVENT_FIELD[event]);
    }
    return 0;
  }

  #over(slot: number, now: number): boolean {
    return Atomics.load(this.#cells, slot + START) + this.#unit < now;
  }

  #reset(slot: number, now: number): void {
    const cells = this.#cells;
    for (let f = START + 1; f < FIELDS; f++) Atomics.store(cells, slot + f, 0);
    Atomics.store(cells, slot + START, now);
  }
}
