/**
 * A pool of empty queue files created ahead of need. Creating a file in a
 * busy queue directory is slow (it contends with the directory syncs), and
 * a new directory entry must be made durable before the client may see 250.
 * The pool moves both off the path of a message: files are created in
 * batches in the background, and one directory sync per batch makes all
 * their entries durable. A message then takes a ready file, writes it,
 * marks it complete (0700) and syncs it: one fsync per message, with its
 * directory entry already on stable storage.
 *
 * Pool files are empty and mode 0600, so every reader (ours, Postfix's)
 * takes them for files being written. Unused ones are removed on a clean
 * stop, and start-up recovery removes those a crash left behind.
 *
 * @module
 */

import { join } from "node:path";
import type { PoolMessage, PoolReply, PoolRequest } from "./pool_worker.ts";

type Waiter = { resolve: (r: PoolReply) => void; reject: (e: Error) => void };

/**
 * This thread's line to the pool helper thread (`pool_worker.ts`). The
 * process has one helper: the main thread starts it on first use and
 * hands every listener thread a MessagePort to it ({@linkcode PoolHelper.port}),
 * which that thread adopts ({@linkcode PoolHelper.adopt}).
 */
export class PoolHelper {
  static #shared: PoolHelper | undefined;
  #end: Worker | MessagePort;
  #seq = 0;
  #waiting = new Map<number, Waiter>();

  private constructor(end: Worker | MessagePort) {
    this.#end = end;
    end.onmessage = (e: MessageEvent<PoolReply>) => {
      const w = this.#waiting.get(e.data.seq);
      this.#waiting.delete(e.data.seq);
      w?.resolve(e.data);
    };
    if (end instanceof Worker) {
      end.onerror = (e) => {
        e.preventDefault();
        this.#failAll(new Error(e.message));
      };
    }
  }

  /** @returns this thread's helper (in the main thread, started on first use) */
  static shared(): PoolHelper {
    PoolHelper.#shared ??= new PoolHelper(
      new Worker(new URL("./pool_worker.ts", import.meta.url), { type: "module" }),
    );
    return PoolHelper.#shared;
  }

  /**
   * Makes a port (from the main thread's helper) this thread's helper.
   * @param port the port a listener thread was started with
   */
  static adopt(port: MessagePort): void {
    PoolHelper.#shared = new PoolHelper(port);
  }

  /** Ends this thread's line to the helper (and the helper, in the main thread). */
  static closeShared(): void {
    const helper = PoolHelper.#shared;
    PoolHelper.#shared = undefined;
    if (helper) helper.#close();
  }

  /** @returns a new port to the helper, for a listener thread (transfer it) */
  port(): MessagePort {
    const channel = new MessageChannel();
    const m: PoolMessage = { port: channel.port1 };
    this.#end.postMessage(m, [channel.port1]);
    return channel.port2;
  }

  /**
   * Sends one batch.
   * @param req directory, names and owner (the sequence number is added)
   * @returns the helper's answer
   */
  ask(req: Omit<PoolRequest, "seq">): Promise<PoolReply> {
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#waiting.set(seq, { resolve, reject });
      this.#end.postMessage({ ...req, seq });
    });
  }

  #failAll(err: Error): void {
    for (const w of this.#waiting.values()) w.reject(err);
    this.#waiting.clear();
  }

  #close(): void {
    this.#failAll(new Error("pool helper closed"));
    if (this.#end instanceof Worker) this.#end.terminate();
    else this.#end.close();
  }
}

/** A created file whose directory entry is durable. */
export interface PooledFile {
  readonly id: string;
  readonly path: string;
  /** Open for writing (the pool keeps only names, so no descriptors pile up). */
  readonly file: Deno.FsFile;
}

interface PooledName {
  readonly id: string;
  readonly path: string;
}

/** Options for {@linkcode FilePool}. */
export interface FilePoolOptions {
  /** Refill when fewer than this many files are ready. @default {64} */
  low?: number;
  /** Fill up to this many. @default {256} */
  high?: number;
  /** Owner for new files (mail_owner). */
  owner?: { uid: number; gid: number };
  /** Reports a failed refill (the direct path is used meanwhile). */
  onError?: (err: Error) => void;
}

/** Keeps ready, durable, empty queue files for one queue directory. */
export class FilePool {
  #dir: string;
  #newId: () => string;
  #ready: PooledName[] = [];
  #filling = false;
  #closed = false;
  #low: number;
  #high: number;
  #owner: { uid: number; gid: number } | undefined;
  #onError: (err: Error) => void;

  /**
   * @param dir the queue directory (e.g. .../incoming)
   * @param newId makes a fresh queue ID
   * @param options pool sizes, owner, error report
   */
  constructor(dir: string, newId: () => string, options: FilePoolOptions = {}) {
    this.#dir = dir;
    this.#newId = newId;
    this.#low = options.low ?? 64;
    this.#high = options.high ?? 256;
    this.#owner = options.owner;
    this.#onError = options.onError ?? (() => {});
  }

  /** Files ready now. */
  get size(): number {
    return this.#ready.length;
  }

  /**
   * Takes a ready file, or undefined when none is ready (the caller then
   * creates its file the slow way). Starts a refill when running low.
   * @returns a durable empty file, open for writing
   */
  take(): PooledFile | undefined {
    let taken: PooledFile | undefined;
    for (let n = this.#ready.pop(); n && !taken; n = taken ? undefined : this.#ready.pop()) {
      try {
        // No create: a name another process removed (two daemons on one
        // queue, its start-up recovery) just fails here and is skipped.
        taken = { ...n, file: Deno.openSync(n.path, { write: true }) };
      } catch { /* gone, or the file system is read-only: try the next / the slow path */ }
    }
    if (this.#ready.length < this.#low) void this.fill();
    return taken;
  }

  /** Creates files up to the high-water mark, then syncs the directory once. */
  async fill(): Promise<void> {
    if (this.#filling || this.#closed) return;
    this.#filling = true;
    try {
      const want = this.#high - this.#ready.length;
      if (want <= 0) return;
      const names = Array.from({ length: want }, () => this.#newId());
      const reply = await PoolHelper.shared().ask({ dir: this.#dir, names, owner: this.#owner });
      const made = reply.created.map((id) => ({ id, path: join(this.#dir, id) }));
      if (this.#closed) {
        for (const f of made) await discard(f);
        return;
      }
      this.#ready.push(...made);
      if (reply.error) this.#onError(new Error(reply.error));
    } catch (err) {
      if (!this.#closed) this.#onError(err as Error);
    } finally {
      this.#filling = false;
    }
  }

  /** Removes every unused file (clean stop), after any refill in progress. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#filling) await new Promise((r) => setTimeout(r, 10));
    const left = this.#ready;
    this.#ready = [];
    for (const f of left) await discard(f);
  }
}

async function discard(f: PooledName): Promise<void> {
  await Deno.remove(f.path).catch(() => {});
}
