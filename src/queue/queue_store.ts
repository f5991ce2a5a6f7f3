/**
 * A queue directory's store: its subdirectories, the queue IDs of its
 * files, their record buffers and (daemon mode) pools of pre-created files.
 * One per thread, owned by the thread's runtime; a {@linkcode QueueFile}
 * writes one message.
 *
 * @module
 */

import { join } from "./path.ts";
import { DirSyncer } from "./dir_sync.ts";
import { FilePool, PoolLock } from "./file_pool.ts";
import type { SharedFileList } from "./shared_file_list.ts";
import { QueueIds } from "./queue_id.ts";
import { RecordBufferPool } from "./queue_file.ts";
import { QueueFile, type QueueName } from "./queue_writer.ts";
import { outOfDescriptors } from "../io/os_error.ts";

/** Creates queue files under one queue directory. */
/**
 * How long a message's commit waits, out of descriptors, for the reserved
 * descriptor another commit has (its write and fsync).
 */
const RESERVE_WAIT_MS = 1000;

/** A commit waiting for the reserved descriptor. */
interface ReserveWaiter {
  /** Opens its file now; false when still no descriptor is free (it waits on). */
  tryOpen(): boolean;
  /** The store is closing: no descriptor for it. */
  giveUp(): void;
}

export class QueueStore {
  readonly directory: string;
  #syncers = new Map<QueueName, DirSyncer>();
  #pools = new Map<QueueName, FilePool>();
  #owner: { uid: number; gid: number } | undefined;
  #usePool: boolean;
  #onPoolError: (err: Error) => void;
  #poolLock: PoolLock;
  #ids = new QueueIds();
  #buffers = new RecordBufferPool();
  /** Files being written: neither committed nor removed yet. */
  #unfinished = new Set<QueueFile>();
  /** A listener thread's: where it lists them for the main thread, and their slots there. */
  #shared: SharedFileList | undefined;
  #slots = new Map<QueueFile, number>();
  #settled = (f: QueueFile) => {
    this.#unfinished.delete(f);
    this.#unlist(f);
    this.#passOn();
  };
  /** Commits waiting for the reserve while another file has it, first come first. */
  #reserveWaiters: ReserveWaiter[] = [];
  /**
   * A descriptor held back for queue files (daemon mode): a queue
   * directory, opened read-only. Out of descriptors, a message that came in
   * whole needs one for its file; the listener's accept takes every one
   * that comes free (it closes idle connections to that end, and a flood
   * refills them), and with no idle session left to close the message got
   * 451. Closed, this one is free at once for the file of a message held
   * whole in memory (created at its commit); it is taken again when a queue
   * file is settled (its own descriptor just closed).
   */
  #reserve: Deno.FsFile | undefined;
  #reservePath: string | undefined;
  /**
   * Whether a commit may fsync on the calling thread instead of Deno's
   * blocking pool: set by a listener thread to "I serve this one session
   * only". A lone client (one message per connection, waiting for each
   * reply) then saves the hand-off to a pool thread and back; with other
   * sessions the fsync must not stall them.
   */
  inlineSync: () => boolean = () => false;
  /**
   * Called when creating a queue file fails for want of descriptors: a
   * listener closes an idle connection (true) and the create is tried once
   * more. Stand-alone mode has none to close.
   */
  makeRoom: () => boolean = () => false;

  /**
   * @param directory the queue_directory
   * @param options owner: uid/gid given to every new file (mail_owner);
   *   pool: keep pre-created files (daemon mode); onPoolError: report refill failures;
   *   poolLock: the process's refill lock (the runtime's; default: one of its own)
   */
  constructor(
    directory: string,
    options: {
      owner?: { uid: number; gid: number };
      pool?: boolean;
      onPoolError?: (err: Error) => void;
      poolLock?: PoolLock;
    } = {},
  ) {
    this.directory = directory;
    this.#owner = options.owner;
    this.#usePool = options.pool ?? false;
    this.#onPoolError = options.onPoolError ?? (() => {});
    this.#poolLock = options.poolLock ?? new PoolLock();
  }

  /**
   * Fills the pool for a queue ahead of the first message.
   * @param queue the queue
   */
  async prefill(queue: QueueName): Promise<void> {
    if (!this.#usePool) return;
    this.create(queue, new Date()).abandon();
    await this.#pools.get(queue)?.fill();
  }

  /** Removes the pool's unused files (clean stop). */
  async close(): Promise<void> {
    for (const p of this.#pools.values()) await p.close();
    this.#releaseReserve();
    this.#reservePath = undefined;
  }

  /** Opens the reserved descriptor when it is not held (none free: later). */
  #holdReserve(): void {
    if (this.#reserve || this.#reservePath === undefined) return;
    try {
      this.#reserve = Deno.openSync(this.#reservePath, { read: true });
    } catch { /* none free now: taken again when the next queue file is settled */ }
  }

  /**
   * A file was settled, its descriptor closed just before: the first commit
   * waiting for the reserve opens its file now, before anything else of
   * this thread runs, or else the reserve is taken again.
   */
  #passOn(): void {
    const next = this.#reserveWaiters[0];
    if (!next) this.#holdReserve();
    else if (next.tryOpen()) this.#reserveWaiters.shift();
  }

  /**
   * Opens a queue file with the reserved descriptor: closes it and opens
   * the file in the same step, so that nothing else on this thread (another
   * commit, an accept) has it in between; when another file has it, waits
   * (at most `RESERVE_WAIT_MS`) for a file to be settled.
   * @param open the file's create, synchronous
   * @returns the file, or undefined when no descriptor could be had
   */
  #withReserve = (open: () => Deno.FsFile): Promise<Deno.FsFile | undefined> => {
    if (this.#reservePath === undefined) return Promise.resolve(undefined);
    const held = this.#reserve;
    if (held) {
      this.#reserve = undefined;
      try {
        held.close();
      } catch { /* closed */ }
      try {
        return Promise.resolve(open());
      } catch (err) {
        // Taken by another thread in between: taken again at the next settle.
        return outOfDescriptors(err) ? Promise.resolve(undefined) : Promise.reject(err);
      }
    }
    return new Promise((resolve, reject) => {
      const waiter: ReserveWaiter = {
        tryOpen: () => {
          try {
            resolve(open());
          } catch (err) {
            // That file's settle freed no descriptor (it never had one): wait on.
            if (outOfDescriptors(err)) return false;
            reject(err);
          }
          clearTimeout(timer);
          return true;
        },
        giveUp: () => {
          clearTimeout(timer);
          resolve(undefined);
        },
      };
      const timer = setTimeout(() => {
        this.#reserveWaiters = this.#reserveWaiters.filter((w) => w !== waiter);
        resolve(undefined);
      }, RESERVE_WAIT_MS);
      this.#reserveWaiters.push(waiter);
    });
  };

  #releaseReserve(): void {
    try {
      this.#reserve?.close();
    } catch { /* closed */ }
    this.#reserve = undefined;
    for (const w of this.#reserveWaiters.splice(0)) w.giveUp();
  }

  /**
   * Removes every file still being written, at once (a stand-alone process
   * ending on a signal: nothing else would ever remove them).
   */
  removeUnfinished(): void {
    for (const f of this.#unfinished) {
      f.removeSync();
      this.#unlist(f);
    }
    this.#unfinished.clear();
  }

  /**
   * Lists every file being written from now on in memory the main thread
   * reads (a listener thread's store): a thread ended at a stop before it
   * removed them leaves them to the main thread ({@linkcode SharedFileList}).
   * @param list the list
   */
  shareUnfinished(list: SharedFileList): void {
    this.#shared = list;
  }

  #unlist(f: QueueFile): void {
    const slot = this.#slots.get(f);
    if (slot === undefined) return;
    this.#slots.delete(f);
    this.#shared?.remove(slot);
  }

  /**
   * Creates the queue subdirectories that do not exist yet, and makes sure
   * a queue file can be created in `queue` (and given to mail_owner): an
   * existing directory this process may not write would otherwise let it
   * start and answer every message 451 after its DATA.
   * A Postfix queue (its `public/qmgr` is there) whose `incoming/` belongs
   * to another user than the files this process writes there (no
   * mail_owner, or another one than Postfix's) is refused: Postfix's qmgr,
   * running as that user, could not open those files (mode 0700) and would
   * exit on each of them.
   * @param queue the subdirectory this mode writes (incoming, maildrop); none: no probe
   * @throws the error of the mkdir, the create, the chown or the owner check
   */
  async prepare(queue?: QueueName): Promise<void> {
    for (const sub of ["incoming", "maildrop", "hold", "deferred", "active", "public"]) {
      await Deno.mkdir(join(this.directory, sub), { recursive: true, mode: 0o700 });
    }
    if (queue === undefined) return;
    // An empty file of mode 0600 under one of our queue IDs: what a write
    // just begun looks like (start-up recovery removes one left by a crash).
    // Locked as a writer locks its file, so that the start-up recovery of
    // another process of ours on this queue (a daemon starting while a
    // stand-alone session starts) leaves it alone instead of removing it
    // under the chown.
    const probe = join(this.directory, queue, this.#ids.next(new Date()));
    const file = await Deno.open(probe, { write: true, createNew: true, mode: 0o600 });
    try {
      await file.tryLock(true);
      if (this.#owner) await Deno.chown(probe, this.#owner.uid, this.#owner.gid);
      // After the chown: a mail_owner other than Postfix's is as bad as none.
      if (queue === "incoming") await this.#checkPostfixOwner(probe);
    } finally {
      await Deno.remove(probe).catch(() => {});
      file.close();
    }
  }

  async #checkPostfixOwner(probe: string): Promise<void> {
    const qmgr = await Deno.lstat(join(this.directory, "public", "qmgr")).catch(() => undefined);
    if (!qmgr) return;
    const [mine, dir] = [await Deno.stat(probe), await Deno.stat(join(this.directory, "incoming"))];
    if (mine.uid === null || dir.uid === null || mine.uid === dir.uid) return;
    throw new Error(
      `it is a Postfix queue whose incoming/ belongs to uid ${dir.uid}, and the files this ` +
        `process writes there would belong to uid ${mine.uid} (mode 0700): Postfix's qmgr ` +
        "could not open them (it exits on each one); set mail_owner to that user (Postfix's " +
        'mail_owner, "postfix" in a stock install), or run as that user',
    );
  }

  /**
   * Starts a new queue file (nothing touches the disk yet).
   * @param queue incoming (daemon) or maildrop (stand-alone)
   * @param arrival the arrival time (used in the queue ID)
   * @returns a writer that owns the new file
   */
  create(queue: QueueName, arrival: Date): QueueFile {
    const dir = join(this.directory, queue);
    let syncer = this.#syncers.get(queue);
    if (!syncer) {
      syncer = new DirSyncer(dir);
      this.#syncers.set(queue, syncer);
    }
    const owner = this.#owner;
    // What every writer of this queue shares; a pool file or a new name adds its own.
    const common = {
      dir,
      queue,
      syncer,
      owner,
      buffers: this.#buffers,
      settled: this.#settled,
      reserve: this.#withReserve,
    };
    if (this.#usePool) {
      this.#reservePath ??= dir;
      this.#holdReserve();
      let pool = this.#pools.get(queue);
      if (!pool) {
        pool = new FilePool(dir, () => this.#ids.next(new Date()), {
          owner,
          lock: this.#poolLock,
          onError: this.#onPoolError,
          syncer,
        });
        this.#pools.set(queue, pool);
      }
      const ready = pool.take();
      if (ready) {
        return this.#track(
          new QueueFile({
            ...common,
            path: ready.path,
            id: ready.id,
            ready,
            inlineSync: this.inlineSync,
          }),
        );
      }
    }
    const id = this.#ids.next(arrival);
    return this.#track(
      new QueueFile({ ...common, path: join(dir, id), id, makeRoom: this.makeRoom }),
    );
  }

  #track(f: QueueFile): QueueFile {
    this.#unfinished.add(f);
    // Before the file is on disk (it is created later, or came from the pool empty).
    const slot = this.#shared?.add(`${f.queue}/${f.id}`);
    if (slot !== undefined) this.#slots.set(f, slot);
    return f;
  }
}
