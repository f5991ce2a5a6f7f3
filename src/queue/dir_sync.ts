/**
 * Coalesced directory syncs: every message that completes while a sync is
 * running waits for the next one, so many commits share one fsync of the
 * directory and the cost stays near one directory sync per busy moment.
 * The directory stays open between syncs; it is reopened after an error
 * (a queue directory that was replaced or remounted).
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
  #dir: Deno.FsFile | undefined;
  #ino: number | null = null;

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
        try {
          // A directory replaced under the same name must be the one synced.
          const ino = Deno.statSync(this.#path).ino;
          if (this.#dir && ino !== this.#ino) this.#close();
          if (!this.#dir) {
            this.#dir = Deno.openSync(this.#path, { read: true });
            this.#ino = ino;
          }
          await this.#dir.sync();
        } catch {
          // A stale handle (directory replaced): reopen once.
          this.#close();
          this.#dir = Deno.openSync(this.#path, { read: true });
          this.#ino = this.#dir.statSync().ino;
          await this.#dir.sync();
        }
        for (const w of batch) w.resolve();
      } catch (err) {
        this.#close();
        for (const w of batch) w.reject(err);
      }
    }
    this.#running = false;
  }

  #close(): void {
    try {
      this.#dir?.close();
    } catch { /* closed */ }
    this.#dir = undefined;
  }
}
