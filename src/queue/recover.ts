/**
 * Start-up recovery: a crash can leave our files still being written (mode
 * 0600, without the owner-execute bit that marks a complete file, or no
 * end record) and unused files of the pre-created pool (empty,
 * 0600). They never look complete to a reader, but they should not linger
 * either: each unfinished one is moved to `<queue_directory>/corrupt/` and
 * logged, as Postfix sets damaged files aside; empty pool files are removed.
 *
 * Only files this program created are touched, told by their name
 * ({@linkcode isOurQueueId}): a queue shared with Postfix holds Postfix's
 * own files in progress (cleanup's in incoming/, postdrop's in maildrop/),
 * and those are left alone whatever their age or state.
 *
 * A file of ours that another live process of ours is writing (a
 * stand-alone `smtpd stdin` during a daemon restart, a second daemon on
 * the queue) is left alone too: a writer holds an exclusive flock(2) on
 * its file from creation until just before it marks the file complete,
 * and a crash releases it. Recovery decides and acts on a file only while
 * holding that lock itself, so a writer can never take a file recovery is
 * about to move. The writer's last step comes after its lock is gone (the
 * chmod that marks the file complete, or the removal of a message given
 * up): recovery looks at the mode again once it has moved a file, and puts
 * back one marked complete meanwhile.
 *
 * A file of ours marked complete is judged by its ends, as Postfix's qmgr
 * reads it (the size record gives the offset of the extracted segment,
 * which must run to the end record that ends the file), not by reading
 * its content: a queue can hold thousands of large complete files while
 * Postfix is stopped. The daemon lists our files before it makes its own
 * and looks at them once it listens, while it serves (src/daemon/serve.ts).
 *
 * @module
 */

import { join } from "./path.ts";
import { decodeRecords, parseSize, REC, SIZE_PAYLOAD_LENGTH } from "./queue_file.ts";
import { isOurQueueId } from "./queue_id.ts";
import { type QueueName, syncDirOnce } from "./queue_writer.ts";

/**
 * The owner-execute bit: Postfix's mark of a complete queue file, set by
 * every writer's final chmod (ours: 0700 in incoming/, 0744 in maildrop/).
 * A complete file of ours may also carry another mode than the one we gave
 * it: `postsuper -r` moves a queued message, name and mode 0700 kept, into
 * maildrop/ for pickup to enqueue again. Such a file is complete, not a
 * write in progress, and must be left for pickup.
 */
const MARKED_COMPLETE = 0o100;

/** What recovery did with one file. */
export interface Recovered {
  readonly queue: string;
  readonly name: string;
  readonly reason: string;
}

/** One file of ours found in incoming/ or maildrop/. */
export interface OurFile {
  readonly queue: QueueName;
  readonly name: string;
}

/**
 * Lists the files with our names in incoming/ and maildrop/: what a
 * recovery looks at. The daemon lists them before it makes its own pool
 * files (empty, 0600, not locked), so that a recovery running while it
 * serves never takes those for a crash's leftovers: a queue ID is never
 * given twice, so no file made later has a name on the list.
 * @param queueDirectory the queue directory
 * @returns the files, by queue
 */
export async function listOurFiles(queueDirectory: string): Promise<OurFile[]> {
  const out: OurFile[] = [];
  for (const queue of ["incoming", "maildrop"] as const) {
    try {
      for await (const e of Deno.readDir(join(queueDirectory, queue))) {
        if (e.isFile && isOurQueueId(e.name)) out.push({ queue, name: e.name });
      }
    } catch {
      continue;
    }
  }
  return out;
}

/** What {@linkcode recoverQueue} looks at and tells. */
export interface RecoverOptions {
  /** The files to look at (default: those there now, {@linkcode listOurFiles}). */
  readonly files?: readonly OurFile[];
  /** Told of each file set aside, as it is. */
  readonly found?: (r: Recovered) => void;
  /** Stops before the next file (a daemon stopping). */
  readonly signal?: AbortSignal;
}

/**
 * Sets aside our unfinished files in incoming/ and maildrop/ and removes
 * our unused pool files; leaves every other file alone.
 * @param queueDirectory the queue directory
 * @param options the files to look at, where to tell, when to stop
 * @returns the files set aside
 */
export async function recoverQueue(
  queueDirectory: string,
  options: RecoverOptions = {},
): Promise<Recovered[]> {
  const out: Recovered[] = [];
  const files = options.files ?? await listOurFiles(queueDirectory);
  for (const { queue, name } of files) {
    if (options.signal?.aborted) break;
    const reason = await recoverFile(queueDirectory, queue, name);
    if (!reason) continue;
    const r = { queue, name, reason };
    out.push(r);
    options.found?.(r);
  }
  return out;
}

/**
 * Looks at one of our files under its lock and removes it (unused pool
 * file) or sets it aside (unfinished).
 * @returns why it was set aside, or undefined when it was kept or removed
 */
async function recoverFile(
  queueDirectory: string,
  queue: QueueName,
  name: string,
): Promise<string | undefined> {
  const path = join(queueDirectory, queue, name);
  // The file is identified by its path's inode before the open and after
  // the lock, not by FsFile.stat(): Deno checks that one against the
  // file's resolved path, which the permission flags do not name when
  // queue_directory (or a directory above it) is a symbolic link.
  const before = await Deno.stat(path).catch(() => undefined);
  if (!before) return undefined; // gone meanwhile (committed and picked up, or removed)
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch {
    return undefined;
  }
  try {
    // Held by a live writer of ours: not a leftover.
    if (!(await file.tryLock(true))) return undefined;
    // Renamed or removed between the listing and the lock (a queue ID is
    // never given twice, so the same inode at the name is the file we
    // hold): not ours to judge.
    const st = await Deno.stat(path).catch(() => undefined);
    if (!st || st.ino !== before.ino) return undefined;
    const mode = (st.mode ?? 0) & 0o777;
    if (st.size === 0 && mode === 0o600) {
      // A pre-created pool file (or a file just created): nothing was ever written.
      await Deno.remove(path).catch(() => {});
      return undefined;
    }
    const reason = (mode & MARKED_COMPLETE) === 0
      ? "incomplete (still marked as being written)"
      : await missingEnd(file, st.size, path);
    if (!reason) return undefined;
    const corrupt = join(queueDirectory, "corrupt");
    await Deno.mkdir(corrupt, { recursive: true, mode: 0o700 });
    const target = join(corrupt, `${queue}.${name}`);
    try {
      await Deno.rename(path, target);
    } catch (err) {
      // Gone since the look: its writer moved it into hold/ or removed it.
      if (err instanceof Deno.errors.NotFound) return undefined;
      throw err;
    }
    if ((mode & MARKED_COMPLETE) === 0 && await markedSince(target)) {
      // A writer lets go of its lock just before it marks its file
      // complete (QueueFile.commit), and its chmod came between the look
      // and the move: its client is told 250, so the file goes back. (A
      // chmod by the old name fails once the file is moved, so the mode
      // seen after the move is the writer's last word.)
      await Deno.rename(target, path);
      await syncDirOnce(join(queueDirectory, queue));
      return undefined;
    }
    return reason;
  } finally {
    file.close();
  }
}

/**
 * Whether a file is marked complete now.
 * @param path the file
 */
async function markedSince(path: string): Promise<boolean> {
  const st = await Deno.stat(path).catch(() => undefined);
  return ((st?.mode ?? 0) & MARKED_COMPLETE) !== 0;
}

/** Bytes read at once from the start of a file: all of a small one. */
const READ_AHEAD = 8 * 1024;
/** The longest extracted segment looked at (ours are a few short records). */
const TAIL_LIMIT = 64 * 1024;
/** The size record: type, one length byte, the payload. */
const SIZE_RECORD_LENGTH = 2 + SIZE_PAYLOAD_LENGTH;

/**
 * Why a file marked complete is not: no end record, or unreadable records.
 * A file that {@linkcode endsAsRecorded} is complete without more reading;
 * any other is read whole, as it always was, to say why.
 * @param file the file, open and locked
 * @param size its size
 * @param path its path
 * @returns the reason, or undefined when it is complete
 */
async function missingEnd(
  file: Deno.FsFile,
  size: number,
  path: string,
): Promise<string | undefined> {
  if (await endsAsRecorded(file, size)) return undefined;
  try {
    const records = decodeRecords(await Deno.readFile(path));
    if (records.at(-1)?.type !== REC.end) return "no end record";
  } catch (err) {
    return `corrupt: ${(err as Error).message}`;
  }
  return undefined;
}

/**
 * Whether a file ends as its size record says, read as Postfix's qmgr
 * reads a queue file: the size record (first, fixed width, filled in by
 * the commit) gives the offset of the content and its length, so of the
 * extracted segment (X); from there the records run to an end record (E)
 * that ends the file. The content itself is not read: a queue can hold
 * thousands of large complete files while Postfix is stopped, and reading
 * 1,600 of 4.6 MB took a minute or more here.
 *
 * A file a crash cut short never passes: each check below reads bytes at
 * offsets the size record names, and a file cut anywhere before its end
 * either lacks them, or holds a size record that is still the writer's
 * placeholder (all zeros, which names no X), or stops inside the extracted
 * segment, where the records read from X end in a truncated record or in
 * one before the E (the writer puts one E, last). `recover_test.ts` cuts
 * a real file at every byte of its start and its end, and at each record.
 * @param file the file, open
 * @param size its size
 * @returns true when complete
 */
async function endsAsRecorded(file: Deno.FsFile, size: number): Promise<boolean> {
  const head = await readAt(file, 0, Math.min(size, READ_AHEAD));
  const at = (offset: number, length: number) =>
    offset + length <= head.length
      ? Promise.resolve(head.subarray(offset, offset + length))
      : readAt(file, offset, length);
  if (
    head.length < SIZE_RECORD_LENGTH || head[0] !== REC.size ||
    head[1] !== SIZE_PAYLOAD_LENGTH
  ) return false;
  const sizes = parseSize(head.subarray(2, SIZE_RECORD_LENGTH));
  if (!sizes) return false;
  const xtra = sizes.dataOffset + sizes.contentSize;
  // The content follows the M record; X and E fit before the end.
  if (sizes.dataOffset < SIZE_RECORD_LENGTH + 2 || xtra + 4 > size) return false;
  if (size - xtra > TAIL_LIMIT) return false;
  const mesg = await at(sizes.dataOffset - 2, 2);
  if (mesg[0] !== REC.mesg || mesg[1] !== 0) return false;
  let records;
  try {
    records = decodeRecords(await at(xtra, size - xtra));
  } catch {
    return false;
  }
  const first = records[0];
  const last = records.at(-1);
  return first?.type === REC.xtra && first.data.length === 0 &&
    last?.type === REC.end && last.data.length === 0;
}

/**
 * Reads `length` bytes at `offset`, fewer where the file ends first.
 * @returns the bytes read
 */
async function readAt(file: Deno.FsFile, offset: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  await file.seek(offset, Deno.SeekMode.Start);
  let got = 0;
  while (got < length) {
    const n = await file.read(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  return buf.subarray(0, got);
}
