/**
 * The attackers' SMTP connection: a `node:net` socket on loopback that may
 * bind its own source address (127.0.x.y, so that one harness process can
 * play many clients), with a byte-exact writer and a reply reader. It never
 * throws on a reset or a close: the attack asks {@linkcode SmtpConn.closed}.
 *
 * @module
 */

import { connect, type Socket } from "node:net";

/** Where to connect and from where. */
export interface OpenOptions {
  /** The server's port on 127.0.0.1. */
  port: number;
  /** Source address (127.0.0.0/8), or the system's choice. */
  localAddress?: string;
  /** Longest wait for the TCP handshake. @default {5000} */
  timeoutMs?: number;
}

const KEEP = 64 * 1024;

/** One client connection. */
export class SmtpConn {
  #sock: Socket;
  #buf = "";
  #partial = "";
  #waiters = new Set<() => void>();
  #closed = false;
  /** When the connection ended (server close, reset or ours), epoch ms. */
  closedAt: number | undefined;
  /** Whether the end came from the server's side (close or reset), not from us. */
  closedByServer = false;
  /** Bytes received. */
  bytesIn = 0;
  /** Reply lines with a final code (`ddd ` or `ddd\r\n`) received. */
  repliesIn = 0;
  /** The first bytes received after {@linkcode markInput} (up to 64). */
  firstAfterMark: string | undefined;
  #marked = false;

  private constructor(sock: Socket) {
    this.#sock = sock;
    sock.on("data", (chunk: Uint8Array) => this.#onData(chunk));
    sock.on("error", () => this.#onClose(true));
    sock.on("close", () => this.#onClose(true));
  }

  /**
   * Opens a connection.
   * @param options port, source address, timeout
   * @returns the connection
   * @throws Error when the handshake fails or times out
   */
  static open(options: OpenOptions): Promise<SmtpConn> {
    const { port, localAddress, timeoutMs = 5000 } = options;
    return new Promise((resolve, reject) => {
      const sock = connect({ host: "127.0.0.1", port, ...(localAddress ? { localAddress } : {}) });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error("connect timeout"));
      }, timeoutMs);
      const fail = (e: Error) => {
        clearTimeout(timer);
        sock.destroy();
        reject(e);
      };
      sock.once("error", fail);
      sock.once("connect", () => {
        clearTimeout(timer);
        sock.off("error", fail);
        resolve(new SmtpConn(sock));
      });
    });
  }

  /** Whether the connection has ended. */
  get closed(): boolean {
    return this.#closed;
  }

  #onData(chunk: Uint8Array): void {
    this.bytesIn += chunk.length;
    const text = latin1(chunk);
    if (this.#marked && this.firstAfterMark === undefined) this.firstAfterMark = text.slice(0, 64);
    this.#buf += text;
    if (this.#buf.length > 16 * KEEP) this.#buf = this.#buf.slice(-KEEP);
    // Count final reply lines without keeping them.
    let lines = this.#partial + text;
    let nl: number;
    while ((nl = lines.indexOf("\n")) >= 0) {
      if (/^\d{3}(?: |\r?$)/.test(lines.slice(0, nl))) this.repliesIn++;
      lines = lines.slice(nl + 1);
    }
    this.#partial = lines.length > 1024 ? lines.slice(-16) : lines;
    this.#wake();
  }

  #onClose(byServer: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.closedByServer = byServer;
    this.closedAt = Date.now();
    this.#wake();
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.add(done);
    });
  }

  /**
   * Writes bytes, waiting while the socket's buffer is full.
   * @param data text (latin1) or bytes
   * @returns false when the connection is closed
   */
  async write(data: string | Uint8Array): Promise<boolean> {
    if (this.#closed) return false;
    const ok = typeof data === "string" ? this.#sock.write(data, "latin1") : this.#sock.write(data);
    if (!ok && !this.#closed) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.#sock.off("drain", done);
          this.#waiters.delete(done);
          resolve();
        };
        this.#sock.once("drain", done);
        this.#waiters.add(() => {
          if (this.#closed) done();
        });
      });
    }
    return !this.#closed;
  }

  /**
   * Reads one complete (possibly multi-line) reply.
   * @param timeoutMs longest wait
   * @returns the reply; "" at end of stream or on timeout (with {@linkcode closed} telling which)
   */
  async reply(timeoutMs = 10000): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(this.#buf);
      if (m) {
        this.#buf = this.#buf.slice(m[0].length);
        return m[0];
      }
      const left = end - Date.now();
      if (this.#closed || left <= 0) return "";
      await this.#wait(left);
    }
  }

  /**
   * Waits until the server closes the connection.
   * @param timeoutMs longest wait
   * @returns whether it is closed
   */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (!this.#closed && Date.now() < end) await this.#wait(end - Date.now());
    return this.#closed;
  }

  /** Waits for any input (or the close), at most `timeoutMs`. */
  async waitInput(timeoutMs: number): Promise<void> {
    const before = this.bytesIn;
    const end = Date.now() + timeoutMs;
    while (!this.#closed && this.bytesIn === before && Date.now() < end) {
      await this.#wait(end - Date.now());
    }
  }

  /**
   * Sends a pipelined burst and waits for its replies.
   * @param burst the commands
   * @param replies how many replies the burst should get
   * @param timeoutMs the longest wait for them
   * @returns how many came (fewer when the connection closed or the wait ran out)
   */
  async burst(burst: string, replies: number, timeoutMs: number): Promise<number> {
    const before = this.repliesIn;
    if (!(await this.write(burst))) return 0;
    const end = Date.now() + timeoutMs;
    while (this.repliesIn - before < replies && !this.#closed && Date.now() < end) {
      await this.waitInput(1000);
    }
    return this.repliesIn - before;
  }

  /** Takes what was received and not yet read as replies. */
  takeBuffered(): string {
    const b = this.#buf;
    this.#buf = "";
    return b;
  }

  /** From now on, remember the first bytes that arrive ({@linkcode firstAfterMark}). */
  markInput(): void {
    this.#buf = "";
    this.#marked = true;
    this.firstAfterMark = undefined;
  }

  /**
   * Stops reading from the socket: what the server sends stays in the
   * kernel's buffers, which fill, so that its writes block (a client that
   * never reads its replies).
   */
  stopReading(): void {
    this.#sock.pause();
  }

  /** Closes the connection at once (RST if data is pending). */
  destroy(): void {
    if (!this.#closed) {
      this.#closed = true;
      this.closedAt = Date.now();
    }
    this.#sock.destroy();
    this.#wake();
  }
}

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}
