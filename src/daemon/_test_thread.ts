/**
 * A stand-in listener thread for thread_supervisor_test.ts (folder-private):
 * it admits connections into the shared limiter and its ledger, beats its
 * heart, and then dies, hangs or lives as told.
 *
 * @module
 */

import { ConnectionLedger, ConnectionLimiter } from "../transport/limits.ts";

/** What the test sends. */
export interface TestThreadInit {
  mode: "throw" | "hang" | "live";
  limiter: SharedArrayBuffer;
  ledger: SharedArrayBuffer;
  heartbeat: SharedArrayBuffer;
  /** Connections to admit (clients 192.0.2.0, .1, ...). */
  admits: number;
}

const self = globalThis as unknown as {
  onmessage: ((e: MessageEvent<TestThreadInit>) => void) | null;
  postMessage(m: unknown): void;
};

self.onmessage = (e) => {
  const init = e.data;
  const limiter = new ConnectionLimiter(
    { global: 100, perClient: 1, exempt: () => false },
    init.limiter,
  );
  const ledger = new ConnectionLedger(init.ledger);
  for (let i = 0; i < init.admits; i++) {
    const address = `192.0.2.${i}`;
    if (limiter.enter() !== "ok") continue;
    ledger.entered();
    if (limiter.enterClient(address)) ledger.clientEntered(limiter.clientSlot(address));
  }
  const heartbeat = new Int32Array(init.heartbeat);
  setInterval(() => Atomics.add(heartbeat, 0, 1), 20);
  // It dies or hangs only once told to: after the supervisor watches it.
  // (Dying 50 ms after "ready", its error could reach a main thread held up
  // on a loaded host before the "ready" did, with no listener for it yet.)
  self.onmessage = () => {
    if (init.mode === "throw") {
      setTimeout(() => {
        throw new Error("boom");
      }, 50);
    } else if (init.mode === "hang") {
      setTimeout(() => {
        for (;;) { /* an endless loop: the heart stops */ }
      }, 50);
    }
  };
  self.postMessage("ready");
};
