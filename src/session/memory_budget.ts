/**
 * The process-wide memory budget (smtpd_memory_budget): the bytes all
 * sessions of all listener threads together may hold for messages in
 * progress (header blocks, queue record buffers, line buffers grown for
 * DATA). A session reserves before it holds more and gives back when the
 * message or the session ends; when a reservation fails the client gets
 * 452 4.3.1 instead of the process running out of heap.
 *
 * The count lives in a SharedArrayBuffer (in KiB, so an Int32 cell covers
 * 2 TiB), shared with the listener threads through `WorkerInit`.
 *
 * @module
 */

/** Reservations are made in whole KiB. */
const UNIT = 1024;
/** Cells: [0] KiB reserved now, [1] the limit in KiB. */
const USED = 0;
const LIMIT = 1;
/** The share of V8's heap limit the automatic budget takes. */
const AUTO_SHARE = 0.5;

/**
 * The automatic budget: half of V8's heap limit (what V8 picks for the
 * host, or --max-old-space-size). Call once, on the main thread: node:v8
 * costs an isolate memory (about 0.25 MiB once node:fs is loaded, as it is
 * there; several MiB on a listener thread that loads nothing from node:).
 * @returns bytes
 */
export async function automaticBudget(): Promise<number> {
  const { getHeapStatistics } = await import("node:v8");
  return Math.floor(getHeapStatistics().heap_size_limit * AUTO_SHARE);
}

/** The shared count of reserved bytes against the limit. */
export class MemoryBudget {
  /** Shared with listener threads ({@linkcode MemoryBudget.adopt}). */
  readonly shared: SharedArrayBuffer;
  #cells: Int32Array;

  private constructor(shared: SharedArrayBuffer) {
    this.shared = shared;
    this.#cells = new Int32Array(shared);
  }

  /**
   * A new budget (main thread, stand-alone process).
   * @param bytes the limit
   * @returns the budget
   */
  static create(bytes: number): MemoryBudget {
    const b = new MemoryBudget(new SharedArrayBuffer(8));
    b.#cells[LIMIT] = Math.max(1, Math.min(0x7fffffff, Math.floor(bytes / UNIT)));
    return b;
  }

  /**
   * The budget of the main thread, seen from a listener thread.
   * @param shared the main thread's {@linkcode MemoryBudget.shared}
   * @returns the same budget
   */
  static adopt(shared: SharedArrayBuffer): MemoryBudget {
    return new MemoryBudget(shared);
  }

  /** The limit in bytes. */
  get limit(): number {
    return Atomics.load(this.#cells, LIMIT) * UNIT;
  }

  /** Bytes reserved now by every session of the process. */
  get used(): number {
    return Atomics.load(this.#cells, USED) * UNIT;
  }

  /** A new, empty reservation for one session or message. */
  hold(): MemoryHold {
    return new MemoryHold(this);
  }

  /**
   * Reserves `units` KiB when they fit under the limit.
   * @param units KiB wanted
   * @returns whether they were reserved
   */
  take(units: number): boolean {
    const cells = this.#cells;
    const limit = Atomics.load(cells, LIMIT);
    let used = Atomics.load(cells, USED);
    for (;;) {
      if (used + units > limit) return false;
      const seen = Atomics.compareExchange(cells, USED, used, used + units);
      if (seen === used) return true;
      used = seen;
    }
  }

  /**
   * Gives back `units` KiB reserved with {@linkcode MemoryBudget.take}.
   * @param units KiB
   */
  give(units: number): void {
    if (units > 0) Atomics.sub(this.#cells, USED, units);
  }
}

/**
 * What one session (or one message) has reserved. The owner says how much
 * it holds in all; the hold reserves or gives back the difference.
 */
export class MemoryHold {
  #budget: MemoryBudget;
  #units = 0;

  /** @param budget the process's budget */
  constructor(budget: MemoryBudget) {
    this.#budget = budget;
  }

  /** Bytes reserved. */
  get bytes(): number {
    return this.#units * UNIT;
  }

  /**
   * Makes sure at least `total` bytes are reserved.
   * @param total the bytes the owner is about to hold in all
   * @returns false when the budget has no room (nothing changes then)
   */
  ensure(total: number): boolean {
    const want = Math.ceil(total / UNIT);
    if (want <= this.#units) return true;
    if (!this.#budget.take(want - this.#units)) return false;
    this.#units = want;
    return true;
  }

  /**
   * Gives back what is reserved beyond `total` bytes.
   * @param total the bytes the owner still holds
   */
  trim(total: number): void {
    const keep = Math.ceil(Math.max(0, total) / UNIT);
    if (keep >= this.#units) return;
    this.#budget.give(this.#units - keep);
    this.#units = keep;
  }

  /** Gives back everything (end of the message or session). */
  release(): void {
    this.trim(0);
  }
}
