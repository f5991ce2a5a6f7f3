/**
 * The names of the queue files a listener thread is writing, in memory the
 * main thread reads too. At a stop the main thread ends a listener thread
 * that has not stopped in time (one compiling a reload's tables hears
 * nothing until it is done; one starved of CPU on a loaded host); its files
 * in progress would then stay half-written. The thread lists each file
 * before it touches the disk and unlists it once committed or removed, so
 * that the main thread, once the thread is ended, removes those it left
 * ({@linkcode removeLeftUnfinished}).
 *
 * @module
 */

import { join } from "./path.ts";

/** The longest name listed (`incoming/` and a queue ID are about 30 bytes). */
const NAME_BYTES = 64;

/** A fixed number of slots: a length cell each (0: free), then the names' bytes. */
export class SharedFileList {
  /** The memory, to hand to the other thread. */
  readonly buffer: SharedArrayBuffer;
  #lengths: Int32Array;
  #bytes: Uint8Array;
  #next = 0;

  /**
   * @param from a new list with this many slots, or the buffer of another
   *   thread's list
   */
  constructor(from: number | SharedArrayBuffer) {
    this.buffer = typeof from === "number" ? new SharedArrayBuffer(from * (4 + NAME_BYTES)) : from;
    const slots = this.buffer.byteLength / (4 + NAME_BYTES);
    this.#lengths = new Int32Array(this.buffer, 0, slots);
    this.#bytes = new Uint8Array(this.buffer, slots * 4);
  }

  /**
   * Lists a name (only the thread that writes the files does).
   * @param name a path under the queue directory (`incoming/ID`)
   * @returns its slot, or undefined when every slot is taken or the name is too long
   */
  add(name: string): number | undefined {
    const bytes = new TextEncoder().encode(name);
    if (bytes.length === 0 || bytes.length > NAME_BYTES) return undefined;
    const slots = this.#lengths.length;
    for (let i = 0; i < slots; i++) {
      const slot = (this.#next + i) % slots;
      if (Atomics.load(this.#lengths, slot) !== 0) continue;
      this.#bytes.set(bytes, slot * NAME_BYTES);
      // The length last: a reader sees the whole name or none.
      Atomics.store(this.#lengths, slot, bytes.length);
      this.#next = (slot + 1) % slots;
      return slot;
    }
    return undefined;
  }

  /** Unlists the name in a slot. */
  remove(slot: number): void {
    Atomics.store(this.#lengths, slot, 0);
  }

  /** @returns the names listed */
  names(): string[] {
    const out: string[] = [];
    for (let slot = 0; slot < this.#lengths.length; slot++) {
      const length = Atomics.load(this.#lengths, slot);
      if (length === 0) continue;
      const at = slot * NAME_BYTES;
      // Copied out: TextDecoder does not read shared memory.
      out.push(new TextDecoder().decode(this.#bytes.slice(at, at + length)));
    }
    return out;
  }
}

/**
 * Removes the files an ended thread listed that are not complete (mode
 * without 0100; a held message may have been renamed into hold/ already).
 * A complete one stays: its message may have been answered 250.
 * @param directory the queue_directory
 * @param list the ended thread's list
 * @returns the files removed
 */
export function removeLeftUnfinished(directory: string, list: SharedFileList): string[] {
  const removed: string[] = [];
  for (const name of list.names()) {
    const id = name.slice(name.lastIndexOf("/") + 1);
    for (const path of [join(directory, name), join(directory, "hold", id)]) {
      try {
        const st = Deno.lstatSync(path);
        // Complete: 0700 in incoming/ and hold/, 0744 in maildrop/.
        if (!st.isFile || ((st.mode ?? 0) & 0o100) !== 0) continue;
        Deno.removeSync(path);
        removed.push(path);
      } catch { /* not there */ }
    }
  }
  return removed;
}
