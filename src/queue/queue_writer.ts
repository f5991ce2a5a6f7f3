/**
 * Durable queue-file commits, by Postfix's convention: the file is created
 * (O_EXCL, mode 0600) under its queue ID in its queue directory, written,
 * synced, then marked complete by its mode (0700 in incoming/, 0744 in
 * maildrop/ so that Postfix's pickup can read it), and the directory is
 * synced (coalesced) before the caller may answer 250. Readers treat any
 * other mode as "still being written".
 *
 * The file is created lazily: a small message is written with one open,
 * one write, one fsync, one chmod (and its share of a directory fsync) at
 * the end of DATA; a large one is created at its first 256 KiB. The queue
 * ID is known at once (it goes into Received:): Postfix's long-ID layout,
 * time plus a per-process sequence where Postfix puts the inode number,
 * behind a mark Postfix never uses (queue_id.ts). From creation until it is
 * marked complete a file is write-locked (flock), which tells start-up
 * recovery in another process that it is not a leftover (recover.ts).
 *
 * @module
 */

import { join } from "./path.ts";
import { DirSyncer } from "./dir_sync.ts";
import { FilePool, type PooledFile } from "./file_pool.ts";
import { makeQueueId } from "./queue_id.ts";
import { formatSize, REC, RecordBuffer, SIZE_PAYLOAD_LENGTH } from "./queue_file.ts";

/** The queues this writer can put files in. */
export type QueueName = "incoming" | "maildrop";

/** Mode of a complete file, per queue. */
export const READY_MODE: Record<QueueName, number> = { incoming: 0o700, maildrop: 0o744 };

/** Raised when the queue file cannot be written; the client gets a 451. */
export class QueueWriteError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "QueueWriteError";
  }
}

/** Envelope facts written before the content. */
export interface EnvelopeRecords {
  readonly arrival: Date;
  readonly sender: string;
  readonly recipients: readonly string[];
  /** name=value attribute records, in order. */
  readonly attributes: readonly (readonly [string, string])[];
}

const FLUSH_AT = 256 * 1024;
let sequence = 0;
/** Tells this thread's IDs from other listener threads' (same PID). */
const THREAD_TAG = crypto.getRandomValues(new Uint16Array(1))[0] ?? 0;

/**
 * A number unique to this process, thread and message, for the ID's last part.
 * @returns the number (below 2^53)
 */
function uniqueNumber(): number {
  sequence = (sequence + 1) % 65536;
  return ((Deno.pid % 1048576) * 65536 + THREAD_TAG) * 65536 + sequence;
}

/**
 * A fresh queue ID for a file created at this time.
 * @param when the time
 * @returns the ID
 */
function newQueueId(when: Date): string {
  const ms = when.getTime();
  const micros = (ms % 1000) * 1000 + (sequence % 1000);
  return makeQueueId(Math.floor(ms / 1000), micros, uniqueNumber());
}

/**
 * Record buffers of finished files, reused by the next ones (fewer
 * allocations). A large message grows its two buffers to 512 KiB each, so
 * the free list is bounded in bytes, not only in count: after a burst of
 * large messages a thread keeps at most 8 MiB.
 */
const freeBuffers: RecordBuffer[] = [];
const FREE_BUFFER_BYTES = 8 * 1024 * 1024;
let freeBytes = 0;

function takeBuffer(): RecordBuffer {
  const b = freeBuffers.pop();
  if (!b) return new RecordBuffer();
  freeBytes -= b.capacity;
  return b;
}

function releaseBuffer(b: RecordBuffer | undefined): void {
  if (!b || b.capacity > 512 * 1024 || freeBytes + b.capacity > FREE_BUFFER_BYTES) return;
  b.clear();
  freeBuffers.push(b);
  freeBytes += b.capacity;
}

/** Creates queue files under one queue directory. */
export class QueueStore {
  readonly directory: string;
  #syncers = new Map<QueueName, DirSyncer>();
  #pools = new Map<QueueName, FilePool>();
  #owner: { uid: number; gid: number } | undefined;
  #usePool: boolean;
  #onPoolError: (err: Error) => void;
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
   *   pool: keep pre-created files (daemon mode); onPoolError: report refill failures
   */
  constructor(
    directory: string,
    options: {
      owner?: { uid: number; gid: number };
      pool?: boolean;
      onPoolError?: (err: Error) => void;
    } = {},
  ) {
    this.directory = directory;
    this.#owner = options.owner;
    this.#usePool = options.pool ?? false;
    this.#onPoolError = options.onPoolError ?? (() => {});
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
  }

  /** Creates the queue subdirectories that do not exist yet. */
  async prepare(): Promise<void> {
    for (const sub of ["incoming", "maildrop", "deferred", "active", "public"]) {
      await Deno.mkdir(join(this.directory, sub), { recursive: true, mode: 0o700 });
    }
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
    if (this.#usePool) {
      let pool = this.#pools.get(queue);
      if (!pool) {
        pool = new FilePool(dir, () => newQueueId(new Date()), {
          owner,
          onError: this.#onPoolError,
          syncer,
        });
        this.#pools.set(queue, pool);
      }
      const ready = pool.take();
      if (ready) {
        return new QueueFile({
          dir,
          path: ready.path,
          id: ready.id,
          queue,
          syncer,
          owner,
          ready,
          inlineSync: this.inlineSync,
        });
      }
    }
    const id = newQueueId(arrival);
    return new QueueFile({
      dir,
      path: join(dir, id),
      id,
      queue,
      syncer,
      owner,
      makeRoom: this.makeRoom,
    });
  }
}

/**
 * Waits for the descriptor of a connection just closed to be free: its
 * pending read holds it until the runtime cancels that read.
 * @returns after a few milliseconds
 */
function descriptorFreed(): Promise<void> {
  return new Promise((r) => setTimeout(r, 10));
}

/** Whether an open failed for want of descriptors (EMFILE, ENFILE). */
function outOfDescriptors(err: unknown): boolean {
  return err instanceof Error && /os error 2[34]\b|too many open files/i.test(err.message);
}

/**
 * Takes the write lock of a file just created: held until the file is
 * marked complete, it tells start-up recovery (src/queue/recover.ts) that a
 * live process is writing the file. Only a recovery running at this very
 * moment can hold it, and that recovery removes the empty file.
 * @param file the new file
 */
function lockNew(file: Deno.FsFile): void {
  if (!file.tryLockSync(true)) throw new Error("taken by start-up recovery of another process");
}

/** One queue file being written. */
export class QueueFile {
  /** The queue ID (also the file name). */
  readonly id: string;
  /** Full path of the file. */
  readonly path: string;
  readonly queue: QueueName;
  #dir: string;
  #owner: { uid: number; gid: number } | undefined;
  #file: Deno.FsFile | undefined;
  #syncer: DirSyncer;
  #buf = takeBuffer();
  #spare: RecordBuffer | undefined;
  #flushed = 0; // bytes handed to the file (written or being written)
  #dataOffset = 0;
  #recipients = 0;
  #done = false;
  #chain: Promise<void> = Promise.resolve();
  /** Taken from the pool: created, its directory entry already durable. */
  #pooled: boolean;
  #inlineSync: () => boolean;
  #makeRoom: () => boolean;

  /** @param parts identity, directory syncer and owner */
  constructor(
    parts: {
      dir: string;
      path: string;
      id: string;
      queue: QueueName;
      syncer: DirSyncer;
      owner: { uid: number; gid: number } | undefined;
      ready?: PooledFile;
      inlineSync?: () => boolean;
      makeRoom?: () => boolean;
    },
  ) {
    this.#inlineSync = parts.inlineSync ?? (() => false);
    this.#makeRoom = parts.makeRoom ?? (() => false);
    this.#dir = parts.dir;
    this.path = parts.path;
    this.id = parts.id;
    this.queue = parts.queue;
    this.#syncer = parts.syncer;
    this.#owner = parts.owner;
    this.#file = parts.ready?.file;
    this.#pooled = parts.ready !== undefined;
  }

  /** Bytes of the file so far. */
  get offset(): number {
    return this.#flushed + this.#buf.length;
  }

  /**
   * Writes the envelope segment and the start of the content (M).
   * @param env sender, recipients, time and attributes
   */
  writeEnvelope(env: EnvelopeRecords): void {
    this.#buf.putText(
      REC.size,
      formatSize({
        contentSize: 0,
        dataOffset: 0,
        recipientCount: 0,
        qmgrFlags: 0,
        contentLength: 0,
        sendOpts: 0,
      }),
    );
    const ms = env.arrival.getTime();
    this.#buf.putText(REC.time, `${Math.floor(ms / 1000)} ${(ms % 1000) * 1000}`);
    this.#buf.putText(REC.attr, `create_time=${Math.floor(ms / 1000)}`);
    for (const [name, value] of env.attributes) this.#buf.putText(REC.attr, `${name}=${value}`);
    this.#buf.putText(REC.from, env.sender);
    for (const r of env.recipients) {
      this.#buf.putText(REC.orcp, r);
      this.#buf.putText(REC.rcpt, r);
    }
    this.#recipients = env.recipients.length;
    this.#buf.put(REC.mesg, new Uint8Array(0));
    this.#dataOffset = this.offset;
  }

  /**
   * Appends one content line (N) or a piece of a long line (L): `buf[start, end)`.
   * @param buf the bytes holding the line (without terminator)
   * @param start where the line begins
   * @param end where it ends
   * @param partial whether the line continues in the next call
   */
  line(buf: Uint8Array, start: number, end: number, partial: boolean): void | Promise<void> {
    this.#buf.putRange(partial ? REC.cont : REC.norm, buf, start, end);
    if (this.#buf.length >= FLUSH_AT) return this.#flush();
  }

  /**
   * Appends a run of whole CRLF lines as content records (N), one record
   * per line (see `RecordBuffer.putLines`).
   * @param buf the bytes holding the run
   * @param start where it begins
   * @param end where it ends (after the last CRLF)
   * @param lens each line's content length
   * @param count how many lines
   */
  lines(
    buf: Uint8Array,
    start: number,
    end: number,
    lens: Uint16Array,
    count: number,
  ): void | Promise<void> {
    this.#buf.putLines(REC.norm, buf, start, end, lens, count);
    if (this.#buf.length >= FLUSH_AT) return this.#flush();
  }

  /**
   * Creates the file (O_EXCL, 0600) when no pool file was ready, for a large
   * message at its first flush: inside the write chain, so the open runs on
   * Deno's blocking pool.
   * @returns the open file
   */
  async #create(): Promise<Deno.FsFile> {
    try {
      const open = () => Deno.open(this.path, { write: true, createNew: true, mode: 0o600 });
      this.#file = await open().catch(async (err) => {
        if (!outOfDescriptors(err) || !this.#makeRoom()) throw err;
        await descriptorFreed();
        return await open();
      });
      lockNew(this.#file);
      if (this.#owner) await Deno.chown(this.path, this.#owner.uid, this.#owner.gid);
    } catch (err) {
      throw this.#cannotCreate(err);
    }
    return this.#file;
  }

  /**
   * The same for a small message at commit, on this thread. Handing that
   * create to the blocking pool (20 clients, the pool run dry) took the
   * listener thread's CPU down, but cost 10% of the messages per second
   * with many messages per connection and gained nothing with one per
   * connection: the hand-off waits in front of the write and the fsync.
   * @returns the open file
   */
  #createSync(): Deno.FsFile {
    try {
      this.#file = Deno.openSync(this.path, { write: true, createNew: true, mode: 0o600 });
      lockNew(this.#file);
      if (this.#owner) Deno.chownSync(this.path, this.#owner.uid, this.#owner.gid);
    } catch (err) {
      throw this.#cannotCreate(err);
    }
    return this.#file;
  }

  /**
   * The small message's create on this thread; out of descriptors, an idle
   * connection is closed to make room and the create is tried once more.
   * @returns the open file
   */
  async #createSmall(): Promise<Deno.FsFile> {
    try {
      return this.#createSync();
    } catch (err) {
      if (!outOfDescriptors((err as Error).cause) || !this.#makeRoom()) throw err;
      await descriptorFreed();
      return this.#createSync();
    }
  }

  #cannotCreate(err: unknown): QueueWriteError {
    return new QueueWriteError(`cannot create file in ${this.#dir}: ${(err as Error).message}`, {
      cause: err,
    });
  }

  #flush(): Promise<void> {
    const full = this.#buf;
    // Double buffering: the spare comes back when its write is done, so a
    // large message reuses two buffers instead of allocating one per flush.
    this.#buf = this.#spare ?? takeBuffer();
    this.#spare = undefined;
    this.#flushed += full.length;
    const bytes = full.bytes();
    this.#chain = this.#chain.then(async () => {
      const file = this.#file ?? await this.#create();
      let off = 0;
      try {
        while (off < bytes.length) off += await file.write(bytes.subarray(off));
      } catch (err) {
        throw new QueueWriteError(`cannot write ${this.path}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      full.clear();
      this.#spare = full;
    });
    return this.#chain;
  }

  /**
   * Ends the content, writes the extracted segment and the end record,
   * fixes the size record, marks the file complete, then syncs it (and its
   * directory, for a file not from the pool). When this resolves, the
   * message and its mode are on stable storage.
   * @param extracted attribute records for the extracted segment
   * @throws {QueueWriteError} on any I/O failure (the file is then removed)
   */
  async commit(extracted: readonly (readonly [string, string])[] = []): Promise<void> {
    const xtraOffset = this.offset;
    this.#buf.put(REC.xtra, new Uint8Array(0));
    for (const [name, value] of extracted) this.#buf.putText(REC.attr, `${name}=${value}`);
    this.#buf.put(REC.end, new Uint8Array(0));
    const size = new TextEncoder().encode(formatSize({
      contentSize: xtraOffset - this.#dataOffset,
      dataOffset: this.#dataOffset,
      recipientCount: this.#recipients,
      qmgrFlags: 0,
      contentLength: xtraOffset - this.#dataOffset,
      sendOpts: 0,
    }));
    try {
      if (size.length !== SIZE_PAYLOAD_LENGTH) throw new QueueWriteError("size record overflow");
      if (this.#flushed === 0) {
        // Small message: everything is still in memory; one write.
        this.#buf.bytes().set(size, 2); // type byte + one length byte (95 < 128)
        const file = this.#file ?? await this.#createSmall();
        const bytes = this.#buf.bytes();
        let off = 0;
        while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
      } else {
        await this.#flush();
        const file = this.#file ?? await this.#create();
        await file.seek(2, Deno.SeekMode.Start);
        await file.write(size);
      }
      const file = this.#file;
      if (!file) throw new QueueWriteError(`${this.path}: not open at commit`);
      // Mark complete, then one fsync makes data and mode durable together
      // (Postfix's own order). A pool file's directory entry is durable
      // already; a file created just now needs its directory synced too, and
      // that sync runs beside the file's. (The mode must be synced: a file
      // still 0600 after a crash is set aside as a write in progress.)
      // The write lock goes first: Postfix's qmgr flock()s a complete file
      // and puts one it cannot lock back for 60 s.
      file.unlockSync();
      Deno.chmodSync(this.path, READY_MODE[this.queue]);
      if (this.#pooled) {
        if (this.#inlineSync()) file.syncSync();
        else await file.sync();
      } else {
        await Promise.all([file.sync(), this.#syncer.sync()]);
      }
      file.close();
      this.#file = undefined;
      this.#done = true;
      this.#releaseBuffers();
    } catch (err) {
      await this.abort();
      if (err instanceof QueueWriteError) throw err;
      throw new QueueWriteError(`cannot commit ${this.path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** Drops a file that was never written (no I/O unless it came from the pool). */
  abandon(): void {
    if (this.#pooled) void this.abort();
  }

  /** Closes and removes the file (client gone, message refused, write error). */
  async abort(): Promise<void> {
    await this.#chain.catch(() => {});
    const created = this.#file !== undefined || this.#done || this.#pooled;
    if (this.#file) {
      try {
        this.#file.close();
      } catch { /* already closed */ }
      this.#file = undefined;
    }
    if (created || this.#flushed > 0) await Deno.remove(this.path).catch(() => {});
    this.#releaseBuffers();
  }

  #released = false;

  /** Hands the record buffers to the next file (once; this file writes no more). */
  #releaseBuffers(): void {
    if (this.#released) return;
    this.#released = true;
    releaseBuffer(this.#buf);
    releaseBuffer(this.#spare);
    this.#spare = undefined;
  }
}
