/**
 * Coalescing of trigger writes: at most one write per interval (one
 * second) for each target, in the whole process. A request that comes
 * while the target's gate is closed is not dropped: one write goes out
 * when the interval ends, covering every request made meanwhile; a write
 * by any thread after the request covers it too.
 *
 * The time of each target's last write lives in a
 * {@linkcode TriggerClock}, a SharedArrayBuffer that the main thread's
 * runtime makes and the listener threads' runtimes adopt, so the limit holds across threads (a
 * compare-and-swap decides which thread writes).
 *
 * @module
 */

/** The targets with a cell of their own (any other name shares by hash). */
const KNOWN = ["qmgr FADI", "qmgr W", "pickup W"];
const CELLS = 8;

/**
 * The process's last-write times, one cell per target (ms since the epoch).
 */
export class TriggerClock {
  /** The cells, to hand to a listener thread. */
  readonly buffer: SharedArrayBuffer;
  #cells: BigInt64Array;

  /**
   * @param buffer the main thread's {@linkcode TriggerClock.buffer} (a
   *   listener thread's runtime), or none for a new clock (the main thread's)
   */
  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(8 * CELLS)) {
    this.buffer = buffer;
    this.#cells = new BigInt64Array(buffer);
  }

  /**
   * The cell of a target.
   * @param target e.g. "qmgr FADI" (endpoint name and request)
   * @returns the cell index
   */
  static cellOf(target: string): number {
    const known = KNOWN.indexOf(target);
    if (known >= 0) return known;
    let h = 0;
    for (let i = 0; i < target.length; i++) h = (h * 31 + target.charCodeAt(i)) >>> 0;
    return KNOWN.length + h % (CELLS - KNOWN.length);
  }

  /** @returns the time of the cell's last write (0: never) */
  last(cell: number): number {
    return Number(Atomics.load(this.#cells, cell));
  }

  /**
   * Sets a cell from `expected` to `next` if no thread changed it meanwhile.
   * @returns whether it was set
   */
  swap(cell: number, expected: number, next: number): boolean {
    return Atomics.compareExchange(this.#cells, cell, BigInt(expected), BigInt(next)) ===
      BigInt(expected);
  }
}

/** What a gated send reports. */
export type GateOutcome = "sent" | "failed" | "deferred";

/** Options for {@linkcode TriggerGate}. */
export interface TriggerGateOptions {
  /** The shortest time between two writes. @default {1000} */
  intervalMs?: number;
  /** The clock shared by the threads (the runtime's). @default {a clock of its own} */
  clock?: TriggerClock;
  /** The time now (tests). @default {Date.now} */
  now?: () => number;
  /**
   * Whether a failed write closes the gate too. Yes for wakeups (no
   * Postfix behind us is normal: look again a second later); no for ETRN,
   * whose client is told the outcome and may try again at once.
   * @default {true}
   */
  failureCounts?: boolean;
}

/** One target's gate in one thread. */
export class TriggerGate {
  #cell: number;
  #send: () => Promise<boolean>;
  #clock: TriggerClock;
  #interval: number;
  #now: () => number;
  #failureCounts: boolean;
  /** The earliest request not yet covered by a write, while one is waiting. */
  #waitingSince: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inFlight = new Set<Promise<unknown>>();
  #timerDone: (() => void) | undefined;
  #timerPromise: Promise<void> | undefined;

  /**
   * @param target the target's name ("qmgr FADI": endpoint and request)
   * @param send makes one write; true when it was delivered
   * @param options interval, clock, failure handling
   */
  constructor(target: string, send: () => Promise<boolean>, options: TriggerGateOptions = {}) {
    this.#cell = TriggerClock.cellOf(target);
    this.#send = send;
    this.#clock = options.clock ?? new TriggerClock();
    this.#interval = options.intervalMs ?? 1000;
    this.#now = options.now ?? Date.now;
    this.#failureCounts = options.failureCounts ?? true;
  }

  /**
   * Asks for a write: made now when the gate is open, else once when the
   * interval ends (unless a write by any thread covers the request first).
   * @returns "sent"/"failed" for a write made now, "deferred" otherwise
   */
  async request(): Promise<GateOutcome> {
    const at = this.#now();
    const now = await this.#attempt();
    if (now !== "deferred") return now;
    this.#waitingSince ??= at;
    this.#arm();
    return "deferred";
  }

  /** Resolves when no write is in flight and none is waiting. */
  async settled(): Promise<void> {
    while (this.#inFlight.size > 0 || this.#timerPromise) {
      await Promise.all([...this.#inFlight, this.#timerPromise]);
    }
  }

  /** Writes now if the gate is open; "deferred" when it is closed. */
  async #attempt(): Promise<GateOutcome> {
    const t = this.#now();
    const prev = this.#clock.last(this.#cell);
    if (t - prev < this.#interval || !this.#clock.swap(this.#cell, prev, t)) return "deferred";
    const write = this.#send().catch(() => false);
    this.#inFlight.add(write);
    let ok: boolean;
    try {
      ok = await write;
    } finally {
      this.#inFlight.delete(write);
    }
    // A write that reached nobody need not hold the gate shut (ETRN).
    if (!ok && !this.#failureCounts) this.#clock.swap(this.#cell, t, prev);
    return ok ? "sent" : "failed";
  }

  #arm(): void {
    if (this.#timer !== undefined) return;
    const last = this.#clock.last(this.#cell);
    const delay = Math.max(1, last + this.#interval - this.#now() + 1);
    this.#timerPromise ??= new Promise((r) => (this.#timerDone = r));
    this.#timer = setTimeout(() => void this.#fire(), delay);
  }

  async #fire(): Promise<void> {
    this.#timer = undefined;
    const since = this.#waitingSince;
    // Requests from now on wait for a write after this one.
    this.#waitingSince = undefined;
    // Covered when a write (of any thread) was made after the request.
    if (since !== undefined && this.#clock.last(this.#cell) <= since) {
      if (await this.#attempt() === "deferred") {
        // Another thread took the gate first: look again when it opens.
        this.#waitingSince = Math.min(since, this.#waitingSince ?? since);
        this.#arm();
        return;
      }
    }
    this.#done();
  }

  #done(): void {
    if (this.#timer !== undefined) return;
    const done = this.#timerDone;
    this.#timerDone = undefined;
    this.#timerPromise = undefined;
    done?.();
  }
}
