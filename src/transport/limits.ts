/**
 * Connection limits for daemon mode: a global cap on concurrent sessions
 * (default_process_limit) and a per-client cap
 * (smtpd_client_connection_count_limit, with
 * smtpd_client_event_limit_exceptions, like Postfix's anvil). Refused
 * connections get a 421 and are closed before any session state exists.
 *
 * @module
 */

/** Why a connection was refused, or "ok". */
export type Admission = "ok" | "global" | "client";

const SLOTS = 4096;

/**
 * Counts concurrent connections. The counters live in a SharedArrayBuffer
 * so that listener threads (smtpd_listen_threads) share one count; clients
 * are counted in 4096 hashed slots, so two addresses may share a slot
 * (which can only make the per-client limit stricter, never looser).
 */
export class ConnectionLimiter {
  /** The shared counters: [0] total, [1..] per-client slots. */
  readonly shared: SharedArrayBuffer;
  #counts: Int32Array;
  #global: number;
  #client: number;
  #exempt: (address: string) => boolean;

  /**
   * @param limits global and per-client maximums (0 per client: none), and exempt clients
   * @param shared counters from another thread's limiter, to share its counts
   */
  constructor(
    limits: { global: number; perClient: number; exempt: (address: string) => boolean },
    shared?: SharedArrayBuffer,
  ) {
    this.#global = limits.global;
    this.#client = limits.perClient;
    this.#exempt = limits.exempt;
    this.shared = shared ?? new SharedArrayBuffer(4 * (1 + SLOTS));
    this.#counts = new Int32Array(this.shared);
  }

  /** Current number of sessions. */
  get total(): number {
    return Atomics.load(this.#counts, 0);
  }

  /**
   * Admits a connection or says which limit it hits.
   * @param address the client address
   * @returns "ok" (call {@linkcode release} later), "global" or "client"
   */
  admit(address: string): Admission {
    if (Atomics.add(this.#counts, 0, 1) >= this.#global) {
      Atomics.sub(this.#counts, 0, 1);
      return "global";
    }
    const slot = 1 + slotOf(address);
    const n = Atomics.add(this.#counts, slot, 1);
    if (this.#client > 0 && n >= this.#client && !this.#exempt(address)) {
      Atomics.sub(this.#counts, slot, 1);
      Atomics.sub(this.#counts, 0, 1);
      return "client";
    }
    return "ok";
  }

  /**
   * Releases an admitted connection.
   * @param address the client address
   */
  release(address: string): void {
    Atomics.sub(this.#counts, 0, 1);
    Atomics.sub(this.#counts, 1 + slotOf(address), 1);
  }
}

function slotOf(address: string): number {
  let h = 2166136261;
  for (let i = 0; i < address.length; i++) h = Math.imul(h ^ address.charCodeAt(i), 16777619);
  return (h >>> 0) % SLOTS;
}

/**
 * One listener thread's share of a {@linkcode ConnectionLimiter}'s counts:
 * the connections it admitted, per client slot, in a buffer the main thread
 * also holds. When the thread dies its sessions end with it, and
 * {@linkcode ConnectionLedger.returnTo} gives their slots back.
 */
export class ConnectionLedger {
  /** The counts, to hand to the thread: [0] total, [1..] per client slot. */
  readonly shared: SharedArrayBuffer;
  #counts: Int32Array;

  /** @param shared the buffer of the main thread's ledger for this thread (new when absent) */
  constructor(shared?: SharedArrayBuffer) {
    this.shared = shared ?? new SharedArrayBuffer(4 * (1 + SLOTS));
    this.#counts = new Int32Array(this.shared);
  }

  /** Connections this thread holds now. */
  get total(): number {
    return Atomics.load(this.#counts, 0);
  }

  /**
   * Counts a connection the limiter admitted ("ok").
   * @param address the client address
   */
  admitted(address: string): void {
    Atomics.add(this.#counts, 1 + slotOf(address), 1);
    Atomics.add(this.#counts, 0, 1);
  }

  /**
   * Uncounts a connection the limiter released.
   * @param address the client address
   */
  released(address: string): void {
    Atomics.sub(this.#counts, 0, 1);
    Atomics.sub(this.#counts, 1 + slotOf(address), 1);
  }

  /**
   * Gives every connection counted here back to the limiter and clears the
   * ledger. Only for a thread that has ended: its sessions are gone.
   * @param limiter the shared limiter
   * @returns how many connections were given back
   */
  returnTo(limiter: ConnectionLimiter): number {
    const shared = new Int32Array(limiter.shared);
    const total = Atomics.exchange(this.#counts, 0, 0);
    for (let slot = 1; slot <= SLOTS; slot++) {
      const n = Atomics.exchange(this.#counts, slot, 0);
      if (n !== 0) Atomics.sub(shared, slot, n);
    }
    if (total !== 0) Atomics.sub(shared, 0, total);
    return total;
  }
}
