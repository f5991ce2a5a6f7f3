/**
 * Daemon mode: start-up recovery, the listeners of the main thread, the
 * supervised listener threads and their messages, and a clean stop on
 * SIGTERM/SIGINT. A listener thread runs {@linkcode serveInWorker}.
 *
 * @module
 */

import { type Config, loadConfig } from "../config/mod.ts";
import { Logger } from "../log/mod.ts";
import { recoverQueue } from "../queue/mod.ts";
import { type ListenAddress } from "../transport/tcp_listener.ts";
import { VERSION } from "../version.ts";
import { ConnectionLedger } from "../transport/limits.ts";
import { type SupervisedThread, ThreadSupervisor } from "./thread_supervisor.ts";
import {
  buildRuntime,
  queueDirError,
  type Runtime,
  systemHostname,
  type ThreadShares,
} from "../runtime.ts";
import { listenerThreads, startListening } from "./listener.ts";

/**
 * Sets aside leftovers of our interrupted writes and logs each one. Files
 * this program did not create (Postfix's, in a shared queue) are never
 * touched, however old: see src/queue/recover.ts.
 * @param config the configuration
 * @param logger where to log
 */
export async function recover(config: Config, logger: Logger): Promise<void> {
  try {
    const found = await recoverQueue(config.queue_directory);
    for (const r of found) {
      logger.warning(
        `${r.queue}/${r.name}: ${r.reason}: set aside in corrupt/ (interrupted write)`,
      );
    }
  } catch (e) {
    logger.warning(`queue recovery failed: ${(e as Error).message}`);
  }
}

/**
 * Runs daemon mode until SIGTERM or SIGINT, or until a listener or the
 * listener threads cannot be kept running.
 * @returns the exit status
 */
export async function runServe(
  runtime: Runtime,
  opts: { file: string; overrides: string[]; verbose: number },
): Promise<number> {
  const { config, logger, store, space } = runtime;
  try {
    await store.prepare();
  } catch (e) {
    logger.error(queueDirError(config.queue_directory, e));
    return 1;
  }
  // Only the daemon recovers: stand-alone processes run side by side and
  // would take each other's files in progress for leftovers.
  await recover(config, logger);
  await store.prefill("incoming");
  const threads = listenerThreads(config);
  let main;
  try {
    main = await startListening({ runtime, listen: runtime.listen, reusePort: threads > 1 });
  } catch (e) {
    logger.error(`cannot listen: ${(e as Error).message}`);
    return 1;
  }
  const server = main.server;
  // Extra threads bind the ports the main thread got (port 0 becomes a real port).
  const bound = server.addresses.map((a, i) => ({
    hostname: a.hostname,
    port: a.port,
    ...(runtime.listen[i]?.wrapper ? { wrapper: true } : {}),
  }));
  if (threads > 1) space.refreshEverySecond();
  // Listener threads: a dead one is logged, its slots released, and replaced.
  const supervisor = new ThreadSupervisor<ListenerThread>({
    log: logger,
    start: async () => {
      const ledger = new ConnectionLedger();
      const heartbeat = new SharedArrayBuffer(4);
      const worker = await startWorker({
        file: opts.file,
        overrides: opts.overrides,
        verbose: opts.verbose,
        listen: bound,
        shared: main.limiter.shared,
        ledger: ledger.shared,
        heartbeat,
        shares: runtime.shares,
      });
      return {
        worker,
        heartbeat: new Int32Array(heartbeat),
        release: () => ledger.returnTo(main.limiter),
      };
    },
  });
  try {
    await supervisor.start(threads - 1);
  } catch (e) {
    logger.error(`cannot start listener thread: ${(e as Error).message}`);
    supervisor.stop();
    for (const t of supervisor.threads) t.worker.terminate();
    server.close();
    return 1;
  }
  const where = bound.map((a) => `${a.hostname}:${a.port}${a.wrapper ? " (TLS wrapper mode)" : ""}`)
    .join(" ");
  logger.info(
    `daemon started -- version ${VERSION}, configuration ${opts.file}, listening on ${where}` +
      (threads > 1 ? ` (${threads} threads)` : ""),
  );
  let stopping = false;
  let stopped: () => void = () => {};
  const allStopped = new Promise<void>((r) => (stopped = r));
  let status = 0;
  const stop = async (why?: string) => {
    if (stopping) return;
    stopping = true;
    if (why) {
      // Not restorable here: exit non-zero for the service manager to restart the daemon.
      logger.error(`${why}; exiting`);
      status = 1;
    } else {
      logger.info("terminating on signal");
    }
    supervisor.stop();
    server.close();
    // Let sessions that are writing a message finish (bounded), so a stop
    // leaves no file half-written; idle clients are cut off after 3 s.
    const end = Date.now() + 3000;
    while (main.limiter.total > 0 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await Promise.all([store.close(), ...supervisor.threads.map((t) => stopWorker(t.worker))]);
    stopped();
  };
  Deno.addSignalListener("SIGTERM", () => void stop());
  Deno.addSignalListener("SIGINT", () => void stop());
  void server.failed.then(stop);
  void supervisor.gaveUp.then(stop);
  await allStopped;
  return status;
}

/** A listener thread as the supervisor sees it. */

interface ListenerThread extends SupervisedThread {
  readonly worker: Worker;
}

/** What a listener thread is started with. */

export interface WorkerInit {
  file: string;
  overrides: string[];
  verbose: number;
  listen: ListenAddress[];
  shared: SharedArrayBuffer;
  /** The thread's own share of the counts ({@linkcode ConnectionLedger}). */
  ledger: SharedArrayBuffer;
  /** A cell the thread bumps every second, for the main thread to see it is alive. */
  heartbeat: SharedArrayBuffer;
  /** The main thread's runtime's shared cells (pool lock, trigger clock, free space, memory). */
  shares: ThreadShares;
}

/** Asks a listener thread to remove its unused pool files, then ends it (bounded). */

function stopWorker(w: Worker): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      w.terminate();
      resolve();
    };
    const timer = setTimeout(done, 1000);
    w.onmessage = (e: MessageEvent) => {
      if (e.data?.kind === "stopped") {
        clearTimeout(timer);
        done();
      }
    };
    w.postMessage({ kind: "stop" });
  });
}

/**
 * Starts one listener thread and waits until it serves.
 * @param init what it is started with
 * @returns the thread
 */
function startWorker(init: WorkerInit): Promise<Worker> {
  const w = new Worker(new URL("../worker.ts", import.meta.url), { type: "module" });
  return new Promise((resolve, reject) => {
    w.onmessage = (e: MessageEvent) => {
      if (e.data?.kind === "ready") resolve(w);
      else if (e.data?.kind === "failed") reject(new Error(String(e.data.reason)));
    };
    w.onerror = (e) => {
      e.preventDefault();
      reject(new Error(e.message));
    };
    w.postMessage(init);
  });
}

/**
 * A listener thread's body: loads the same configuration and builds its
 * own runtime (policy, cleanup, queue store), adopting the main thread's
 * shared cells, then listens on the shared ports (SO_REUSEPORT).
 * @param init what the main thread sent
 * @returns the thread's runtime, when the thread is serving
 */
export async function serveInWorker(init: WorkerInit): Promise<Runtime> {
  const loaded = await loadConfig(init.file, {
    overrides: init.overrides,
    systemHostname: systemHostname(),
  });
  const runtime = await buildRuntime(loaded, {
    verbose: init.verbose,
    mode: "serve",
    thread: init.shares,
  });
  await runtime.store.prefill("incoming");
  const { server } = await startListening({
    runtime,
    listen: init.listen,
    shared: init.shared,
    ledger: new ConnectionLedger(init.ledger),
    reusePort: true,
  });
  const heartbeat = new Int32Array(init.heartbeat);
  const beating = setInterval(() => Atomics.add(heartbeat, 0, 1), 1000);
  // A listener that cannot be opened again: stop beating, and the main
  // thread replaces this thread.
  void server.failed.then(() => clearInterval(beating));
  return runtime;
}
