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

import { DirSyncer } from "./dir_sync.ts";
import { join } from "./path.ts";

/**
 * One refill at a time in the whole process. Each listener thread fills
 * its own pool, but never while another thread does: a new name is looked
 * up (by the permission check, on the calling thread) under the queue
 * directory's lock, and a create may hold that lock while it waits for the
 * directory's blocks to reach the disk (another pool's directory sync).
 * Taking turns keeps that wait off every event loop. The main thread's
 * runtime makes the lock; listener threads' runtimes adopt its buffer.
 */
export class PoolLock {
  /** The lock's cell (0 free, 1 taken), to hand to a listener thread. */
  readonly buffer: SharedArrayBuffer;
  #cell: Int32Array;

  /**
   * @param buffer {@linkcode PoolLock.buffer} of the main thread's lock (a
   *   listener thread's runtime), or none for a new lock (the main thread's)
   */
  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.buffer = buffer;
    this.#cell = new Int32Array(buffer);
  }

  /**
   * Runs a task holding the lock. A holder that never lets go (a thread
   * ended mid-refill) is waited for at most `maxWaitMs`.
   * @param task the refill
   * @param maxWaitMs longest wait for the lock
   * @returns what the task returns
   */
  async run<T>(task: () => Promise<T>, maxWaitMs = 5000): Promise<T> {
    const end = Date.now() + maxWaitMs;
    while (Atomics.compareExchange(this.#cell, 0, 0, 1) !== 0 && Date.now() < end) {
      // Refills are short and rare: polling costs less than a waiting thread.
      await new Promise((r) => setTimeout(r, 2));
    }
    try {
      return await task();
    } finally {
      Atomics.store(this.#cell, 0, 0);
    }
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
  /** The directory's syncer, shared with the queue's other commits. @default {a new one} */
  syncer?: DirSyncer;
  /** The process's refill lock (the runtime's). @default {a lock of its own} */
  lock?: PoolLock;
}

/** Keeps ready, durable, empty queue files for one queue directory. */
export class FilePool {
  #dir: string;
  #newId: () => string;
  #ready: PooledName[] = [];
  /** The refill under way, if any. */
  #refill: Promise<void> | undefined;
  #closed = false;
  #low: number;
  #high: number;
  #owner: { uid: number; gid: number } | undefined;
  #onError: (err: Error) => void;
  #syncer: DirSyncer;
  #lock: PoolLock;

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
    this.#syncer = options.syncer ?? new DirSyncer(dir);
    this.#lock = options.lock ?? new PoolLock();
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
      let file: Deno.FsFile;
      try {
        // No create: a name another process removed (two daemons on one
        // queue, its start-up recovery) just fails here and is skipped.
        file = Deno.openSync(n.path, { write: true });
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) continue;
        // The file is there but cannot be opened now (a read-only file
        // system, no descriptors left): it stays in the pool, for a later
        // message or for removal at a clean stop; this one takes the slow path.
        this.#ready.push(n);
        break;
      }
      // Locked until the message is marked complete (see recover.ts); a
      // file another process's start-up recovery holds is skipped.
      let locked;
      try {
        locked = file.tryLockSync(true);
      } catch {
        // No lock to be had (ENOLCK, EIO): as when it cannot be opened.
        file.close();
        this.#ready.push(n);
        break;
      }
      if (locked) taken = { ...n, file };
      else file.close();
    }
    if (this.#ready.length < this.#low) void this.fill();
    return taken;
  }

  /**
   * Creates files up to the high-water mark, then syncs the directory once
   * (holding the process's {@linkcode PoolLock}).
   */
  fill(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    // A refill under way (take() starts one): its end, so that the daemon's
    // prefill waits for the files before it listens.
    this.#refill ??= this.#fill().finally(() => (this.#refill = undefined));
    return this.#refill;
  }

  async #fill(): Promise<void> {
    try {
      const want = this.#high - this.#ready.length;
      if (want <= 0) return;
      const made = await this.#lock.run(() => this.#create(want));
      if (this.#closed) {
        for (const f of made) await discard(f);
        return;
      }
      this.#ready.push(...made);
    } catch (err) {
      if (!this.#closed) this.#onError(err as Error);
    }
  }

  /**
   * Creates files one at a time (O_EXCL, 0600, owner): the opens run on
   * Deno's blocking pool, so this thread's event loop goes on meanwhile.
   */
  async #create(want: number): Promise<PooledName[]> {
    const made: PooledName[] = [];
    try {
      for (let i = 0; i < want; i++) {
        const id = this.#newId();
        const path = join(this.#dir, id);
        (await Deno.open(path, { write: true, createNew: true, mode: 0o600 })).close();
        made.push({ id, path });
        if (this.#owner) await Deno.chown(path, this.#owner.uid, this.#owner.gid);
      }
      await this.#syncer.sync();
      return made;
    } catch (err) {
      // Whatever was made is not known to be durable: remove it.
      for (const f of made) await discard(f);
      throw err;
    }
  }

  /**
   * Removes every unused file (clean stop), after any refill in progress.
   * At once: awaited one by one, the 256 removes of a listener thread took
   * longer than the main thread waits for it at a stop on a loaded host
   * (load 10), and the thread was ended with most of them left.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#refill; // it never rejects: #fill() reports its errors
    const left = this.#ready;
    this.#ready = [];
    for (const f of left) {
      try {
        Deno.removeSync(f.path);
      } catch { /* gone */ }
    }
  }
}

async function discard(f: PooledName): Promise<void> {
  await Deno.remove(f.path).catch(() => {});
}
