/**
 * A deadline for I/O that costs one timer per session, not one per call:
 * the timer is armed lazily and re-armed only when it fires before the
 * deadline (a busy session moves the deadline on many times per period).
 * Used by the line reader (smtpd_timeout per request) and the reply writer.
 *
 * @module
 */

/** Races operations against a movable deadline with a single timer. */
export class Deadline {
  /** When the pending operation times out (ms since the epoch). */
  at = Number.POSITIVE_INFINITY;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the armed timer fires. */
  #timerDue = Number.POSITIVE_INFINITY;
  #pendingReject: ((err: Error) => void) | undefined;
  #timeoutError: () => Error;

  /** @param timeoutError makes the error a timed-out operation rejects with */
  constructor(timeoutError: () => Error) {
    this.#timeoutError = timeoutError;
  }

  /**
   * Runs one operation; it rejects with the timeout error if {@linkcode at} passes first.
   * @param op the operation (only one at a time)
   * @returns the operation's result
   */
  race<T>(op: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#pendingReject = reject;
      // A deadline moved earlier than the armed timer (a short final flush
      // after a long one) needs the timer brought forward.
      if (this.#timer === undefined || this.at < this.#timerDue) this.#arm();
      op.then(
        (v) => {
          this.#pendingReject = undefined;
          resolve(v);
        },
        (err) => {
          this.#pendingReject = undefined;
          reject(err);
        },
      );
    });
  }

  #arm(): void {
    clearTimeout(this.#timer);
    const left = Math.max(1, this.at - Date.now());
    this.#timerDue = Date.now() + left;
    this.#timer = setTimeout(() => this.#fire(), left);
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerDue = Number.POSITIVE_INFINITY;
    const reject = this.#pendingReject;
    if (!reject) return; // nothing waiting: the timer stays off until the next operation
    if (this.at - Date.now() > 0) {
      this.#arm();
      return;
    }
    this.#pendingReject = undefined;
    reject(this.#timeoutError());
  }

  /** Stops the timer (the session is over). */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDue = Number.POSITIVE_INFINITY;
    this.#pendingReject = undefined;
  }
}
