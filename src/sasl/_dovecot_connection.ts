/**
 * One connection to Dovecot's auth server: connect, handshake, then a read
 * loop that hands each OK/CONT/FAIL to the request waiting for its id. Many
 * sessions share it (requests are told apart by id; ids count up from 1
 * and are never reused on a connection). Every wait is bounded: connect and
 * handshake together, each write, each reply. Lines from the server are
 * bounded in length; a longer one, an unexpected end, a write that does not
 * finish, or a server that stays silent long after a reply is due, closes
 * the connection, and every request waiting on it gets a temporary failure.
 *
 * A reply that does not come within the timeout fails its own request
 * only. Dovecot delays the requests of a client address with recent
 * failures on purpose (auth_penalty, up to 15 s, plus auth_failure_delay,
 * 2 s by default), past the 10 s a session waits, and sends nothing else
 * meanwhile when no other session asks: so a client that guessed wrong a
 * few times must not make the connection every session shares be taken
 * for stuck (Postfix has one connection per session, so its timeout costs
 * only that session). The late request is not cancelled, so its reply,
 * when it comes, shows the server alive; only when nothing at all arrives
 * for {@linkcode STUCK_FACTOR} times the timeout is the connection closed.
 *
 * @module
 */

import {
  AUTH_PROTOCOL_MAJOR,
  encodeCancel,
  encodeHandshake,
  parseHandshakeLine,
  parseServerReply,
  type SaslMechanism,
  type ServerReply,
} from "./dovecot_protocol.ts";
import { LfLineReader, LineTooLongError } from "./_lf_reader.ts";
import type { SaslEndpoint } from "./sasl_path.ts";
import { writeAll } from "../io/reply_writer.ts";

/** A reply for a request, or the reason there will be none. */
export type RequestAnswer =
  | Exclude<ServerReply, { kind: "other" }>
  | { kind: "lost"; reason: string; unsent?: boolean };

/** Limits of a connection. */
export interface ConnectionLimits {
  /** Bound on connect + handshake, each write, and each reply, in ms. */
  readonly timeoutMs: number;
  /** Longest line accepted from the server, in bytes. */
  readonly maxLineLength: number;
  /** Most MECH lines kept from a handshake (the rest are ignored). */
  readonly maxMechanisms: number;
}

const LOST = "Connection lost to authentication server";
const MAX_ID = 0xffff_ffff;
/**
 * A server silent for this many times the timeout after a request was sent
 * is stuck: longer than Dovecot's own delays (15 s penalty + 2 s failure
 * delay against a 10 s timeout).
 */
const STUCK_FACTOR = 3;

/** An open, handshaken connection. */
export class DovecotConnection {
  readonly mechanisms: readonly SaslMechanism[];
  #conn: Deno.Conn;
  #reader: LfLineReader;
  #limits: ConnectionLimits;
  #waiters = new Map<number, (answer: RequestAnswer) => void>();
  #nextId = 1;
  #closed = false;
  #linesRead = 0;
  #writing: Promise<void> = Promise.resolve();
  #encoder = new TextEncoder();
  #onClose: (reason: string) => void;
  /** Runs while a request is overdue with the server silent (see {@linkcode STUCK_FACTOR}). */
  #silenceWatch: ReturnType<typeof setTimeout> | undefined;

  private constructor(
    conn: Deno.Conn,
    reader: LfLineReader,
    init: {
      mechanisms: SaslMechanism[];
      limits: ConnectionLimits;
      onClose: (reason: string) => void;
    },
  ) {
    this.#conn = conn;
    this.#reader = reader;
    this.mechanisms = init.mechanisms;
    this.#limits = init.limits;
    this.#onClose = init.onClose;
    void this.#readLoop();
  }

  /**
   * Connects and runs the handshake, all within `limits.timeoutMs`.
   * @param endpoint where the server listens
   * @param options limits, our pid, and a callback for when the connection ends
   * @returns the connection
   * @throws {Error} with a reason fit for a log line when it cannot be had
   */
  static async open(
    endpoint: SaslEndpoint,
    options: { limits: ConnectionLimits; pid: number; onClose: (reason: string) => void },
  ): Promise<DovecotConnection> {
    const { limits } = options;
    let conn: Deno.Conn | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        try {
          conn?.close();
        } catch { /* closed */ }
        reject(new Error("timed out"));
      }, limits.timeoutMs);
    });
    const attempt = (async () => {
      const c = endpoint.transport === "unix"
        ? await Deno.connect({ transport: "unix", path: endpoint.path })
        : await Deno.connect({ hostname: endpoint.hostname, port: endpoint.port });
      if (timedOut) {
        c.close();
        throw new Error("timed out");
      }
      conn = c;
      await writeAll(c, new TextEncoder().encode(encodeHandshake(options.pid)));
      const reader = new LfLineReader(c, limits.maxLineLength);
      const mechanisms = await readHandshake(reader, limits.maxMechanisms);
      return new DovecotConnection(c, reader, {
        mechanisms,
        limits,
        onClose: options.onClose,
      });
    })();
    try {
      return await Promise.race([attempt, deadline]);
    } catch (err) {
      attempt.catch(() => {});
      try {
        conn?.close();
      } catch { /* closed */ }
      throw err instanceof Error ? err : new Error(String(err));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Whether requests may still be sent. */
  get open(): boolean {
    return !this.#closed;
  }

  /**
   * A fresh request id, or undefined when the ids of this connection are
   * used up (the caller then opens a new connection).
   * @returns the id
   */
  newId(): number | undefined {
    if (this.#nextId > MAX_ID) return undefined;
    return this.#nextId++;
  }

  /**
   * Sends one line and waits for the reply to request `id`. The waiter is
   * in place before the line goes out, so a quick reply is not missed.
   * @param id the request id
   * @param line the line, LF-terminated
   * @returns the reply, or why there is none
   */
  async request(id: number, line: string): Promise<RequestAnswer> {
    if (this.#closed) return { kind: "lost", reason: LOST, unsent: true };
    const answer = new Promise<RequestAnswer>((resolve) => this.#waiters.set(id, resolve));
    const linesBefore = this.#linesRead;
    const sent = await this.#send(line);
    if (!sent) {
      this.#waiters.delete(id);
      return { kind: "lost", reason: LOST, unsent: true };
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<RequestAnswer>((resolve) => {
      timer = setTimeout(() => {
        resolve({ kind: "lost", reason: "Timeout waiting for authentication server" });
      }, this.#limits.timeoutMs);
    });
    const result = await Promise.race([answer, timeout]);
    clearTimeout(timer);
    if (result.kind === "lost" && this.#waiters.get(id) !== undefined) {
      this.#waiters.delete(id);
      // Nothing at all from the server while we waited: it may be stuck, or
      // Dovecot may be delaying this client on purpose. The request is left
      // to run (its late reply is ignored, and shows the server alive).
      if (this.#linesRead === linesBefore) this.#watchSilence(linesBefore);
      else this.cancel(id);
    }
    return result;
  }

  /**
   * Closes the connection if no line at all arrives from the server by
   * STUCK_FACTOR times the timeout after an overdue request was sent (one
   * watch at a time; a later overdue request starts its own once it ends).
   * @param linesBefore the count of lines read when that request was sent
   */
  #watchSilence(linesBefore: number): void {
    if (this.#closed || this.#silenceWatch !== undefined) return;
    this.#silenceWatch = setTimeout(() => {
      this.#silenceWatch = undefined;
      if (this.#linesRead === linesBefore) this.close("no reply from authentication server");
    }, (STUCK_FACTOR - 1) * this.#limits.timeoutMs);
  }

  /**
   * Tells the server to forget a request (best effort), and stops waiting for it.
   * @param id the request id
   */
  cancel(id: number): void {
    this.#waiters.delete(id);
    if (!this.#closed) void this.#send(encodeCancel(id));
  }

  /**
   * Closes the connection; waiting requests get a temporary failure.
   * @param reason why, for the log
   */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#silenceWatch);
    this.#silenceWatch = undefined;
    try {
      this.#conn.close();
    } catch { /* closed */ }
    const waiters = [...this.#waiters.values()];
    this.#waiters.clear();
    for (const w of waiters) w({ kind: "lost", reason: LOST });
    try {
      this.#onClose(reason);
    } catch { /* a callback's fault must not end the read loop badly */ }
  }

  async #send(line: string): Promise<boolean> {
    const bytes = this.#encoder.encode(line);
    const write = this.#writing.then(async () => {
      if (this.#closed) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), this.#limits.timeoutMs);
      });
      const ok = await Promise.race([
        writeAll(this.#conn, bytes).then(() => true, () => false),
        timeout,
      ]);
      clearTimeout(timer);
      if (!ok) this.close("cannot write to authentication server");
      return ok;
    });
    this.#writing = write.then(() => {});
    return await write;
  }

  async #readLoop(): Promise<void> {
    let reason = "authentication server closed the connection";
    try {
      for (;;) {
        const line = await this.#reader.readLine();
        if (line === null) break;
        this.#linesRead++;
        const reply = parseServerReply(line);
        if (reply.kind === "other") continue;
        const waiter = this.#waiters.get(reply.id);
        if (waiter === undefined) continue; // a request we gave up on
        this.#waiters.delete(reply.id);
        waiter(reply);
      }
    } catch (err) {
      reason = err instanceof LineTooLongError ? err.message : `read error: ${String(err)}`;
    }
    this.close(reason);
  }
}

async function readHandshake(
  reader: LfLineReader,
  maxMechanisms: number,
): Promise<SaslMechanism[]> {
  const mechanisms: SaslMechanism[] = [];
  let sawMech = false;
  let sawVersion = false;
  for (;;) {
    const line = await reader.readLine();
    if (line === null) throw new Error("connection closed during handshake");
    const parsed = parseHandshakeLine(line);
    switch (parsed.kind) {
      case "version":
        if (parsed.major !== AUTH_PROTOCOL_MAJOR) {
          throw new Error(
            `Protocol version mismatch (${parsed.major} vs. ${AUTH_PROTOCOL_MAJOR})`,
          );
        }
        sawVersion = true;
        break;
      case "mech":
        sawMech = true;
        if (mechanisms.length < maxMechanisms) mechanisms.push(parsed.mechanism);
        break;
      case "spid":
        if (!sawMech) {
          throw new Error("Connected to wrong auth socket (auth-master instead of auth-client)");
        }
        break;
      case "done":
        if (!sawVersion) throw new Error("Protocol error: DONE before VERSION");
        return mechanisms;
      case "bad":
        throw new Error(`Protocol error: ${parsed.what}`);
      case "other":
        break;
    }
  }
}
