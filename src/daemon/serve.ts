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
import { listenerThreads, type Listening, startListening } from "./listener.ts";
import {
  keptWarning,
  pinRestartOnly,
  reloadRuntime,
  type RestartOnlyValues,
  restartOnlyValues,
} from "./reload.ts";
import { checkReloadPermissions } from "../commands/permissions.ts";

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
  // A SIGHUP while starting (Deno's default would end the process) is
  // remembered and served once the daemon runs.
  let hupWhileStarting = false;
  const starting = () => (hupWhileStarting = true);
  Deno.addSignalListener("SIGHUP", starting);
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
  const threads = listenerThreads(config, runtime.tls !== undefined);
  let main;
  try {
    main = await startListening({ runtime, listen: runtime.listen, reusePort: threads > 1 });
  } catch (e) {
    logger.error(`cannot listen: ${(e as Error).message}`);
    return 1;
  }
  const server = main.server;
  // Extra threads bind the ports the main thread got (port 0 becomes a real port).
  const bound = server.addresses.map((a) => ({ hostname: a.hostname, port: a.port }));
  if (threads > 1) space.refreshEverySecond();
  // The runtime in force (a reload replaces it).
  let running = runtime;
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
        // A thread started after a reload reads the file as it is now, but
        // keeps the restart-only values the process runs with.
        pinned: restartOnlyValues(running.config),
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
  const where = server.addresses.map((a) => `${a.hostname}:${a.port}`).join(" ");
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
  // SIGHUP: re-read the configuration and tables for new sessions, in every thread.
  const reload = async () => {
    const r = await reloadRuntime(running, {
      ...opts,
      permissions: (loaded) => checkReloadPermissions(loaded, opts.overrides),
    });
    if (!r.ok) {
      logger.warning(`reload failed: ${r.error}; keeping the running configuration`);
      return;
    }
    const kept = keptWarning(r.kept);
    if (kept) logger.warning(kept);
    running = r.runtime;
    main.swap(running);
    const replies = await Promise.all(supervisor.threads.map((t) => reloadWorker(t.worker)));
    replies.forEach((error, i) => {
      if (error) logger.warning(`reload failed in listener thread ${i + 1}: ${error}`);
    });
    const done = replies.filter((e) => e === undefined).length + 1;
    logger.info(
      `reload: configuration re-read from ${opts.file}` +
        (threads > 1 ? ` (${done} of ${supervisor.threads.length + 1} threads)` : ""),
    );
  };
  let reloading = false;
  let again = false;
  const onHup = async () => {
    if (stopping) return;
    // One reload at a time; a signal during one asks for another after it.
    if (reloading) {
      again = true;
      return;
    }
    reloading = true;
    do {
      again = false;
      await reload();
    } while (again && !stopping);
    reloading = false;
  };
  Deno.addSignalListener("SIGHUP", onHup);
  Deno.removeSignalListener("SIGHUP", starting);
  if (hupWhileStarting) void onHup();
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
  /** The restart-only parameters' values in force (src/daemon/reload.ts). */
  pinned: RestartOnlyValues;
}

/**
 * Asks a listener thread to reload (bounded: a thread that does not answer
 * in 10 s keeps what it has and is reported).
 * @param w the thread
 * @returns undefined when it reloaded, else why not
 */
function reloadWorker(w: Worker): Promise<string | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish("no answer in 10 s"), 10_000);
    const onMessage = (e: MessageEvent) => {
      if (e.data?.kind === "reloaded") finish(e.data.error);
    };
    const finish = (error: string | undefined) => {
      clearTimeout(timer);
      w.removeEventListener("message", onMessage);
      resolve(error);
    };
    w.addEventListener("message", onMessage);
    w.postMessage({ kind: "reload" });
  });
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

/** A serving listener thread, as its entry point (src/worker.ts) holds it. */
export interface ThreadServing {
  /** The runtime new sessions get. */
  readonly runtime: () => Runtime;
  /** Reloads: resolves to undefined when done, else why not. */
  reload(): Promise<string | undefined>;
}

/**
 * A listener thread's body: loads the same configuration and builds its
 * own runtime (policy, cleanup, queue store), adopting the main thread's
 * shared cells, then listens on the shared ports (SO_REUSEPORT).
 * @param init what the main thread sent
 * @returns the thread's runtime and reload, when the thread is serving
 */
export async function serveInWorker(init: WorkerInit): Promise<ThreadServing> {
  const { loaded } = pinRestartOnly(
    init.pinned,
    await loadConfig(init.file, { overrides: init.overrides, systemHostname: systemHostname() }),
  );
  const runtime = await buildRuntime(loaded, {
    verbose: init.verbose,
    mode: "serve",
    thread: init.shares,
  });
  await runtime.store.prefill("incoming");
  const listening: Listening = await startListening({
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
  void listening.server.failed.then(() => clearInterval(beating));
  let running = runtime;
  return {
    runtime: () => running,
    reload: async () => {
      // The main thread has checked the permissions and named the restart-only changes.
      const r = await reloadRuntime(running, init);
      if (!r.ok) return r.error;
      running = r.runtime;
      listening.swap(running);
      return undefined;
    },
  };
}
