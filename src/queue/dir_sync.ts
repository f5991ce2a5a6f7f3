/**
 * Coalesced directory syncs: every message that completes while a sync is
 * running waits for the next one, so many commits share one fsync of the
 * directory and the cost stays near one directory sync per busy moment.
 *
 * @module
 */

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Syncs one directory, sharing each sync among all callers that wait for it. */
export class DirSyncer {
  #path: string;
  #waiting: Waiter[] = [];
  #running = false;

  /** @param path the directory */
  constructor(path: string) {
    this.#path = path;
  }

  /** Resolves once a directory sync that started after this call has finished. */
  sync(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      if (!this.#running) void this.#run();
    });
  }

  async #run(): Promise<void> {
    this.#running = true;
    while (this.#waiting.length > 0) {
      const batch = this.#waiting;
      this.#waiting = [];
      try {
        const dir = await Deno.open(this.#path, { read: true });
        try {
          await dir.sync();
        } finally {
          dir.close();
        }
        for (const w of batch) w.resolve();
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    this.#running = false;
  }
}
