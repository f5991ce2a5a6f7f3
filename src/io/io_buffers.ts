/**
 * The buffers a thread's sessions reuse: line-reader buffers of ended
 * sessions, by size, and the scratch array of line lengths that the DATA
 * reader fills for a run of body lines. One set per thread, owned by the
 * thread's runtime and handed to each session's {@linkcode LineReader}.
 *
 * @module
 */

/** Smallest and largest reusable line buffer (powers of two in between). */
export const FIRST_BUFFER = 4096;
export const STREAM_BUFFER = 65536;
/** Bytes kept per buffer size. */
const KEEP_PER_SIZE = 512 * 1024;
/** Lines in one run of body lines (a record header takes at most two length bytes). */
const RUN_LINES = 16384;

/** Reusable buffers of one thread's sessions. */
export class IoBuffers {
  /**
   * Buffers of ended sessions, by size (4 KiB to 64 KiB, powers of two).
   * With one message per connection every session used to leave 4-64 KiB
   * of buffers behind, outside V8's heap, where they waited for a full
   * garbage collection (they outlive the young generation): 2.5-3.5 MB per
   * listener thread under 100 clients. Each size keeps at most 512 KiB.
   */
  #spare = new Map<number, Uint8Array[]>();
  #runLens: Uint16Array | undefined;

  /**
   * Line lengths of one run of body lines. Shared by the thread's sessions:
   * a run is handed on and used up before the next is scanned.
   */
  get runLens(): Uint16Array {
    return this.#runLens ??= new Uint16Array(RUN_LINES);
  }

  /**
   * A buffer of `size` bytes, reused when one is spare.
   * @param size the size
   * @returns the buffer (its contents are not cleared)
   */
  take(size: number): Uint8Array {
    return this.#spare.get(size)?.pop() ?? new Uint8Array(size);
  }

  /**
   * Keeps a buffer no longer in use for a later session, when its size is
   * one that is reused and that size's share is not full.
   * @param buf the buffer
   */
  giveBack(buf: Uint8Array): void {
    const size = buf.byteLength;
    if (size < FIRST_BUFFER || size > STREAM_BUFFER || (size & (size - 1)) !== 0) return;
    let list = this.#spare.get(size);
    if (!list) this.#spare.set(size, list = []);
    if (list.length * size < KEEP_PER_SIZE) list.push(buf);
  }
}
