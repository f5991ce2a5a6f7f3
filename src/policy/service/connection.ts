/**
 * One connection to a policy server: a request is written, then bytes are
 * read until the reply's empty line, all within a deadline. A connection
 * reads all the time, so a server that closes it (or talks out of turn)
 * while it is idle is noticed before the next request is written, as
 * Postfix's attr_clnt does ("readable before we send anything").
 *
 * @module
 */

import { isAbsolute, join } from "node:path";
import { type ParsedReply, parseReply, REPLY_LIMIT } from "./protocol.ts";
import type { Endpoint } from "./endpoint.ts";

/** The byte stream to a server (a Deno.Conn). */
export interface Duplex {
  read(buffer: Uint8Array): Promise<number | null>;
  write(data: Uint8Array): Promise<number>;
  close(): void;
  ref?(): void;
  unref?(): void;
}

/** Opens a stream to an endpoint; an aborted signal gives up the attempt. */
export type Connector = (endpoint: Endpoint, signal?: AbortSignal) => Promise<Duplex>;

/**
 * The real connector: TCP or a UNIX-domain socket.
 * @param endpoint where to connect
 * @param signal aborts a TCP connect (one to a host that drops SYNs would
 *   otherwise hold its socket for the kernel's two minutes)
 * @returns the connection
 */
export function socketConnector(endpoint: Endpoint, signal?: AbortSignal): Promise<Duplex> {
  return endpoint.kind === "inet"
    ? Deno.connect({ hostname: endpoint.hostname, port: endpoint.port, signal })
    : Deno.connect({ transport: "unix", path: endpoint.path });
}

/**
 * Whether this process may connect to an endpoint (Deno's --allow-net:
 * hosts, and UNIX sockets by exact path).
 * @param endpoint the endpoint
 * @returns true when granted
 */
export function mayConnect(endpoint: Endpoint): boolean {
  const host = endpoint.kind === "unix"
    ? `unix:${isAbsolute(endpoint.path) ? endpoint.path : join(Deno.cwd(), endpoint.path)}`
    : `${
      endpoint.hostname.includes(":") ? `[${endpoint.hostname}]` : endpoint.hostname
    }:${endpoint.port}`;
  return Deno.permissions.querySync({ name: "net", host }).state === "granted";
}

/** Raised when an exchange fails; the connection is closed then. */
export class ExchangeError extends Error {
  /** Whether the deadline ended the exchange (or the connect). */
  readonly timedOut: boolean;
  constructor(message: string, timedOut = false) {
    super(message);
    this.name = "ExchangeError";
    this.timedOut = timedOut;
  }
}

/**
 * Races a promise against a deadline.
 * @param p the promise
 * @param deadline the time (ms since epoch) it must settle by
 * @param what for the error message
 * @param onLate run when the deadline wins, with the timeout's message
 * @returns the promise's value
 */
export async function withDeadline<T>(
  p: Promise<T>,
  deadline: number,
  what: string,
  onLate: (reason: string) => void = () => {},
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const reason = `timeout while ${what}`;
      onLate(reason);
      reject(new ExchangeError(reason, true));
    }, Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** How replies are framed: a parser of the bytes so far, and their bound. */
export interface Framing {
  parse(bytes: Uint8Array): ParsedReply & { trailing?: boolean };
  /** Bytes a reply may have; more is an error. */
  readonly limit: number;
}

/** The policy protocol's framing: attributes up to an empty line. */
export const POLICY_FRAMING: Framing = { parse: parseReply, limit: REPLY_LIMIT };

/** An open connection to a policy server. */
export class PolicyConnection {
  readonly openedAt: number;
  /** Requests answered on this connection. */
  requests = 0;
  #conn: Duplex;
  /** The reply so far: the first #length bytes (room doubles as it fills). */
  #buffer = new Uint8Array(0);
  #length = 0;
  #busy = false;
  #dead: string | undefined;
  /** Whether the deadline killed it. */
  #timedOut = false;
  #wake: (() => void) | undefined;
  #framing: Framing;

  /**
   * @param conn the stream
   * @param now the time it was opened (ms)
   * @param framing how replies end (default: the policy protocol's)
   */
  constructor(conn: Duplex, now: number, framing: Framing = POLICY_FRAMING) {
    this.#conn = conn;
    this.openedAt = now;
    this.#framing = framing;
    void this.#pump();
  }

  /** Why the connection cannot be used, or undefined when it can. */
  get dead(): string | undefined {
    return this.#dead;
  }

  async #pump(): Promise<void> {
    try {
      for (;;) {
        const chunk = new Uint8Array(4096);
        const n = await this.#conn.read(chunk);
        if (n === null) {
          this.#kill("connection closed by the server");
          return;
        }
        if (!this.#busy) {
          this.#kill("the server sent data out of turn");
          return;
        }
        if (this.#length + n > this.#framing.limit + 4096) {
          this.#kill(`reply longer than ${this.#framing.limit} bytes`);
          return;
        }
        // Grown by doubling: a server that sends a byte at a time must not
        // cost a copy of the whole reply per byte.
        if (this.#length + n > this.#buffer.length) {
          const next = new Uint8Array(Math.max(2 * this.#buffer.length, this.#length + n, 256));
          next.set(this.#buffer.subarray(0, this.#length));
          this.#buffer = next;
        }
        this.#buffer.set(chunk.subarray(0, n), this.#length);
        this.#length += n;
        this.#wake?.();
      }
    } catch (err) {
      this.#kill((err as Error).message);
    }
  }

  #kill(reason: string): void {
    this.#dead ??= reason;
    this.close();
    this.#wake?.();
  }

  /** Closes the stream. */
  close(): void {
    this.#dead ??= "closed";
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  /** Lets the process exit while this connection waits idle (or not). */
  idle(on: boolean): void {
    if (on) this.#conn.unref?.();
    else this.#conn.ref?.();
  }

  /**
   * Sends a request and reads the reply's action.
   * @param request the encoded request
   * @param deadline when the exchange must be over (ms since epoch)
   * @returns the action text
   * @throws {ExchangeError} for a timeout, a closed connection or a bad reply
   */
  async exchange(request: Uint8Array, deadline: number): Promise<string> {
    if (this.#dead) throw new ExchangeError(this.#dead);
    // The reply buffer is empty here: each exchange empties it when it ends.
    this.#busy = true;
    try {
      // The deadline kills the connection (its reader would go on).
      const late = (reason: string) => {
        this.#timedOut = true;
        this.#kill(reason);
      };
      await withDeadline(this.#writeAll(request), deadline, "sending the request", late);
      for (;;) {
        const r = this.#framing.parse(this.#buffer.subarray(0, this.#length));
        if (r.kind === "action") {
          if (r.trailing) this.#kill("the server sent more than one reply");
          return r.action;
        }
        if (r.kind === "error") throw new ExchangeError(r.reason);
        if (this.#dead) throw new ExchangeError(this.#dead, this.#timedOut);
        await withDeadline(
          new Promise<void>((resolve) => this.#wake = resolve),
          deadline,
          "waiting for the reply",
          late,
        );
      }
    } catch (err) {
      this.#kill((err as Error).message);
      throw err instanceof ExchangeError ? err : new ExchangeError((err as Error).message);
    } finally {
      this.#wake = undefined;
      this.#busy = false;
      // An idle connection keeps no reply buffer.
      this.#buffer = new Uint8Array(0);
      this.#length = 0;
    }
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }
}
