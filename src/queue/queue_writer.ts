/**
 * Durable queue-file commits, by Postfix's convention: the file is created
 * (O_EXCL, mode 0600) under a temporary name in its queue directory, renamed
 * to its queue ID once the inode is known, written, synced, then marked
 * complete by its mode (0700 in incoming/, 0744 in maildrop/ so that
 * Postfix's pickup can read it), and the directory is synced (coalesced)
 * before the caller may answer 250. Readers treat any other mode as "still
 * being written".
 *
 * @module
 */

import { join } from "node:path";
import { DirSyncer } from "./dir_sync.ts";
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
let tempCounter = 0;
/** Tells this thread's temporary names from other listener threads' (same PID). */
const THREAD_TAG = Array.from(
  crypto.getRandomValues(new Uint8Array(4)),
  (b) => b.toString(16).padStart(2, "0"),
)
  .join("");

/** Creates queue files under one queue directory. */
export class QueueStore {
  readonly directory: string;
  #syncers = new Map<QueueName, DirSyncer>();
  #owner: { uid: number; gid: number } | undefined;

  /**
   * @param directory the queue_directory
   * @param options owner: uid/gid given to every new file (mail_owner)
   */
  constructor(directory: string, options: { owner?: { uid: number; gid: number } } = {}) {
    this.directory = directory;
    this.#owner = options.owner;
  }

  /** Creates the queue subdirectories that do not exist yet. */
  async prepare(): Promise<void> {
    for (const sub of ["incoming", "maildrop", "deferred", "active", "public"]) {
      await Deno.mkdir(join(this.directory, sub), { recursive: true, mode: 0o700 });
    }
  }

  /**
   * Starts a new queue file.
   * @param queue incoming (daemon) or maildrop (stand-alone)
   * @param arrival the arrival time (used in the queue ID)
   * @returns a writer that owns the new file
   * @throws {QueueWriteError} when the file cannot be created
   */
  async create(queue: QueueName, arrival: Date): Promise<QueueFile> {
    const dir = join(this.directory, queue);
    const micros = (arrival.getTime() % 1000) * 1000 + (tempCounter++ % 1000);
    const temp = join(dir, `${micros}.${Deno.pid}.${THREAD_TAG}.${tempCounter}`);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
    } catch (err) {
      throw new QueueWriteError(`cannot create file in ${dir}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    try {
      if (this.#owner) await Deno.chown(temp, this.#owner.uid, this.#owner.gid);
      const { ino } = await file.stat();
      const id = makeQueueId(Math.floor(arrival.getTime() / 1000), micros % 1_000_000, ino ?? 0);
      const path = join(dir, id);
      await Deno.rename(temp, path);
      return new QueueFile({ file, path, id, queue, syncer: this.#syncer(queue, dir) });
    } catch (err) {
      file.close();
      await Deno.remove(temp).catch(() => {});
      throw new QueueWriteError(`cannot name queue file: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  #syncer(queue: QueueName, dir: string): DirSyncer {
    let s = this.#syncers.get(queue);
    if (!s) {
      s = new DirSyncer(dir);
      this.#syncers.set(queue, s);
    }
    return s;
  }
}

/** One queue file being written. */
export class QueueFile {
  /** The queue ID (also the file name). */
  readonly id: string;
  /** Full path of the file. */
  readonly path: string;
  readonly queue: QueueName;
  #file: Deno.FsFile;
  #syncer: DirSyncer;
  #buf = new RecordBuffer();
  #flushed = 0; // bytes already written to the file
  #dataOffset = 0;
  #recipients = 0;
  #closed = false;
  #chain: Promise<void> = Promise.resolve();
  #spare: RecordBuffer | undefined;

  /** @param parts the open file and its identity */
  constructor(
    parts: { file: Deno.FsFile; path: string; id: string; queue: QueueName; syncer: DirSyncer },
  ) {
    this.#file = parts.file;
    this.path = parts.path;
    this.id = parts.id;
    this.queue = parts.queue;
    this.#syncer = parts.syncer;
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
   * Appends one content line (N) or a piece of a long line (L).
   * @param bytes the line without terminator
   * @param partial whether the line continues in the next call
   */
  line(bytes: Uint8Array, partial: boolean): void | Promise<void> {
    this.#buf.put(partial ? REC.cont : REC.norm, bytes);
    if (this.#buf.length >= FLUSH_AT) return this.#flush();
  }

  #flush(): Promise<void> {
    // Swap buffers first: records added while a write is in flight go to the
    // new one, and writes are chained so they reach the file in order.
    const full = this.#buf;
    // Double buffering: the spare comes back when its write is done, so a
    // large message reuses two buffers instead of allocating one per flush.
    this.#buf = this.#spare ?? new RecordBuffer();
    this.#spare = undefined;
    this.#flushed += full.length;
    const bytes = full.bytes();
    this.#chain = this.#chain.then(async () => {
      let off = 0;
      try {
        while (off < bytes.length) off += await this.#file.write(bytes.subarray(off));
        full.clear();
        this.#spare = full;
      } catch (err) {
        throw new QueueWriteError(`cannot write ${this.path}: ${(err as Error).message}`, {
          cause: err,
        });
      }
    });
    return this.#chain;
  }

  /**
   * Ends the content, writes the extracted segment and the end record,
   * fixes the size record, syncs, marks the file complete and syncs its
   * directory. When this resolves, the message is on stable storage.
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
    if (size.length !== SIZE_PAYLOAD_LENGTH) throw new QueueWriteError("size record overflow");
    try {
      if (this.#flushed === 0) {
        this.#buf.bytes().set(size, 2); // type byte + one length byte (95 < 128)
        await this.#flush();
      } else {
        await this.#flush();
        await this.#file.seek(2, Deno.SeekMode.Start);
        await this.#file.write(size);
      }
      await this.#file.sync();
      this.#file.close();
      this.#closed = true;
      await Deno.chmod(this.path, READY_MODE[this.queue]);
      await this.#syncer.sync();
    } catch (err) {
      await this.abort();
      if (err instanceof QueueWriteError) throw err;
      throw new QueueWriteError(`cannot commit ${this.path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** Closes and removes the file (client gone, message refused, write error). */
  async abort(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      try {
        this.#file.close();
      } catch { /* already closed */ }
    }
    await Deno.remove(this.path).catch(() => {});
  }
}
