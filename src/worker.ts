/**
 * Entry point of a listener thread (smtpd_listen_threads): it receives the
 * configuration file and the ports from the main thread and serves SMTP on
 * the same ports, the kernel spreading connections (SO_REUSEPORT), so that
 * the daemon uses every core. The thread has the process's permissions.
 *
 * @module
 */

import { closeStore, serveInWorker, type WorkerInit } from "./daemon/serve.ts";

/** How long a stopping thread waits for its last log lines to reach stderr (the main thread waits 1 s). */
const STOP_LOG_WAIT_MS = 500;

const self = globalThis as unknown as {
  onmessage: ((e: MessageEvent<WorkerInit>) => void) | null;
  postMessage(m: unknown): void;
};

// As in the main thread: no stray asynchronous error may end the server.
// (A thread that dies all the same is replaced by the main thread: see
// daemon/thread_supervisor.ts.)
const encoder = new TextEncoder();
// Not waited for: a stderr nobody reads must not stop the thread.
const report = (text: string) => {
  Deno.stderr.write(encoder.encode(`smtpd: error: listener thread: ${text}\n`)).catch(() => {
    /* stderr gone */
  });
};
globalThis.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  report(`unhandled rejection: ${e.reason?.stack ?? e.reason}`);
});
globalThis.addEventListener("error", (e) => {
  e.preventDefault();
  report(`uncaught exception: ${e.error?.stack ?? e.message}`);
});

self.onmessage = (e: MessageEvent<WorkerInit>) => {
  self.onmessage = null;
  serveInWorker(e.data, (m) => self.postMessage(m)).then(
    (thread) => {
      let reloads = Promise.resolve();
      self.onmessage = (m: MessageEvent) => {
        if (thread.onRoomMessage(m.data)) return;
        const msg = m.data as { kind?: string; text?: string; files?: string };
        if (msg?.kind === "stop") {
          const { runtime } = thread;
          void thread.stop().then(() => {
            // closeStore removes the files in progress at once, then the pool
            // files: the lines of the sessions cut off go out in between, in
            // case the main thread ends this one before it is done.
            const closing = closeStore(runtime.store);
            runtime.stderr.flush();
            return closing;
          }).then(async () => {
            // The thread ends before its next timer could write them; within
            // the main thread's wait, even if stderr takes nothing.
            await runtime.stderr.settled(STOP_LOG_WAIT_MS);
            self.postMessage({ kind: "stopped" });
          });
        } else if (msg?.kind === "reload" && typeof msg.text === "string") {
          const { text, files } = msg;
          // The main thread waits for each thread's answer before it logs the reload.
          reloads = reloads.then(async () => {
            const error = await thread.reload(text, files);
            self.postMessage({ kind: "reloaded", error });
          });
        }
      };
      self.postMessage({ kind: "ready" });
    },
    (err) => self.postMessage({ kind: "failed", reason: (err as Error)?.message ?? String(err) }),
  );
};
