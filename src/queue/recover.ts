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
 * about to move.
 *
 * @module
 */

import { join } from "./path.ts";
import { decodeRecords, REC } from "./queue_file.ts";
import { isOurQueueId } from "./queue_id.ts";
import type { QueueName } from "./queue_writer.ts";

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

/**
 * Sets aside our unfinished files in incoming/ and maildrop/ and removes
 * our unused pool files; leaves every other file alone.
 * @param queueDirectory the queue directory
 * @returns the files set aside
 */
export async function recoverQueue(queueDirectory: string): Promise<Recovered[]> {
  const out: Recovered[] = [];
  for (const queue of ["incoming", "maildrop"] as const) {
    const dir = join(queueDirectory, queue);
    let names: string[];
    try {
      names = (await Array.fromAsync(Deno.readDir(dir))).filter((e) =>
        e.isFile && isOurQueueId(e.name)
      )
        .map((e) => e.name);
    } catch {
      continue;
    }
    for (const name of names) {
      const reason = await recoverFile(queueDirectory, queue, name);
      if (reason) out.push({ queue, name, reason });
    }
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
      : await missingEnd(path);
    if (!reason) return undefined;
    const corrupt = join(queueDirectory, "corrupt");
    await Deno.mkdir(corrupt, { recursive: true, mode: 0o700 });
    await Deno.rename(path, join(corrupt, `${queue}.${name}`));
    return reason;
  } finally {
    file.close();
  }
}

/** Why a file marked complete is not: no end record, or unreadable records. */
async function missingEnd(path: string): Promise<string | undefined> {
  try {
    const records = decodeRecords(await Deno.readFile(path));
    if (records.at(-1)?.type !== REC.end) return "no end record";
  } catch (err) {
    return `corrupt: ${(err as Error).message}`;
  }
  return undefined;
}
