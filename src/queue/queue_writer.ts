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
 * time plus a per-store sequence where Postfix puts the inode number,
 * behind a mark Postfix never uses (queue_id.ts). From creation until it is
 * marked complete a file is write-locked (flock), which tells start-up
 * recovery in another process that it is not a leftover (recover.ts).
 *
 * @module
 */

import type { DirSyncer } from "./dir_sync.ts";
import type { PooledFile } from "./file_pool.ts";
import {
  formatSize,
  REC,
  type RecordBuffer,
  type RecordBufferPool,
  SIZE_PAYLOAD_LENGTH,
} from "./queue_file.ts";
import { outOfDescriptors } from "../io/os_error.ts";
import { join } from "./path.ts";

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

/** A recipient with the DSN facts Postfix keeps before its R record. */
export interface QueueRecipient {
  readonly address: string;
  /** DSN NOTIFY bits (Postfix's dsn_mask.h), when the client gave NOTIFY=. */
  readonly notify?: number;
  /** The DSN original recipient, "type;address" (Postfix's dsn_orig_rcpt). */
  readonly dsnOrcpt?: string;
  /**
   * The original recipient (O record) when it differs from the address: the
   * address as sent, before rewriting (Postfix's cleanup writes that one).
   */
  readonly original?: string;
}

/** Envelope facts written before the content. */
export interface EnvelopeRecords {
  readonly arrival: Date;
  readonly sender: string;
  readonly recipients: readonly (string | QueueRecipient)[];
  /** name=value attribute records, in order. */
  readonly attributes: readonly (readonly [string, string])[];
  /**
   * name=value attribute records written right after the sender record, as
   * Postfix's smtpd sends the BODY= encoding after MAIL FROM's address.
   */
  readonly senderAttributes?: readonly (readonly [string, string])[];
  /** Postfix's sendopts (the size record's sixth field): SMTPUTF8 bits. */
  readonly sendOpts?: number;
}

/**
 * What the extracted segment holds besides its start and end records, in
 * the order Postfix's cleanup writes what its smtpd sends after the
 * content: the content filter (L) and redirect (>) records, the named
 * attributes, then more recipients.
 */
export interface ExtractedRecords {
  /** Access action FILTER: `transport:destination`, for Postfix's qmgr. */
  readonly filter?: string | undefined;
  /** Access action REDIRECT: the address all recipients are replaced by. */
  readonly redirect?: string | undefined;
  /** name=value attribute records, in order. */
  readonly attributes?: readonly (readonly [string, string])[];
  /** Recipients added after the content (access action BCC). */
  readonly recipients?: readonly QueueRecipient[];
}

/** How {@linkcode QueueFile.commit} finishes a file. */
export interface CommitOptions {
  /** More sendopts bits found in the content (SMTPUTF8 header). */
  readonly sendOpts?: number;
  /** The file goes to hold/ (access action HOLD). */
  readonly hold?: boolean;
}

const FLUSH_AT = 256 * 1024;

/**
 * Waits for the descriptor of a connection just closed to be free: its
 * pending read holds it until the runtime cancels that read.
 * @returns after a few milliseconds
 */
function descriptorFreed(): Promise<void> {
  return new Promise((r) => setTimeout(r, 10));
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

/**
 * Syncs a directory once, so that its entries are durable (hold/, and
 * start-up recovery: rare, so no syncer is kept for them).
 * @param path the directory
 */
export async function syncDirOnce(path: string): Promise<void> {
  const dir = await Deno.open(path, { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
}

/** One queue file being written. */
export class QueueFile {
  /** The queue ID (also the file name). */
  readonly id: string;
  /** Full path of the file (in hold/ once a held message is committed). */
  path: string;
  readonly queue: QueueName;
  #dir: string;
  #owner: { uid: number; gid: number } | undefined;
  #file: Deno.FsFile | undefined;
  #syncer: DirSyncer;
  #buffers: RecordBufferPool;
  #buf: RecordBuffer;
  #spare: RecordBuffer | undefined;
  #flushed = 0; // bytes handed to the file (written or being written)
  #dataOffset = 0;
  #recipients = 0;
  /** The size record's qmgr flags: the union of the recipients' NOTIFY bits, shifted (qmgr_user.h). */
  #qmgrFlags = 0;
  #sendOpts = 0;
  #done = false;
  #chain: Promise<void> = Promise.resolve();
  /** Taken from the pool: created, its directory entry already durable. */
  #pooled: boolean;
  #inlineSync: () => boolean;
  #makeRoom: () => boolean;
  #reserve: (open: () => Deno.FsFile) => Promise<Deno.FsFile | undefined>;
  #settled: ((f: QueueFile) => void) | undefined;

  /** @param parts identity, directory syncer, owner and the store's record buffers */
  constructor(
    parts: {
      dir: string;
      path: string;
      id: string;
      queue: QueueName;
      syncer: DirSyncer;
      owner: { uid: number; gid: number } | undefined;
      buffers: RecordBufferPool;
      ready?: PooledFile;
      inlineSync?: () => boolean;
      makeRoom?: () => boolean;
      /** Opens a file with the descriptor the store holds back (undefined: none to be had). */
      reserve?: (open: () => Deno.FsFile) => Promise<Deno.FsFile | undefined>;
      /** Told once when the file is committed or removed (it writes no more). */
      settled?: (f: QueueFile) => void;
    },
  ) {
    this.#settled = parts.settled;
    this.#buffers = parts.buffers;
    this.#buf = parts.buffers.take();
    this.#inlineSync = parts.inlineSync ?? (() => false);
    this.#makeRoom = parts.makeRoom ?? (() => false);
    this.#reserve = parts.reserve ?? (() => Promise.resolve(undefined));
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
    for (const [name, value] of env.senderAttributes ?? []) {
      this.#buf.putText(REC.attr, `${name}=${value}`);
    }
    for (const r of env.recipients) this.#putRecipient(typeof r === "string" ? { address: r } : r);
    this.#sendOpts = env.sendOpts ?? 0;
    this.#buf.put(REC.mesg, new Uint8Array(0));
    this.#dataOffset = this.offset;
  }

  /**
   * Writes one recipient as Postfix's cleanup_out_recipient does: its DSN
   * records, then O and R; counts it for the size record.
   * @param r the recipient
   */
  #putRecipient(r: QueueRecipient): void {
    if (r.notify) {
      this.#buf.putText(REC.attr, `notify_flags=${r.notify}`);
      this.#qmgrFlags |= r.notify << 1;
    }
    if (r.dsnOrcpt) this.#buf.putText(REC.attr, `dsn_orig_rcpt=${r.dsnOrcpt}`);
    this.#buf.putText(REC.orcp, r.original ?? r.address);
    this.#buf.putText(REC.rcpt, r.address);
    this.#recipients++;
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
   * The small message's create on this thread; out of descriptors, the
   * store's reserved descriptor is closed for it (free at once, and taken
   * again when this file is closed, right after its write and fsync: no
   * client holds it while it sends; another commit that has it is waited
   * for, a second at most), or else an idle connection is closed
   * to make room, and the create is tried once more. A large message's
   * file, created while its client still sends, has no share in the reserve.
   * @returns the open file
   */
  async #createSmall(): Promise<Deno.FsFile> {
    try {
      return this.#createSync();
    } catch (err) {
      if (!outOfDescriptors(err)) throw err;
      const file = await this.#reserve(() => this.#createSync());
      if (file) return file;
      if (!this.#makeRoom()) throw err;
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
    this.#buf = this.#spare ?? this.#buffers.take();
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
   * A held message (access action HOLD) is renamed into hold/ before it
   * is marked complete, as Postfix's cleanup does; both directories are
   * synced.
   * @param extracted the records of the extracted segment
   * @param options more sendopts bits, and whether the file goes to hold/
   * @returns the message size of the size record (the content, headers
   *   added here included: what Postfix's qmgr logs as `size=`)
   * @throws {QueueWriteError} on any I/O failure (the file is then removed)
   */
  async commit(extracted: ExtractedRecords = {}, options: CommitOptions = {}): Promise<number> {
    const { sendOpts = 0, hold = false } = options;
    const xtraOffset = this.offset;
    this.#buf.put(REC.xtra, new Uint8Array(0));
    if (extracted.filter !== undefined) this.#buf.putText(REC.filt, extracted.filter);
    if (extracted.redirect !== undefined) this.#buf.putText(REC.rdr, extracted.redirect);
    for (const [name, value] of extracted.attributes ?? []) {
      this.#buf.putText(REC.attr, `${name}=${value}`);
    }
    for (const r of extracted.recipients ?? []) this.#putRecipient(r);
    this.#buf.put(REC.end, new Uint8Array(0));
    const contentSize = xtraOffset - this.#dataOffset;
    const size = new TextEncoder().encode(formatSize({
      contentSize,
      dataOffset: this.#dataOffset,
      recipientCount: this.#recipients,
      qmgrFlags: this.#qmgrFlags,
      contentLength: xtraOffset - this.#dataOffset,
      sendOpts: this.#sendOpts | sendOpts,
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
      if (hold) {
        // Into hold/ before it is marked complete, as Postfix's cleanup
        // does: a complete file still in incoming/ could be taken by
        // Postfix's qmgr between the chmod and the rename.
        const holdDir = this.#dir.replace(/[^/]+\/?$/, "hold");
        const target = join(holdDir, this.id);
        Deno.renameSync(this.path, target);
        this.path = target;
        Deno.chmodSync(this.path, READY_MODE.incoming);
        await Promise.all([file.sync(), this.#syncer.sync(), syncDirOnce(holdDir)]);
      } else if (this.#pooled) {
        Deno.chmodSync(this.path, READY_MODE[this.queue]);
        if (this.#inlineSync()) file.syncSync();
        else await file.sync();
      } else {
        Deno.chmodSync(this.path, READY_MODE[this.queue]);
        await Promise.all([file.sync(), this.#syncer.sync()]);
      }
      file.close();
      this.#file = undefined;
      this.#done = true;
      this.#releaseBuffers();
      return contentSize;
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
    else this.#releaseBuffers();
  }

  /**
   * Removes the file at once, unless committed (a stand-alone process about
   * to exit on a signal, as Postfix's postdrop does). Tried even when this
   * writer has not recorded the file as open: a signal can come while its
   * creation is in flight, when the file exists but its open has not
   * returned yet (the process exits right after, so the open never does).
   */
  removeSync(): void {
    if (this.#done) return;
    try {
      Deno.removeSync(this.path);
    } catch { /* gone, or never created */ }
  }

  /** Closes and removes the file (client gone, message refused, write error). */
  async abort(): Promise<void> {
    await this.#chain.catch(() => {});
    const created = this.#file !== undefined || this.#done || this.#pooled;
    // Removed before it is closed: closing lets go of the write lock, and
    // another daemon's start-up recovery would then take the file, still
    // there, for a crash's leftover and set it aside in corrupt/.
    if (created || this.#flushed > 0) await Deno.remove(this.path).catch(() => {});
    if (this.#file) {
      try {
        this.#file.close();
      } catch { /* already closed */ }
      this.#file = undefined;
    }
    this.#releaseBuffers();
  }

  #released = false;

  /** Hands the record buffers to the next file (once; this file writes no more). */
  #releaseBuffers(): void {
    if (this.#released) return;
    this.#released = true;
    this.#settled?.(this);
    this.#buffers.release(this.#buf);
    this.#buffers.release(this.#spare);
    this.#spare = undefined;
  }
}
