/**
 * Triggers for Postfix's queue manager and pickup daemon (RFC 1985 ETRN
 * and queue wakeups). A trigger writes a few request bytes to an endpoint
 * under `<queue_directory>/public/`: a FIFO (old master.cf "fifo"
 * services) or a UNIX-domain stream socket ("unix" services). It never
 * blocks the session: a missing endpoint, a FIFO without a reader, or an
 * endpoint that does not take the bytes within the timeout is
 * "unavailable". Writes to each endpoint are coalesced process-wide
 * (trigger_gate.ts): a client that floods ETRN makes at most one a second.
 *
 * @module
 */

import { TriggerGate, type TriggerGateOptions } from "./trigger_gate.ts";

/** The outcome of a trigger. */
export type FlushOutcome = "started" | "unavailable";

/** Asks the queue manager to deliver deferred mail. */
export interface FlushTrigger {
  /**
   * Requests a flush.
   * @param domain the ETRN argument (the manual's BUGS: all deferred mail is flushed)
   * @returns whether the request was delivered
   */
  request(domain: string): Promise<FlushOutcome>;
}

/** qmgr requests: flush dead transports, scan all (ignore times), deferred, incoming. */
export const FLUSH_REQUEST = "FADI";
/** The wakeup request (qmgr scans incoming/, pickup scans maildrop/). */
export const WAKEUP_REQUEST = "W";

/**
 * Writes request bytes to a FIFO or UNIX socket endpoint.
 * @param path the endpoint
 * @param request the bytes
 * @param timeoutMs the longest wait
 * @returns "started" when the bytes were delivered
 */
export async function triggerEndpoint(
  path: string,
  request: string,
  timeoutMs: number,
): Promise<FlushOutcome> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    return "unavailable";
  }
  if (info.isFifo) return await writeFifo(path, request);
  if (info.isSocket) return await writeSocket(path, request, timeoutMs);
  return "unavailable";
}

async function writeFifo(path: string, request: string): Promise<FlushOutcome> {
  // node:fs is loaded on first use: it costs every isolate a few MiB.
  const { closeSync, constants, openSync, writeSync } = await import("node:fs");
  let fd: number | undefined;
  try {
    // O_NONBLOCK: opening a FIFO without a reader fails at once (ENXIO)
    // instead of blocking, and a full pipe refuses the write (EAGAIN).
    fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    const bytes = new TextEncoder().encode(request);
    return writeSync(fd, bytes) === bytes.length ? "started" : "unavailable";
  } catch {
    return "unavailable";
  } finally {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch { /* closed */ }
    }
  }
}

async function writeSocket(
  path: string,
  request: string,
  timeoutMs: number,
): Promise<FlushOutcome> {
  let conn: Deno.UnixConn | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<FlushOutcome>((resolve) => {
    timer = setTimeout(() => resolve("unavailable"), timeoutMs);
  });
  const attempt = (async (): Promise<FlushOutcome> => {
    // Deno needs --allow-net=unix:<absolute path> for this (src/permissions/needs.ts).
    conn = await Deno.connect({ transport: "unix", path });
    const bytes = new TextEncoder().encode(request);
    let off = 0;
    while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    return "started";
  })().catch((): FlushOutcome => "unavailable");
  try {
    return await Promise.race([attempt, timeout]);
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch { /* closed */ }
  }
}

/**
 * The ETRN trigger: FADI to `<queue_directory>/public/qmgr`, within one
 * second, at most once a second in the whole process
 * ({@linkcode TriggerGate}). An ETRN while the gate is shut is answered
 * "started" when the endpoint is there (one FADI goes out when the second
 * ends, for every ETRN meanwhile), "unavailable" when it is not. A FADI
 * that reached nobody does not shut the gate.
 * @param queueDirectory the queue directory
 * @param options the gate's interval and clock (tests)
 * @returns the trigger
 */
export function qmgrFlushTrigger(
  queueDirectory: string,
  options: TriggerGateOptions = {},
): FlushTrigger {
  const path = `${queueDirectory}/public/qmgr`;
  const gate = new TriggerGate(
    "qmgr FADI",
    async () => await triggerEndpoint(path, FLUSH_REQUEST, 1000) === "started",
    { ...options, failureCounts: false },
  );
  return {
    async request() {
      const outcome = await gate.request();
      if (outcome === "sent") return "started";
      if (outcome === "failed") return "unavailable";
      return await endpointPresent(path) ? "started" : "unavailable";
    },
  };
}

async function endpointPresent(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    return info.isFifo === true || info.isSocket === true;
  } catch {
    return false;
  }
}

/** Coalesced wakeups of one Postfix daemon. */
export interface Wakeup {
  /** Asks for a wakeup (call after each committed queue file). */
  wake(): void;
  /** Resolves when no wakeup is in flight or waiting (stand-alone mode waits before exiting). */
  settled(): Promise<void>;
}

/**
 * Coalesced wakeups of a Postfix daemon after new queue files: at most one
 * write a second per endpoint in the whole process, and one more at the
 * end of the second when more files arrived meanwhile. Failures are
 * silent (no Postfix behind us is normal) and shut the gate as well, so
 * an absent endpoint is looked for once a second at most.
 * @param path the endpoint (public/qmgr for incoming/, public/pickup for maildrop/)
 * @param options the gate's interval and clock (tests)
 * @returns the wakeup handle
 */
export function wakeupTrigger(path: string, options: TriggerGateOptions = {}): Wakeup {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const gate = new TriggerGate(
    `${name} ${WAKEUP_REQUEST}`,
    async () => await triggerEndpoint(path, WAKEUP_REQUEST, 1000) === "started",
    { ...options, failureCounts: true },
  );
  return {
    wake() {
      void gate.request();
    },
    settled() {
      return gate.settled();
    },
  };
}
