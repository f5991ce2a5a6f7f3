/**
 * Reads queue files for `smtpd queue list` and `smtpd queue cat`: the
 * envelope (arrival, sender, recipients, attributes), the content, and
 * whether the file is complete (ready mode and an end record). A truncated
 * or corrupted file is reported as such, never half-shown as a message.
 * Empty files not marked complete are left out of the list: they are the
 * daemon's pre-created pool files (file_pool.ts), or files whose first
 * byte is not written yet, and hold no message.
 *
 * @module
 */

import { concatBytes } from "../io/bytes.ts";
import { join } from "./path.ts";
import { decodeRecords, QueueFileError, REC } from "./queue_file.ts";
import { isQueueId } from "./queue_id.ts";

/** What a queue file holds. */
export interface QueueEntry {
  readonly id: string;
  readonly queue: string;
  readonly path: string;
  readonly size: number;
  /** Arrival time (ISO 8601), from the T record. */
  readonly arrival: string | undefined;
  readonly sender: string | undefined;
  readonly recipients: string[];
  readonly attributes: Record<string, string>;
  /** Complete: ready mode and an end record. */
  readonly complete: boolean;
  /** Why the file is not complete or could not be read. */
  readonly problem?: string;
  /** The message content (header and body lines), when asked for. */
  readonly content?: string;
}

/** The queues we look in. */
export const QUEUES = ["maildrop", "incoming", "active", "deferred", "hold"] as const;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * A record's text: UTF-8 (what an SMTPUTF8 address, an ORCPT or a header
 * holds), else each byte as the character of that code (ISO 8859-1). Not
 * TextDecoder("latin1"): that is windows-1252, which made "j\u00f6rg" show
 * as "j\u00c3\u00b6rg" and turned bytes 0x80-0x9F into other characters.
 * @param bytes the record's data
 * @returns the text
 */
function recordText(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    let out = "";
    for (const b of bytes) out += String.fromCharCode(b);
    return out;
  }
}

/**
 * Reads one queue file.
 * @param path the file
 * @param queue its queue name
 * @param withContent include the message content
 * @returns the entry
 */
export async function readQueueFile(
  path: string,
  queue: string,
  withContent = false,
): Promise<QueueEntry> {
  const id = path.slice(path.lastIndexOf("/") + 1);
  const st = await Deno.stat(path);
  const base = {
    id,
    queue,
    path,
    size: st.size,
    arrival: undefined,
    sender: undefined,
    recipients: [] as string[],
    attributes: {} as Record<string, string>,
  };
  const ready = ((st.mode ?? 0) & 0o700) === 0o700;
  let records;
  try {
    records = decodeRecords(await Deno.readFile(path));
  } catch (err) {
    const why = err instanceof QueueFileError ? err.message : (err as Error).message;
    return { ...base, complete: false, problem: `corrupt: ${why}` };
  }
  let arrival: string | undefined;
  let sender: string | undefined;
  const recipients: string[] = [];
  const attributes: Record<string, string> = {};
  let content = "";
  // A long content line is cont records and a norm record: decoded as one,
  // so a character split between records stays whole.
  let pending: Uint8Array[] = [];
  let inContent = false;
  let badTime = false;
  for (const r of records) {
    const text = () => recordText(r.data);
    switch (r.type) {
      case REC.time: {
        const secs = Number(text().split(" ")[0]);
        const when = new Date(secs * 1000);
        if (Number.isFinite(when.getTime())) arrival = when.toISOString();
        else badTime = true;
        break;
      }
      case REC.from:
        sender = text();
        break;
      case REC.rcpt:
        recipients.push(text());
        break;
      case REC.attr: {
        const t = text();
        const eq = t.indexOf("=");
        if (eq > 0) attributes[t.slice(0, eq)] = t.slice(eq + 1);
        break;
      }
      case REC.mesg:
        inContent = true;
        break;
      case REC.xtra:
        if (pending.length) content += recordText(concatBytes(pending));
        pending = [];
        inContent = false;
        break;
      case REC.norm:
        if (inContent && withContent) {
          content += recordText(concatBytes([...pending, r.data])) + "\n";
          pending = [];
        }
        break;
      case REC.cont:
        if (inContent && withContent) pending.push(r.data);
        break;
      case REC.end:
        break;
    }
  }
  // A file that stops inside a long line (truncated, or still being
  // written) shows what it has of it, as before these were decoded whole.
  if (pending.length) content += recordText(concatBytes(pending));
  // Complete means: ready mode, and the end record is the very last record.
  const sawEnd = records.at(-1)?.type === REC.end;
  const problem = !sawEnd
    ? "incomplete: no end record at the end"
    : badTime
    ? "corrupt: bad arrival time record"
    : !ready
    ? "incomplete: still being written"
    : undefined;
  return {
    ...base,
    arrival,
    sender,
    recipients,
    attributes,
    complete: sawEnd && ready && !badTime,
    ...(problem ? { problem } : {}),
    ...(withContent ? { content } : {}),
  };
}

/**
 * Whether a queue entry is an empty file never marked complete: a
 * pre-created pool file (empty, 0600) or one not yet written.
 * @param st the entry's stat
 * @returns true when it holds no message yet
 */
export function isUnwrittenFile(st: Deno.FileInfo): boolean {
  return st.isFile && st.size === 0 && ((st.mode ?? 0) & 0o100) === 0;
}

/** A queue directory that cannot be listed (missing, or not readable by this user). */
export class QueueReadError extends Error {
  /**
   * @param message what could not be read, and why
   * @param options the cause
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "QueueReadError";
  }
}

/** The path as an operator should see it: absolute. */
function absolute(path: string): string {
  return path.startsWith("/") ? path : join(Deno.cwd(), path);
}

async function assertReadableDir(path: string, what: string): Promise<void> {
  try {
    for await (const _ of Deno.readDir(path)) break;
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "no such directory" : (e as Error).message;
    throw new QueueReadError(`cannot read ${what} "${absolute(path)}": ${why}`, { cause: e });
  }
}

/**
 * Lists every queue file (deferred/ and hold/ may be hashed one level
 * deep), leaving out pool files and others not written yet.
 * @param queueDirectory the queue directory
 * @returns the entries, oldest first
 * @throws {QueueReadError} when the queue directory, or one of its queues, cannot be read
 */
export async function listQueue(queueDirectory: string): Promise<QueueEntry[]> {
  const out: QueueEntry[] = [];
  // A queue directory that is missing or that this user may not read is an
  // error, never an empty queue: the operator would believe no mail waits.
  await assertReadableDir(queueDirectory, "queue directory");
  for (const queue of QUEUES) {
    const dir = join(queueDirectory, queue);
    const walk = async (d: string, depth: number): Promise<void> => {
      let entries;
      try {
        entries = await Array.fromAsync(Deno.readDir(d));
      } catch (e) {
        // A queue not created yet holds nothing; one we may not read is no empty queue.
        if (e instanceof Deno.errors.NotFound) return;
        const why = (e as Error).message;
        throw new QueueReadError(`cannot read "${absolute(d)}": ${why}`, { cause: e });
      }
      for (const e of entries) {
        const p = join(d, e.name);
        if (e.isDirectory && depth === 0) await walk(p, 1);
        else if (e.isFile && isQueueId(e.name)) {
          // A file may go between the listing and its stat (a pool file removed at stop).
          const st = await Deno.stat(p).catch(() => undefined);
          if (!st || isUnwrittenFile(st)) continue;
          const entry = await readQueueFile(p, queue).catch(() => undefined);
          if (entry) out.push(entry);
        }
      }
    };
    await walk(dir, 0);
  }
  return out.sort((a, b) => (a.arrival ?? "").localeCompare(b.arrival ?? ""));
}

/**
 * Finds one queue file by ID.
 * @param queueDirectory the queue directory
 * @param id the queue ID
 * @returns the entry with content, or undefined
 * @throws {QueueReadError} when the queue directory cannot be read
 */
export async function findQueueFile(
  queueDirectory: string,
  id: string,
): Promise<QueueEntry | undefined> {
  await assertReadableDir(queueDirectory, "queue directory");
  if (!isQueueId(id)) return undefined;
  for (const queue of QUEUES) {
    for (
      const p of [join(queueDirectory, queue, id), join(queueDirectory, queue, id[0] ?? "", id)]
    ) {
      const exists = await Deno.lstat(p).then((st) => st.isFile, () => false);
      if (exists) return await readQueueFile(p, queue, true);
    }
  }
  return undefined;
}
