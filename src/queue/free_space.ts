/**
 * Free bytes on the queue file system (queue_minfree and Postfix's "room
 * for 1.5 messages" check), measured at most once a second. The main
 * thread measures (statfs through node:fs) and publishes the figure in
 * shared memory; listener threads only read it, so their isolates need not
 * load node:fs, which costs each of them a few MiB.
 *
 * @module
 */

/** statfs(2) of a directory, as node:fs gives it. */
export type StatFs = (dir: string) => {
  blocks: number | bigint;
  bavail: number | bigint;
  bsize: number | bigint;
};

/** The free-space figure of one queue directory. */
export class FreeSpace {
  /** Shared with listener threads ({@linkcode FreeSpace.reading}). */
  readonly shared: SharedArrayBuffer;
  /** [0] free bytes (NaN: unknown), [1] when measured (ms since the epoch). */
  #cell: Float64Array;
  #dir: string;
  #statfs: StatFs | undefined;

  private constructor(shared: SharedArrayBuffer, dir: string, statfs?: StatFs) {
    this.shared = shared;
    this.#cell = new Float64Array(shared);
    this.#dir = dir;
    this.#statfs = statfs;
  }

  /**
   * The measuring side (main thread, stand-alone process).
   * @param dir the queue directory
   * @returns a probe that measures on demand, at most once a second
   */
  static async measuring(dir: string): Promise<FreeSpace> {
    const { statfsSync } = await import("node:fs");
    const f = new FreeSpace(new SharedArrayBuffer(16), dir, statfsSync);
    // Not measured yet (the directory may not exist yet): the first bytes() measures.
    f.#cell[0] = NaN;
    return f;
  }

  /**
   * The reading side (a listener thread).
   * @param shared the measuring side's {@linkcode FreeSpace.shared}
   * @returns a probe that reads the last figure
   */
  static reading(shared: SharedArrayBuffer): FreeSpace {
    return new FreeSpace(shared, "");
  }

  /**
   * Keeps the figure fresh while no session asks (so listener threads read
   * a current one). The timer does not keep the process alive.
   */
  refreshEverySecond(): void {
    if (!this.#statfs) return;
    this.#measure(Date.now());
    const id = setInterval(() => this.#measure(Date.now()), 1000);
    Deno.unrefTimer(id);
  }

  /** The measuring side's statfs(2) (undefined on a reading side), for checks at start. */
  get statfs(): StatFs | undefined {
    return this.#statfs;
  }

  /** @returns free bytes, or undefined when unknown */
  bytes(): number | undefined {
    const now = Date.now();
    if (this.#statfs && now - (this.#cell[1] ?? 0) >= 1000) this.#measure(now);
    const v = this.#cell[0] ?? NaN;
    return Number.isNaN(v) ? undefined : v;
  }

  #measure(now: number): void {
    this.#cell[1] = now;
    try {
      const s = (this.#statfs as StatFs)(this.#dir);
      this.#cell[0] = Number(s.bavail) * Number(s.bsize);
    } catch {
      this.#cell[0] = NaN;
    }
  }
}
