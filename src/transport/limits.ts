/**
 * Connection limits for daemon mode, like Postfix's master and anvil: a
 * global cap on concurrent sessions (default_process_limit), stress mode
 * near that cap (smtpd_stress_threshold), and a per-client cap
 * (smtpd_client_connection_count_limit, with
 * smtpd_client_event_limit_exceptions).
 *
 * The global slot is taken at accept, before any session state exists; a
 * connection over the cap may wait a moment for a slot (as it would in
 * Postfix's listen queue), and is refused when none comes free. The
 * per-client slot is taken once the client's address is known: at accept,
 * or after the PROXY header when a load balancer sends one, so that
 * clients behind one balancer are counted apart. Per-client counts live in
 * 65,536 slots chosen by a hash of the address keyed with a random seed
 * drawn at start, so which addresses share a slot cannot be worked out
 * from outside (with a fixed hash, an attacker could pick addresses that
 * share a victim's slot and, holding smtpd_client_connection_count_limit
 * sessions from them, lock the victim out).
 *
 * @module
 */

import { keyedHash } from "./keyed_hash.ts";

/** Limits for a {@linkcode ConnectionLimiter}. */
export interface ConnectionLimits {
  /** Most concurrent sessions (default_process_limit). */
  readonly global: number;
  /** Most concurrent sessions per client address (0: no limit). */
  readonly perClient: number;
  /** Clients exempt from the per-client limit. */
  readonly exempt: (address: string) => boolean;
  /**
   * What a client is counted as: its address, or its network block
   * (client_range.ts); an exempt client is counted by its address.
   * @default {the address}
   */
  readonly range?: (address: string) => string;
  /** Percent of {@linkcode global} at which stress mode starts (0: never). @default {0} */
  readonly stressPercent?: number;
  /**
   * Told when the service enters (true) or leaves (false) stress mode,
   * with the session count then; across threads sharing the counters,
   * exactly one limiter reports each change.
   */
  readonly onStress?: (stressed: boolean, sessions: number) => void;
}

const TOTAL = 0;
const STRESS = 1;
/** The hash key of the per-client slots, shared by every thread. */
const SEED = 2;
/** Connections waiting for a global slot ({@linkcode ConnectionLimiter.enterWithin}). */
const WAITING = 3;
const FIRST_SLOT = 4;
const SLOTS = 65536;
/** How often a waiting connection looks for a slot given back by another thread (ms). */
const POLL_MS = 10;

/**
 * Counts concurrent connections. The counters live in a SharedArrayBuffer
 * so that listener threads (smtpd_listen_threads) share one count and one
 * stress state; clients are counted in 65,536 hashed slots, so two addresses
 * may share a slot (which can only make the per-client limit stricter,
 * never looser).
 *
 * Stress mode starts when a session brings the count to the threshold and
 * ends when the count falls below three quarters of it, so that a count
 * that hovers at the threshold does not flip the mode (and the log) with
 * every connection.
 */
export class ConnectionLimiter {
  /** The shared counters: total, stress flag, per-client slots. */
  readonly shared: SharedArrayBuffer;
  #counts: Int32Array;
  #global: number;
  #client: number;
  #exempt: (address: string) => boolean;
  #range: (address: string) => string;
  /** Sessions at which stress starts (0: never). */
  #stressAt: number;
  /** Stress ends when the count falls below this. */
  #calmBelow: number;
  #onStress: (stressed: boolean, sessions: number) => void;
  /** Wake-ups of this thread's waiting connections, oldest first. */
  #waiters: (() => void)[] = [];

  /**
   * @param limits the limits, and who hears of stress changes
   * @param shared counters from another thread's limiter, to share its counts
   */
  constructor(limits: ConnectionLimits, shared?: SharedArrayBuffer) {
    this.#global = limits.global;
    this.#client = limits.perClient;
    this.#exempt = limits.exempt;
    // An exempt client is counted by its own address, never with its block:
    // Postfix does not count it at all (hogger_list), and its sessions must
    // not count against the other clients of its block (a trusted /128 in a
    // provider's /84). Asked only when the block is not the address itself.
    const range = limits.range;
    this.#range = range
      ? (address) => {
        const unit = range(address);
        return unit !== address && this.#exempt(address) ? address : unit;
      }
      : (address) => address;
    const percent = limits.stressPercent ?? 0;
    this.#stressAt = percent > 0 ? Math.max(1, Math.ceil((limits.global * percent) / 100)) : 0;
    this.#calmBelow = Math.max(1, Math.ceil((this.#stressAt * 3) / 4));
    this.#onStress = limits.onStress ?? (() => {});
    this.shared = shared ?? new SharedArrayBuffer(4 * (FIRST_SLOT + SLOTS));
    this.#counts = new Int32Array(this.shared);
    if (!shared) this.#counts[SEED] = crypto.getRandomValues(new Int32Array(1))[0] as number;
  }

  /**
   * The per-client slot of an address, its network block's when clients
   * are counted by block (for {@linkcode ConnectionLedger}).
   * @param address the client address
   * @returns the slot, 0 to 65535
   */
  clientSlot(address: string): number {
    return slotOf(this.#range(address), Atomics.load(this.#counts, SEED));
  }

  /**
   * Sessions an address holds now, across threads (with the other
   * addresses of its slot: at least its own).
   * @param address the client address
   * @returns the count
   */
  clientCount(address: string): number {
    return Atomics.load(this.#counts, FIRST_SLOT + this.clientSlot(address));
  }

  /**
   * What an address is counted as: itself, or its network block
   * (`2001:db8::/84`) when clients are counted by block.
   * @param address the client address
   * @returns the address or the block
   */
  unit(address: string): string {
    return this.#range(address);
  }

  /**
   * Whether an address is exempt from the per-client limit
   * (smtpd_client_event_limit_exceptions).
   * @param address the client address
   * @returns true when exempt
   */
  exempt(address: string): boolean {
    return this.#exempt(address);
  }

  /** Current number of sessions. */
  get total(): number {
    return Atomics.load(this.#counts, TOTAL);
  }

  /** Whether the service is in stress mode now. */
  get stressed(): boolean {
    return Atomics.load(this.#counts, STRESS) === 1;
  }

  /**
   * Takes a global slot for a new connection; at the stress threshold,
   * the service enters stress mode.
   * @returns "ok" (call {@linkcode leave} later) or "global" (refuse it)
   */
  enter(): "ok" | "global" {
    return this.#take(false);
  }

  /**
   * Takes a global slot, waiting up to `ms` for one at the cap, as a
   * client waits in Postfix's listen queue until an smtpd process is free.
   * A slot given back on this thread goes to its oldest waiter at once;
   * one given back on another thread is seen within 10 ms. At most
   * `global` connections wait at once (across threads): past that the
   * answer comes at once.
   * @param ms the longest wait
   * @returns "ok" (call {@linkcode leave} later) or "global" (refuse it)
   */
  async enterWithin(ms: number): Promise<"ok" | "global"> {
    if (this.#take(false) === "ok") return "ok";
    if (ms <= 0) return "global";
    if (Atomics.add(this.#counts, WAITING, 1) >= this.#global) {
      Atomics.sub(this.#counts, WAITING, 1);
      return "global";
    }
    try {
      const until = Date.now() + ms;
      for (let left = ms; left > 0; left = until - Date.now()) {
        await this.#pause(Math.min(POLL_MS, left));
        if (this.#take(false) === "ok") return "ok";
      }
      return "global";
    } finally {
      Atomics.sub(this.#counts, WAITING, 1);
    }
  }

  /** Connections waiting for a global slot now (all threads). */
  get waiting(): number {
    return Atomics.load(this.#counts, WAITING);
  }

  /** Sleeps up to `ms`, or until this thread gives a slot back. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        const i = this.#waiters.indexOf(wake);
        if (i >= 0) this.#waiters.splice(i, 1);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#waiters.push(wake);
    });
  }

  /**
   * Takes a global slot past the cap: for a client that an idle session
   * just made room for (its slot comes back when that session ends, in a
   * moment).
   */
  enterInPlaceOfIdle(): void {
    this.#take(true);
  }

  #take(over: boolean): "ok" | "global" {
    const n = Atomics.add(this.#counts, TOTAL, 1) + 1;
    if (n > this.#global && !over) {
      Atomics.sub(this.#counts, TOTAL, 1);
      return "global";
    }
    if (
      this.#stressAt > 0 && n >= this.#stressAt &&
      Atomics.compareExchange(this.#counts, STRESS, 0, 1) === 0
    ) {
      this.#onStress(true, n);
    }
    return "ok";
  }

  /** Gives back a global slot taken by {@linkcode enter} or {@linkcode enterWithin}. */
  leave(): void {
    const n = Atomics.sub(this.#counts, TOTAL, 1) - 1;
    if (n < this.#calmBelow && Atomics.compareExchange(this.#counts, STRESS, 1, 0) === 1) {
      this.#onStress(false, n);
    }
    this.#waiters[0]?.();
  }

  /**
   * Takes a per-client slot for a connection that holds a global slot.
   * @param address the client address (the proxied one behind a balancer)
   * @returns true (call {@linkcode leaveClient} later), or false: over the limit
   */
  enterClient(address: string): boolean {
    const slot = FIRST_SLOT + this.clientSlot(address);
    const n = Atomics.add(this.#counts, slot, 1);
    if (this.#client > 0 && n >= this.#client && !this.#exempt(address)) {
      Atomics.sub(this.#counts, slot, 1);
      return false;
    }
    return true;
  }

  /**
   * Gives back a per-client slot taken by {@linkcode enterClient}.
   * @param address the same address
   */
  leaveClient(address: string): void {
    Atomics.sub(this.#counts, FIRST_SLOT + this.clientSlot(address), 1);
  }
}

/** A slot for an address. */
function slotOf(address: string, seed: number): number {
  return (keyedHash(address, seed) >>> 0) % SLOTS;
}

/**
 * One listener thread's share of a {@linkcode ConnectionLimiter}'s counts:
 * the global and per-client slots its sessions hold, in a buffer the main
 * thread also holds. When the thread dies its sessions end with it, and
 * {@linkcode ConnectionLedger.returnTo} gives their slots back.
 */
export class ConnectionLedger {
  /** The counts, to hand to the thread: [0] global slots, [1..] per client slot. */
  readonly shared: SharedArrayBuffer;
  #counts: Int32Array;

  /** @param shared the buffer of the main thread's ledger for this thread (new when absent) */
  constructor(shared?: SharedArrayBuffer) {
    this.shared = shared ?? new SharedArrayBuffer(4 * (1 + SLOTS));
    this.#counts = new Int32Array(this.shared);
  }

  /** Global slots this thread holds now. */
  get total(): number {
    return Atomics.load(this.#counts, 0);
  }

  /** Counts a global slot the limiter gave ({@linkcode ConnectionLimiter.enter}). */
  entered(): void {
    Atomics.add(this.#counts, 0, 1);
  }

  /** Uncounts a global slot given back ({@linkcode ConnectionLimiter.leave}). */
  left(): void {
    Atomics.sub(this.#counts, 0, 1);
  }

  /**
   * Counts a per-client slot ({@linkcode ConnectionLimiter.enterClient}).
   * @param slot the address's slot ({@linkcode ConnectionLimiter.clientSlot})
   */
  clientEntered(slot: number): void {
    Atomics.add(this.#counts, 1 + slot, 1);
  }

  /**
   * Uncounts a per-client slot ({@linkcode ConnectionLimiter.leaveClient}).
   * @param slot the address's slot ({@linkcode ConnectionLimiter.clientSlot})
   */
  clientLeft(slot: number): void {
    Atomics.sub(this.#counts, 1 + slot, 1);
  }

  /**
   * Gives every slot counted here back to the limiter and clears the
   * ledger. Only for a thread that has ended: its sessions are gone.
   * @param limiter the shared limiter
   * @returns how many global slots were given back
   */
  returnTo(limiter: ConnectionLimiter): number {
    const shared = new Int32Array(limiter.shared);
    for (let slot = 0; slot < SLOTS; slot++) {
      const n = Atomics.exchange(this.#counts, 1 + slot, 0);
      if (n !== 0) Atomics.sub(shared, FIRST_SLOT + slot, n);
    }
    const total = Atomics.exchange(this.#counts, 0, 0);
    for (let i = 0; i < total; i++) limiter.leave();
    return total;
  }
}
