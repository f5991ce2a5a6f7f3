/**
 * Start-up recovery: a crash can leave files that were still being written
 * (mode 0600, a temporary name, or no end record). They never look
 * complete to a reader, but they should not linger either: each one is
 * moved to `<queue_directory>/corrupt/` and logged, as Postfix sets damaged
 * files aside. When the queue is shared with a running Postfix
 * (mail_owner is set), only files older than an hour are touched, so that
 * Postfix's own writes in progress are left alone.
 *
 * @module
 */

import { join } from "./path.ts";
import { decodeRecords, REC } from "./queue_file.ts";
import { READY_MODE } from "./queue_writer.ts";

/** What recovery did with one file. */
export interface Recovered {
  readonly queue: string;
  readonly name: string;
  readonly reason: string;
}

/**
 * Sets aside incomplete files in incoming/ and maildrop/.
 * @param queueDirectory the queue directory
 * @param options minAgeMs: only files not modified for this long
 * @returns the files set aside
 */
export async function recoverQueue(
  queueDirectory: string,
  options: { minAgeMs?: number } = {},
): Promise<Recovered[]> {
  const out: Recovered[] = [];
  const now = Date.now();
  for (const queue of ["incoming", "maildrop"] as const) {
    const dir = join(queueDirectory, queue);
    let names: string[];
    try {
      names = (await Array.fromAsync(Deno.readDir(dir))).filter((e) => e.isFile).map((e) => e.name);
    } catch {
      continue;
    }
    for (const name of names) {
      const path = join(dir, name);
      let st: Deno.FileInfo;
      try {
        st = await Deno.stat(path);
      } catch {
        continue; // gone meanwhile
      }
      if (options.minAgeMs && now - (st.mtime?.getTime() ?? now) < options.minAgeMs) continue;
      if (st.size === 0 && ((st.mode ?? 0) & 0o777) === 0o600 && /^[A-Za-z0-9_]+$/.test(name)) {
        // An unused file of the pre-created pool: nothing was ever written.
        await Deno.remove(path).catch(() => {});
        continue;
      }
      const reason = await whyIncomplete(path, name, st, READY_MODE[queue]);
      if (!reason) continue;
      const corrupt = join(queueDirectory, "corrupt");
      await Deno.mkdir(corrupt, { recursive: true, mode: 0o700 });
      await Deno.rename(path, join(corrupt, `${queue}.${name}`));
      out.push({ queue, name, reason });
    }
  }
  return out;
}

async function whyIncomplete(
  path: string,
  name: string,
  st: Deno.FileInfo,
  ready: number,
): Promise<string | undefined> {
  if (!/^[A-Za-z0-9_]+$/.test(name)) return "temporary file of an interrupted write";
  if (((st.mode ?? 0) & 0o777) !== ready) return "incomplete (still marked as being written)";
  try {
    const records = decodeRecords(await Deno.readFile(path));
    if (records.at(-1)?.type !== REC.end) return "no end record";
  } catch (err) {
    return `corrupt: ${(err as Error).message}`;
  }
  return undefined;
}
