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
