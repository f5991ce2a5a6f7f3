/**
 * The file pool's helper thread. Creating a file costs the calling thread
 * the whole system call in Deno (even through the async API), and on a busy
 * queue directory that was half of the main thread's time; here it costs
 * the main thread nothing. The helper creates the requested files (O_EXCL,
 * mode 0600, owner), syncs the directory once, and answers with the names
 * it made durable.
 *
 * @module
 */

/** A request from the pool. */
export interface PoolRequest {
  readonly dir: string;
  readonly names: readonly string[];
  readonly owner?: { uid: number; gid: number };
}

/** The helper's answer. */
export interface PoolReply {
  readonly created: string[];
  readonly error?: string;
}

const self = globalThis as unknown as {
  onmessage: ((e: MessageEvent<PoolRequest>) => void) | null;
  postMessage(m: PoolReply): void;
};

globalThis.addEventListener("unhandledrejection", (e) => e.preventDefault());

self.onmessage = (e: MessageEvent<PoolRequest>) => {
  const { dir, names, owner } = e.data;
  const created: string[] = [];
  try {
    for (const name of names) {
      const path = `${dir}/${name}`;
      Deno.openSync(path, { write: true, createNew: true, mode: 0o600 }).close();
      created.push(name);
      if (owner) Deno.chownSync(path, owner.uid, owner.gid);
    }
    const d = Deno.openSync(dir, { read: true });
    try {
      d.syncSync();
    } finally {
      d.close();
    }
    self.postMessage({ created });
  } catch (err) {
    // Whatever was made is not known to be durable: remove it.
    for (const name of created) {
      try {
        Deno.removeSync(`${dir}/${name}`);
      } catch { /* gone */ }
    }
    self.postMessage({ created: [], error: (err as Error).message });
  }
};
