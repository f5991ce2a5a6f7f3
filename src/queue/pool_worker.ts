/**
 * The file pools' helper thread, one per process. Creating a file in a busy
 * queue directory is slow, and the listener threads must not wait for it
 * (nor for the directory lock it holds). The helper creates the requested
 * files (O_EXCL, mode 0600, owner), syncs the directory once, and answers
 * with the names it made durable. The main thread talks to it directly;
 * every listener thread through a MessagePort of its own (a V8 isolate
 * costs about 11 MiB, so the threads share this one).
 *
 * @module
 */

/** A request from a pool. */
export interface PoolRequest {
  /** Matches the reply to the request. */
  readonly seq: number;
  readonly dir: string;
  readonly names: readonly string[];
  readonly owner?: { uid: number; gid: number };
}

/** The helper's answer. */
export interface PoolReply {
  readonly seq: number;
  readonly created: string[];
  readonly error?: string;
}

/** What the helper is sent: a request, or a listener thread's port. */
export type PoolMessage = PoolRequest | { readonly port: MessagePort };

interface Endpoint {
  onmessage: ((e: MessageEvent<PoolMessage>) => void) | null;
  postMessage(m: PoolReply): void;
}

const self = globalThis as unknown as Endpoint;

globalThis.addEventListener("unhandledrejection", (e) => e.preventDefault());

function serve(from: Endpoint): void {
  from.onmessage = (e: MessageEvent<PoolMessage>) => {
    const m = e.data;
    if ("port" in m) serve(m.port as unknown as Endpoint);
    else from.postMessage(create(m));
  };
}

serve(self);

function create({ seq, dir, names, owner }: PoolRequest): PoolReply {
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
    return { seq, created };
  } catch (err) {
    // Whatever was made is not known to be durable: remove it.
    for (const name of created) {
      try {
        Deno.removeSync(`${dir}/${name}`);
      } catch { /* gone */ }
    }
    return { seq, created: [], error: (err as Error).message };
  }
}
