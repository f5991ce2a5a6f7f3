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

/** Counts concurrent connections. */
export class ConnectionLimiter {
  #total = 0;
  #perClient = new Map<string, number>();
  #global: number;
  #client: number;
  #exempt: (address: string) => boolean;

  /**
   * @param limits global and per-client maximums (0 per client: none), and exempt clients
   */
  constructor(limits: { global: number; perClient: number; exempt: (address: string) => boolean }) {
    this.#global = limits.global;
    this.#client = limits.perClient;
    this.#exempt = limits.exempt;
  }

  /** Current number of sessions. */
  get total(): number {
    return this.#total;
  }

  /**
   * Admits a connection or says which limit it hits.
   * @param address the client address
   * @returns "ok" (call {@linkcode release} later), "global" or "client"
   */
  admit(address: string): Admission {
    if (this.#total >= this.#global) return "global";
    const n = this.#perClient.get(address) ?? 0;
    if (this.#client > 0 && n >= this.#client && !this.#exempt(address)) return "client";
    this.#total++;
    this.#perClient.set(address, n + 1);
    return "ok";
  }

  /**
   * Releases an admitted connection.
   * @param address the client address
   */
  release(address: string): void {
    this.#total--;
    const n = (this.#perClient.get(address) ?? 1) - 1;
    if (n <= 0) this.#perClient.delete(address);
    else this.#perClient.set(address, n);
  }
}
