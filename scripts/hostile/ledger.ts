/**
 * Acknowledged against found: every `250 ... queued as ID` any client of
 * the harness received is entered here with the time it arrived; a sweep
 * lists the complete files in incoming/ (owner-execute bit set), reads
 * each with the program's own queue reader (end record last, ready mode),
 * and moves it aside so the next sweep starts small. An acknowledgement
 * that arrived before a sweep began must by then be a complete file: the
 * server answers 250 only after the file is durable.
 *
 * smtp-source gives no queue IDs, only a running count; its messages are
 * matched by sender: the files found with its sender, summed over sweeps,
 * must never fall behind the count it reported before the sweep.
 *
 * @module
 */

import { join } from "node:path";
import { type QueueEntry, readQueueFile } from "../../src/queue/mod.ts";

/** A check on one acknowledged message's file (content included); a problem or undefined. */
export type ContentCheck = (entry: QueueEntry) => string | undefined;

interface Acked {
  at: number;
  source: string;
  check?: ContentCheck;
  settled: boolean;
}

/** A file a sweep found. */
export interface FoundFile {
  readonly id: string;
  readonly sender: string | undefined;
  readonly recipients: readonly string[];
  readonly complete: boolean;
  readonly problem?: string;
  readonly size: number;
}

/** What one sweep settled. */
export interface Settlement {
  /** Acknowledgements settled by this sweep (IDs and counted ones). */
  acked: number;
  /** Of those, found complete (and passing their content check). */
  complete: number;
  /** Problems: missing IDs, incomplete files, failed content checks, counts behind. */
  problems: string[];
  /** The files this sweep found (for attack checks). */
  files: FoundFile[];
}

/** One server instance's acknowledgements and sweeps. */
export class Ledger {
  #acked = new Map<string, Acked>();
  #found = new Map<string, FoundFile>();
  #countedAcked = new Map<string, number>();
  #countedSettled = new Map<string, number>();
  #countedBehind = new Map<string, number>();
  #senderFound = new Map<string, number>();
  #sweeps = 0;
  readonly queueDir: string;
  readonly trashDir: string;

  /**
   * @param queueDir the instance's queue directory
   * @param trashDir where swept files go (same file system)
   */
  constructor(queueDir: string, trashDir: string) {
    this.queueDir = queueDir;
    this.trashDir = trashDir;
  }

  /**
   * Enters one acknowledged message.
   * @param id the queue ID from the 250 reply
   * @param at when the reply arrived (epoch ms)
   * @param source who sent it (legit, an attack's name)
   * @param check what its content must satisfy
   */
  ack(id: string, at: number, source: string, check?: ContentCheck): void {
    if (!this.#acked.has(id)) this.#acked.set(id, { at, source, check, settled: false });
  }

  /**
   * Sets the running count of messages a client without queue IDs had
   * acknowledged. smtp-source counts a message when it sends the final
   * ".", before the reply: up to one message per session of the count may
   * never have been acknowledged (the one whose 4xx ended it, or those in
   * flight when it was stopped), so `unconfirmed` of the count are not held
   * against the server.
   * @param sender the envelope sender its files carry
   * @param total counted so far
   * @param unconfirmed how many of them may lack their 250 (its sessions)
   */
  counted(sender: string, total: number, unconfirmed = 0): void {
    const acked = Math.max(0, total - unconfirmed);
    this.#countedAcked.set(sender, Math.max(acked, this.#countedAcked.get(sender) ?? 0));
  }

  /**
   * Sweeps incoming/ and settles every acknowledgement that arrived before the sweep began.
   * @returns the settlement
   */
  async sweep(): Promise<Settlement> {
    const started = Date.now();
    const counted = new Map(this.#countedAcked);
    const incoming = join(this.queueDir, "incoming");
    const trash = join(this.trashDir, String(++this.#sweeps));
    await Deno.mkdir(trash, { recursive: true });
    const files: FoundFile[] = [];
    let names: string[] = [];
    try {
      names = (await Array.fromAsync(Deno.readDir(incoming))).filter((e) => e.isFile).map((e) =>
        e.name
      );
    } catch { /* no queue yet */ }
    const problems: string[] = [];
    for (const name of names) {
      const path = join(incoming, name);
      const st = await Deno.lstat(path).catch(() => undefined);
      // Only files marked complete: the rest are being written or are pool files.
      if (!st || ((st.mode ?? 0) & 0o100) === 0) continue;
      const acked = this.#acked.get(name);
      let entry: QueueEntry;
      try {
        entry = await readQueueFile(path, "incoming", acked?.check !== undefined);
      } catch (e) {
        problems.push(`${name}: cannot read: ${(e as Error).message}`);
        continue;
      }
      let problem = entry.problem;
      if (entry.complete && acked?.check) problem = acked.check(entry);
      const found: FoundFile = {
        id: name,
        sender: entry.sender,
        recipients: entry.recipients,
        complete: entry.complete && problem === undefined,
        ...(problem ? { problem } : {}),
        size: entry.size,
      };
      files.push(found);
      this.#found.set(name, found);
      if (entry.complete && entry.sender !== undefined) {
        this.#senderFound.set(entry.sender, (this.#senderFound.get(entry.sender) ?? 0) + 1);
      }
      await Deno.rename(path, join(trash, name)).catch(() => {});
    }
    let acked = 0;
    let complete = 0;
    for (const [id, a] of this.#acked) {
      if (a.settled || a.at >= started) continue;
      a.settled = true;
      acked++;
      const f = this.#found.get(id);
      if (f?.complete) complete++;
      else if (!f) problems.push(`${a.source}: ${id} acknowledged but not found`);
      else problems.push(`${a.source}: ${id}: ${f.problem ?? "incomplete"}`);
    }
    for (const [sender, total] of counted) {
      const before = this.#countedSettled.get(sender) ?? 0;
      const found = this.#senderFound.get(sender) ?? 0;
      this.#countedSettled.set(sender, total);
      acked += total - before;
      const behindNow = Math.max(0, total - found);
      const behindBefore = this.#countedBehind.get(sender) ?? 0;
      this.#countedBehind.set(sender, behindNow);
      complete += total - before - Math.max(0, behindNow - behindBefore);
      if (behindNow > 0) {
        problems.push(`${sender}: ${total} acknowledged, ${found} complete files found`);
      }
    }
    return { acked, complete, problems, files };
  }
}
