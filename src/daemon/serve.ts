/**
 * Daemon mode: start-up recovery, the listeners of the main thread, the
 * supervised listener threads and their messages, and a clean stop on
 * SIGTERM/SIGINT. A listener thread runs {@linkcode serveInWorker}.
 *
 * @module
 */

import { type Config, type LoadedConfig, retireAll } from "../config/mod.ts";
import { Logger } from "../log/mod.ts";
import {
  listOurFiles,
  type OurFile,
  type QueueStore,
  recoverQueue,
  removeLeftUnfinished,
  SharedFileList,
} from "../queue/mod.ts";
import { type ListenAddress } from "../transport/tcp_listener.ts";
import { VERSION } from "../version.ts";
import { listenFailure } from "../runtime_checks.ts";
import { ConnectionLedger } from "../transport/limits.ts";
import { type SupervisedThread, ThreadSupervisor } from "./thread_supervisor.ts";
import {
  buildRuntime,
  queueDirError,
  RESTART_ONLY,
  type Runtime,
  type ThreadShares,
  TLS_CHAINS,
} from "../runtime.ts";
import { listenerThreads, startListening, tlsEngineAddress } from "./listener.ts";
import {
  answerRoom,
  isRoomMessage,
  RoomCoordinator,
  type RoomMessage,
  RoomRequests,
} from "./room.ts";
import {
  FILES_CHANGED,
  filesStamp,
  reloadedMessage,
  reloadFromFile,
  reloadFromText,
  resolveSource,
} from "./reload.ts";

/**
 * Sets aside leftovers of our interrupted writes and logs each one. Files
 * this program did not create (Postfix's, in a shared queue) are never
 * touched, however old: see src/queue/recover.ts.
 * @param config the configuration
 * @param logger where to log
 * @param files the files of ours listed before the daemon made its own
 * @param signal stops it before the next file
 */
export async function recover(
  config: Config,
  logger: Logger,
  files: readonly OurFile[],
  signal: AbortSignal,
): Promise<void> {
  try {
    const start = Date.now();
    const found = await recoverQueue(config.queue_directory, {
      files,
      signal,
      found: (r) =>
        logger.warning(
          `${r.queue}/${r.name}: ${r.reason}: set aside in corrupt/ (interrupted write)`,
        ),
    });
    // Its end, when there was anything to look at: it runs while the daemon serves.
    if (files.length > 0 && !signal.aborted) {
      const n = files.length;
      logger.info(
        `queue recovery: done in ${Date.now() - start} ms: ${n} file${n === 1 ? "" : "s"} ` +
          `of ours in incoming/ and maildrop/ looked at, ${found.length} moved to corrupt/`,
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
  // The runtime new sessions and new listener threads get (SIGHUP replaces it).
  let current = runtime;
  const { config, logger, store, space } = runtime;
  // A SIGHUP while starting (Deno's default would end the process: systemd
  // counts that as a clean exit and does not restart) is served once the
  // daemon runs.
  let hupWhileStarting = false;
  const starting = () => (hupWhileStarting = true);
  Deno.addSignalListener("SIGHUP", starting);
  try {
    await store.prepare("incoming");
  } catch (e) {
    logger.error(queueDirError(runtime.loaded, e));
    return 1;
  }
  // Only the daemon recovers: stand-alone processes run side by side and
  // would take each other's files in progress for leftovers. It looks at
  // the files of ours there before this daemon makes its own, and runs once
  // the daemon listens: with 20,000 complete files waiting for Postfix
  // (stopped while we received), port 25 refused connections for 16-26 s
  // here while it looked at them. No session depends on it: a session
  // writes only files made after the list.
  const leftovers = await listOurFiles(config.queue_directory);
  await store.prefill("incoming");
  const threads = listenerThreads(config);
  // With listener threads, the main thread coordinates making room across them.
  let rooms: RoomCoordinator | undefined;
  let main;
  try {
    const tlsEngine = tlsEngineAddress(runtime, 0);
    main = await startListening({
      runtime,
      listen: runtime.listen,
      reusePort: threads > 1,
      exclusive: true,
      ...(tlsEngine ? { tlsEngine } : {}),
      roomElsewhere: (purpose, newcomerHeld) =>
        rooms?.ask(purpose, newcomerHeld) ?? Promise.resolve(false),
    });
  } catch (e) {
    // serveTcp names the address that failed, here with the parameter's
    // file and line; anything else is said as before.
    logger.error(listenFailure(runtime.loaded, (e as Error).message));
    await store.close(); // the pool files made for it
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
  if (threads > 1) {
    rooms = new RoomCoordinator(main.room, () => supervisor.threads.map((t) => t.worker));
  }
  // Listener threads: a dead one is logged, its slots released, and replaced.
  const supervisor = new ThreadSupervisor<ListenerThread>({
    log: logger,
    start: async (index) => {
      const ledger = new ConnectionLedger();
      const heartbeat = new SharedArrayBuffer(4);
      // A slot for each file it may be writing: one per session, and some
      // for messages being removed.
      const unfinished = new SharedFileList(current.config.default_process_limit + 64);
      const worker = await startWorker({
        // The text of the configuration in force (after the last good
        // reload), not the file as it may be now.
        text: current.loaded.text,
        // ... with the restart-only values the process runs with, which a
        // reload leaves as they were while the text may have others.
        pinned: restartOnlyValues(current),
        file: opts.file,
        overrides: opts.overrides,
        verbose: opts.verbose,
        listen: bound,
        index,
        shared: main.limiter.shared,
        ledger: ledger.shared,
        heartbeat,
        unfinished: unfinished.buffer,
        shares: runtime.shares,
      });
      rooms?.adopt(worker);
      return {
        worker,
        heartbeat: new Int32Array(heartbeat),
        unfinished,
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
    await store.close();
    return 1;
  }
  const where = bound.map((a) => `${a.hostname}:${a.port}${a.wrapper ? " (TLS wrapper mode)" : ""}`)
    .join(" ");
  logger.info(
    `daemon started -- version ${VERSION}, configuration ${opts.file}, listening on ${where}` +
      (threads > 1 ? ` (${threads} threads)` : ""),
  );
  const recovering = new AbortController();
  const recovered = recover(config, logger, leftovers, recovering.signal);
  // SIGHUP: one reload at a time. Signals that come while one waits to run
  // are served by it (it reads the file as it is then): a storm of them
  // costs two reloads, not one per signal (each compiles every table).
  let reloads = Promise.resolve();
  let waiting = false;
  // The listener threads' answers to the reload last handed to them.
  let threadsReloading: Promise<unknown> = Promise.resolve();
  const reload = async () => {
    if (stopping) return;
    const result = await reloadFromFile(current, opts);
    // Not when a stop came meanwhile: a listener thread busy compiling the
    // tables could not hear it, and would be ended before removing the files
    // its sessions were writing.
    if (!result.ok || stopping) return;
    current = result.runtime;
    main.swap(current);
    const threads = supervisor.threads;
    const asked = Promise.all(
      threads.map((t) => reloadWorker(t, result.text, result.files)),
    );
    threadsReloading = asked;
    const errors = await asked;
    errors.forEach((error, i) => {
      if (error) logger.warning(`reload failed in listener thread ${i + 1}: ${error}`);
    });
    logger.info(
      reloadedMessage(opts.file, threads.length + 1, errors.filter((e) => e !== undefined).length),
    );
    // Files changed while the threads read them (an edit under way): once
    // more, so that every thread serves the same contents. Not again after
    // that: a file that keeps changing is left to the next signal.
    const changed = errors.some((e) => e?.startsWith(FILES_CHANGED));
    if (changed && !again) onHup();
    else if (changed) logger.warning("reload: files keep changing; send SIGHUP once written");
    again = changed && !again;
  };
  // Whether the reload running is that once more.
  let again = false;
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
    // A recovery still running ends after the file it is at (the next start
    // looks at the others).
    recovering.abort();
    // Let sessions that are writing a message finish (bounded); clients
    // still connected after 3 s are cut off, and a message in progress
    // removes its file as when its client goes, so a stop leaves no file
    // half-written.
    const end = Date.now() + 3000;
    while (main.limiter.total > 0 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 50));
    }
    // A listener thread hears the stop between the slices of a reload's
    // parse, but not while it compiles: the reload asked before the stop is
    // given up to 10 s to end first.
    let waited: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      threadsReloading,
      new Promise((r) => (waited = setTimeout(r, RELOAD_SILENCE_MS))),
    ]);
    clearTimeout(waited);
    await Promise.all([
      server.closeConnections(500).then(() => closeStore(store)),
      ...supervisor.threads.map((t, i) => stopWorker(t, config.queue_directory, logger, i + 1)),
      recovered,
    ]);
    stopped();
  };
  Deno.addSignalListener("SIGTERM", () => void stop());
  Deno.addSignalListener("SIGINT", () => void stop());
  const onHup = () => {
    if (stopping || waiting) return;
    waiting = true;
    reloads = reloads.then(() => {
      waiting = false;
      return reload();
    }).catch((e) => {
      // Not expected (reload reports its own failures); the next signal must still be served.
      logger.warning(`reload failed: ${(e as Error)?.message ?? e}`);
    });
  };
  Deno.addSignalListener("SIGHUP", onHup);
  Deno.removeSignalListener("SIGHUP", starting);
  // A file size limit (systemd's LimitFSIZE=, ulimit -f) that one client's
  // message crosses would otherwise kill the daemon with SIGXFSZ, every
  // session with it, and leave the file half-written. Caught, the write
  // fails (EFBIG) and only that message gets the queue write error.
  Deno.addSignalListener("SIGXFSZ", () => {});
  // At SIGUSR1, deno run opens its debugger on 127.0.0.1:9229 (README: any
  // local user can then run code in the server). Its own line saying so is
  // hidden by --quiet (a runtime flag), so the log says it here.
  Deno.addSignalListener("SIGUSR1", () => {
    logger.warning(
      "received SIGUSR1: under deno run, the runtime opens its debugger on 127.0.0.1:9229 " +
        "for this signal, where any local user can run code in this server; " +
        "restart the server to close it",
    );
  });
  if (hupWhileStarting) onHup();
  void server.failed.then(stop);
  void supervisor.gaveUp.then(stop);
  await allStopped;
  return status;
}

/**
 * The queue store at a stop, once the connections are closed: its unused
 * pool files go, and so does every file a session is still writing. A
 * session that has not noticed its connection is gone (waiting for an
 * end-of-data policy server, a DNS list) would otherwise be ended with the
 * process and leave its partly written file for the next start to set
 * aside; its client, cut off, never got a 250 for it.
 * @param store the thread's queue store
 */
export async function closeStore(store: QueueStore): Promise<void> {
  // First, at once: removing the pool's files takes a while on a loaded
  // host, and the main thread ends a listener thread that takes too long.
  store.removeUnfinished();
  await store.close();
}

/** A listener thread as the supervisor sees it. */

interface ListenerThread extends SupervisedThread {
  readonly worker: Worker;
  /** Its files being written, for the main thread to remove if it ends it at a stop. */
  readonly unfinished: SharedFileList;
}

/** What a listener thread is started with. */

export interface WorkerInit {
  /** The configuration text in force; file names it in messages. */
  text: string;
  file: string;
  overrides: string[];
  verbose: number;
  listen: ListenAddress[];
  /** The thread's index (1 for the first listener thread; the main thread is 0). */
  index: number;
  shared: SharedArrayBuffer;
  /** The thread's own share of the counts ({@linkcode ConnectionLedger}). */
  ledger: SharedArrayBuffer;
  /** A cell the thread bumps every second, for the main thread to see it is alive. */
  heartbeat: SharedArrayBuffer;
  /** Where the thread lists its files being written ({@linkcode SharedFileList}). */
  unfinished: SharedArrayBuffer;
  /** The main thread's runtime's shared cells (pool lock, trigger clock, free space, memory). */
  shares: ThreadShares;
  /** The restart-only parameters' values in force ({@linkcode restartOnlyValues}). */
  pinned: RestartOnlyValues;
}

/** The values of the restart-only parameters, as a listener thread is sent them. */
export type RestartOnlyValues = Readonly<Record<string, unknown>>;

/**
 * The restart-only parameters' values a runtime runs with, and those a
 * reload may keep besides (STARTTLS on or off, the certificate chains:
 * rebuildRuntime), so that a thread started later serves as the others do.
 * @param runtime the runtime in force
 * @returns their values
 */
export function restartOnlyValues(runtime: Runtime): RestartOnlyValues {
  const keys = [...RESTART_ONLY, "smtpd_tls_security_level", ...TLS_CHAINS] as const;
  return Object.fromEntries(keys.map((k) => [k, runtime.config[k]]));
}

/**
 * A configuration with the restart-only values in force in place of its own.
 * @param loaded the configuration resolved from the text
 * @param values the values in force
 * @returns the configuration a listener thread runs with
 */
export function pinRestartOnly(loaded: LoadedConfig, values: RestartOnlyValues): LoadedConfig {
  const differs = Object.keys(values).some((k) =>
    JSON.stringify(values[k]) !== JSON.stringify(loaded.config[k as keyof Config])
  );
  if (!differs) return loaded;
  return Object.freeze({
    ...loaded,
    config: Object.freeze({ ...loaded.config, ...values }) as Config,
    lineOf: (key: string, item?: string) => loaded.lineOf(key, item),
  });
}

/**
 * Asks a listener thread to reload the text the main thread compiled, and
 * waits for its answer, for as long as the thread is alive: a thread
 * serving while it parses a large table in slices (its heartbeat goes on)
 * may take longer than any fixed time; a thread whose heartbeat stops for
 * {@linkcode RELOAD_SILENCE_MS} is reported and keeps what it has.
 * @param t the thread
 * @param text the configuration text
 * @param files how the files it names looked to the main thread ({@linkcode filesStamp})
 * @returns undefined when it reloaded, else why not
 */
function reloadWorker(
  t: ListenerThread,
  text: string,
  files: string,
): Promise<string | undefined> {
  const w = t.worker;
  return new Promise((resolve) => {
    const finish = (error: string | undefined) => {
      clearInterval(timer);
      w.removeEventListener("message", onMessage);
      resolve(error);
    };
    let beat = Atomics.load(t.heartbeat, 0);
    let beatAt = Date.now();
    const timer = setInterval(() => {
      const now = Atomics.load(t.heartbeat, 0);
      if (now !== beat) {
        beat = now;
        beatAt = Date.now();
      } else if (Date.now() - beatAt >= RELOAD_SILENCE_MS) {
        finish(`no answer, and no heartbeat for ${RELOAD_SILENCE_MS / 1000} s`);
      }
    }, 500);
    const onMessage = (e: MessageEvent) => {
      if (e.data?.kind === "reloaded") finish(e.data.error);
    };
    w.addEventListener("message", onMessage);
    w.postMessage({ kind: "reload", text, files });
  });
}

/** How long a listener thread may be silent (no heartbeat) before its reload counts as failed. */
const RELOAD_SILENCE_MS = 10_000;

/**
 * Asks a listener thread to cut off its clients and remove its files in
 * progress and its unused pool files, then ends it (bounded). A thread that
 * could not do it in time (busy compiling a reload's tables, starved of CPU
 * on a loaded host) is ended all the same, and the files in progress it
 * listed are removed here: none of them was answered 250 (a complete file
 * stays), and its client, cut off or soon to be, sends the message again.
 * @param t the thread
 * @param directory the queue_directory
 * @param logger where to say that it was ended with files left
 * @param index the thread's number, for the log
 */
export function stopWorker(
  t: { readonly worker: Worker; readonly unfinished: SharedFileList },
  directory: string,
  logger: Pick<Logger, "warning">,
  index: number,
): Promise<void> {
  const w = t.worker;
  return new Promise((resolve) => {
    const done = () => {
      w.terminate();
      const left = removeLeftUnfinished(directory, t.unfinished);
      if (left.length > 0) {
        logger.warning(
          `listener thread ${index} did not stop in time: removed its ${left.length} ` +
            `unfinished queue file${left.length === 1 ? "" : "s"}`,
        );
      }
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
export async function serveInWorker(
  init: WorkerInit,
  post: (m: RoomMessage) => void,
): Promise<ServingThread> {
  const source = { file: init.file, overrides: init.overrides };
  const loaded = pinRestartOnly(resolveSource(init.text, source), init.pinned);
  const runtime = await buildRuntime(loaded, {
    verbose: init.verbose,
    mode: "serve",
    thread: init.shares,
  });
  runtime.store.shareUnfinished(new SharedFileList(init.unfinished));
  await runtime.store.prefill("incoming");
  const tlsEngine = tlsEngineAddress(runtime, init.index);
  // Room made by other threads, through the main thread (room.ts).
  const requests = new RoomRequests(post);
  const { server, swap, room } = await startListening({
    runtime,
    listen: init.listen,
    shared: init.shared,
    ledger: new ConnectionLedger(init.ledger),
    reusePort: true,
    ...(tlsEngine ? { tlsEngine } : {}),
    roomElsewhere: (purpose, newcomerHeld) => requests.ask(purpose, newcomerHeld),
  });
  const heartbeat = new Int32Array(init.heartbeat);
  const beating = setInterval(() => Atomics.add(heartbeat, 0, 1), 1000);
  // A listener that cannot be opened again: stop beating, and the main
  // thread replaces this thread.
  void server.failed.then(() => clearInterval(beating));
  let current = runtime;
  return {
    get runtime() {
      return current;
    },
    stop: async () => {
      server.close();
      await server.closeConnections(500);
    },
    reload: async (text: string, files?: string) => {
      // The main thread has compiled this text already; a failure here
      // (a table changed between the two reads) keeps this thread's runtime.
      // The main thread logs the outcome, and the restart-only parameters once.
      const result = await reloadFromText(current, text, source, false);
      if (!result.ok) return `${result.error}; keeping its running configuration`;
      // Files changed since the main thread compiled them: this thread may
      // have read other contents (the main thread reloads once more).
      if (files !== undefined && filesStamp(result.needs) !== files) {
        retireAll(result.runtime.config);
        return `${FILES_CHANGED}; keeping its running configuration`;
      }
      current = result.runtime;
      swap(current);
      return undefined;
    },
    onRoomMessage: (m: unknown) => {
      if (!isRoomMessage(m)) return false;
      answerRoom(m, room, requests, post);
      return true;
    },
  };
}

/** A listener thread serving: its runtime (the latest) and its reload. */
export interface ServingThread {
  readonly runtime: Runtime;
  /** Resolves to undefined when reloaded, else why not (files: the main thread's filesStamp). */
  reload(text: string, files?: string): Promise<string | undefined>;
  /** Stops accepting and cuts off its clients (their messages in progress are removed). */
  stop(): Promise<void>;
  /** Takes a message about making room (room.ts); false for any other message. */
  onRoomMessage(m: unknown): boolean;
}
