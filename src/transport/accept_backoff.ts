/**
 * What a listener does when accept(2) fails. With every descriptor in use
 * (EMFILE, ENFILE) the kernel keeps reporting the listening socket as
 * readable, so an accept loop that simply retries spins at 100 % CPU and
 * starves the sessions that would free descriptors. {@linkcode AcceptBackoff}
 * waits instead, 10 ms doubling to 1 s, and logs one warning when a burst of
 * failures starts and one line when accepting has worked again for a second
 * (at the limit, each closed session lets one accept through before the
 * next failure: that is still the same burst).
 *
 * @module
 */

import { resourceShortage, SHORTAGE } from "../io/os_error.ts";

/** Where the backoff reports. */
export interface AcceptLog {
  warning(text: string): void;
  info(text: string): void;
}

/** Backoff settings (the defaults suit production). */
export interface BackoffOptions {
  /** First wait after a failure (ms). Default 10. */
  initialMs?: number;
  /** Longest wait (ms). Default 1000. */
  maxMs?: number;
  /** Accepting must work this long, without a failure, to end a burst (ms). Default 1000. */
  settleMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

/** Describes an accept error for the log: "too many open files", or its message. */
export function describeAcceptError(err: unknown): string {
  const shortage = resourceShortage(err);
  if (shortage) return SHORTAGE[shortage] as string;
  return String((err as Error)?.message ?? err).replace(/\s*\(os error \d+\)$/, "");
}

/**
 * Paces one listener's accept loop through a burst of failures.
 */
export class AcceptBackoff {
  #log: AcceptLog;
  #initial: number;
  #max: number;
  #now: () => number;
  #settle: number;
  #delay = 0;
  #since: number | undefined;
  #attempts = 0;
  #recoveredAt: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * @param log where the burst's warning and the recovery go
   * @param options waits and clock
   */
  constructor(log: AcceptLog, options: BackoffOptions = {}) {
    this.#log = log;
    this.#initial = options.initialMs ?? 10;
    this.#max = options.maxMs ?? 1000;
    this.#settle = options.settleMs ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  /** When the current burst of failures began (undefined: accepting works). */
  get failingSince(): number | undefined {
    return this.#since;
  }

  /**
   * Records a failed accept; the first of a burst is logged.
   * @param err what accept threw
   * @returns how long to wait before the next accept (ms)
   */
  failed(err: unknown): number {
    this.#attempts++;
    this.#recoveredAt = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#since === undefined) {
      this.#since = this.#now();
      this.#delay = this.#initial;
      this.#log.warning(`accept: ${describeAcceptError(err)}; backing off`);
    } else {
      // After an accept that worked, start again from the shortest wait.
      this.#delay = this.#delay === 0 ? this.#initial : Math.min(this.#max, this.#delay * 2);
    }
    return this.#delay;
  }

  /**
   * Records a successful accept. The burst ends, and its length is logged,
   * when no failure follows within the settling time.
   */
  succeeded(): void {
    if (this.#since === undefined || this.#recoveredAt !== undefined) return;
    this.#recoveredAt = this.#now();
    this.#delay = 0;
    this.#timer = setTimeout(() => this.#settled(), this.#settle);
  }

  /** Forgets a burst in progress without logging (the listener is closed). */
  dispose(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #settled(): void {
    this.#timer = undefined;
    if (this.#since === undefined || this.#recoveredAt === undefined) return;
    const ms = this.#recoveredAt - this.#since;
    this.#log.info(`accept: recovered after ${ms} ms, ${this.#attempts} attempts`);
    this.#since = undefined;
    this.#recoveredAt = undefined;
    this.#attempts = 0;
  }
}
