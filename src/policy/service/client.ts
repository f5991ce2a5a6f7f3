/**
 * A policy client: Postfix's attr_clnt/auto_clnt for one endpoint. An idle
 * connection is reused by the next request, of this session or another;
 * one that has been unused for max_idle, has lived max_ttl, or has served
 * request_limit requests is closed. Postfix keeps one connection per smtpd
 * process; here sessions share a thread, so a request that finds every
 * connection busy opens one more (so a slow answer for one session never
 * holds up another), and idle ones are closed after max_idle as usual.
 * A failed attempt (connect, write, timeout, closed connection, malformed
 * reply) closes its connection and is tried again after retry_delay, up
 * to try_limit attempts.
 *
 * @module
 */

import {
  type Connector,
  ExchangeError,
  type Framing,
  PolicyConnection,
  withDeadline,
} from "./connection.ts";
import type { ServiceSettings } from "./endpoint.ts";
import { type Attributes, encodeRequest } from "./protocol.ts";

/** The outcome of one request. */
export type PolicyAnswer =
  | { kind: "action"; action: string }
  | { kind: "failed"; reason: string };

/** What the client needs from outside. */
export interface ClientDeps {
  readonly connect: Connector;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly warn: (text: string) => void;
  /** How replies are framed (default: the policy protocol's). */
  readonly framing?: Framing;
  /**
   * Whether an attempt that timed out is tried again (default true, as
   * Postfix's policy client; its socketmap client retries only a broken
   * connection, so a hung server costs one timeout).
   */
  readonly retryTimeout?: boolean;
}

interface IdleEntry {
  conn: PolicyConnection;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** The client of one policy service endpoint. */
export class PolicyClient {
  readonly settings: ServiceSettings;
  #deps: ClientDeps;
  #idle: IdleEntry[] = [];
  /** Replaced by a reload: no connection is kept idle any more. */
  #retired = false;
  /** Connections opened so far (for tests and the log). */
  opened = 0;

  /**
   * @param settings the endpoint and its limits
   * @param deps connector, clock, sleep and the warning log
   */
  constructor(settings: ServiceSettings, deps: ClientDeps) {
    this.settings = settings;
    this.#deps = deps;
  }

  /** Idle connections now. */
  get idleCount(): number {
    return this.#idle.length;
  }

  /**
   * Sends a request, retrying as configured.
   * @param attrs the request attributes
   * @returns the server's action, or why there is none
   */
  request(attrs: Attributes): Promise<PolicyAnswer> {
    return this.exchange(encodeRequest(attrs));
  }

  /**
   * Sends an encoded request, retrying as configured.
   * @param bytes the request
   * @returns the reply, or why there is none
   */
  async exchange(bytes: Uint8Array): Promise<PolicyAnswer> {
    const s = this.settings;
    let reason = "";
    for (let attempt = 1; attempt <= s.tryLimit; attempt++) {
      const deadline = this.#deps.now() + s.timeout * 1000;
      let conn: PolicyConnection | undefined;
      try {
        conn = this.#take() ?? await this.#open(deadline);
        const action = await conn.exchange(bytes, deadline);
        conn.requests++;
        this.#release(conn);
        return { kind: "action", action };
      } catch (err) {
        conn?.close();
        reason = err instanceof ExchangeError || err instanceof Error ? err.message : String(err);
        if (this.#deps.retryTimeout === false && (err as ExchangeError).timedOut) break;
        if (attempt < s.tryLimit) await this.#deps.sleep(s.retryDelay * 1000);
      }
    }
    this.#deps.warn(`problem talking to server ${s.name}: ${reason}`);
    return { kind: "failed", reason };
  }

  /**
   * Retires the client after a reload replaced it: its idle connections are
   * closed now, and a request still made through it (by a session that
   * began before the reload) closes its connection when done, instead of
   * keeping it idle until max_idle for a client nothing else will use.
   */
  retire(): void {
    this.#retired = true;
    this.close();
  }

  /** Closes every idle connection (a stopping thread, tests). */
  close(): void {
    for (const { conn, timer } of this.#idle.splice(0)) {
      clearTimeout(timer);
      conn.close();
    }
  }

  #take(): PolicyConnection | undefined {
    const ttl = this.settings.maxTtl * 1000;
    for (;;) {
      const entry = this.#idle.pop();
      if (!entry) return undefined;
      clearTimeout(entry.timer);
      const { conn } = entry;
      if (conn.dead || (ttl > 0 && this.#deps.now() - conn.openedAt >= ttl)) {
        conn.close();
        continue;
      }
      conn.idle(false);
      return conn;
    }
  }

  async #open(deadline: number): Promise<PolicyConnection> {
    const s = this.settings;
    const abort = new AbortController();
    const pending = this.#deps.connect(s.endpoint, abort.signal);
    let late = false;
    try {
      const c = await withDeadline(pending, deadline, "connecting", () => {
        late = true;
        abort.abort();
      });
      this.opened++;
      return new PolicyConnection(c, this.#deps.now(), this.#deps.framing);
    } catch (err) {
      // A connection that completes after the deadline is closed at once.
      if (late) pending.then((c) => c.close(), () => {});
      const why = (err as Error).message;
      this.#deps.warn(`connect to ${s.name}: ${why}`);
      throw new ExchangeError(`connect to ${s.name}: ${why}`, late);
    }
  }

  #release(conn: PolicyConnection): void {
    const s = this.settings;
    const age = this.#deps.now() - conn.openedAt;
    const ttl = s.maxTtl * 1000;
    if (
      this.#retired || conn.dead || (s.requestLimit > 0 && conn.requests >= s.requestLimit) ||
      (ttl > 0 && age >= ttl)
    ) {
      conn.close();
      return;
    }
    const idleMs = s.maxIdle > 0 ? s.maxIdle * 1000 : Infinity;
    const wait = Math.min(idleMs, ttl > 0 ? ttl - age : Infinity);
    conn.idle(true);
    const entry: IdleEntry = { conn, timer: undefined };
    if (Number.isFinite(wait)) {
      entry.timer = setTimeout(() => {
        const at = this.#idle.indexOf(entry);
        if (at >= 0) this.#idle.splice(at, 1);
        conn.close();
      }, wait);
      unrefTimer(entry.timer);
    }
    this.#idle.push(entry);
  }
}

/** Lets the process exit while only this timer is pending. */
function unrefTimer(timer: ReturnType<typeof setTimeout>): void {
  if (typeof timer === "number") Deno.unrefTimer(timer);
  else (timer as { unref?: () => void }).unref?.();
}
