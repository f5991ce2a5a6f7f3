/**
 * Daemon mode's listener: accepts TCP connections on each configured
 * address and runs one session per connection until told to stop. When
 * accept fails (every descriptor in use, EMFILE) it backs off instead of
 * spinning, and recovers by itself; a listener that breaks is opened again,
 * and one that cannot be for 30 s is reported as failed (the daemon then
 * exits non-zero, for its supervisor to restart it).
 *
 * @module
 */

import type { ServerTls } from "./node_socket.ts";
import {
  AcceptBackoff,
  type AcceptLog,
  type BackoffOptions,
  describeAcceptError,
} from "./accept_backoff.ts";
import { resourceShortage } from "../io/os_error.ts";
import type { IoBuffers } from "../io/io_buffers.ts";
import { TlsHandshakeError, type Transport } from "./types.ts";
import type { ByteConn } from "./conn_duplex.ts";
import type { TlsEngine } from "./tls_engine.ts";

/** A host:port pair from smtpd_listen (or smtpd_tls_wrappermode_listen). */
export interface ListenAddress {
  readonly hostname: string;
  readonly port: number;
  /** Implicit TLS (smtpd_tls_wrappermode): the session starts with the handshake. */
  readonly wrapper?: boolean;
}

/**
 * Parses "host:port", "[v6]:port" or ":port".
 * @param text the address
 * @returns the address, or undefined when malformed
 */
export function parseListenAddress(text: string): ListenAddress | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:\[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { hostname: m[1] ?? (m[2] || "0.0.0.0"), port };
}

/**
 * A session whose client, since the session last entered or left a mail
 * transaction, has kept it waiting this long in all (ms) ...
 */
const SLOW_AFTER_MS = 10_000;
/**
 * ... and sent fewer bytes a second of that waiting than this (Postfix's
 * smtpd_min_data_rate default) is slow: at the cap it gives its place as
 * an idle one does, in a mail transaction or not. Without this, clients
 * that each send a line a second (EHLO, or a message body in DATA) are
 * never silent for the idle threshold and hold every slot indefinitely.
 */
const MIN_BYTES_PER_SECOND = 500;

/**
 * An accepted connection as the listener sees it: whether the session is
 * waiting for the client (a read pending, since when), and how fast its
 * client sends, so that an idle or slow one can give its place to a new
 * client when the slots or the descriptors run out.
 */
interface Watched extends ByteConn {
  readonly address: string;
  /** When the pending read started; undefined while none is pending. */
  idleSince: number | undefined;
  /** STARTTLS started: nothing may be written in plaintext any more. */
  tls: boolean;
  /** A mail transaction is under way: closed to make room only when slow. */
  inMail: boolean;
  /** When the session last entered or left a mail transaction. */
  phaseSince: number;
  /** Since then: time spent waiting for the client in reads that ended (ms) ... */
  waited: number;
  /** ... and the bytes it sent. */
  received: number;
  /** The session gave its slot back: closing this connection frees no session. */
  over: boolean;
  evicted: boolean;
}

function watch(conn: Deno.TcpConn, address: string, live: Set<Watched>): Watched {
  // Closed once: a second close would build (and throw away) a BadResource
  // error with its stack, several per TLS connection (the relay's two ends
  // both close it).
  let closed = false;
  const w: Watched = {
    address,
    idleSince: undefined,
    tls: false,
    inMail: false,
    phaseSince: Date.now(),
    waited: 0,
    received: 0,
    over: false,
    evicted: false,
    async read(p) {
      const start = w.idleSince = Date.now();
      try {
        const n = await conn.read(p);
        if (n !== null) w.received += n;
        return n;
      } finally {
        w.waited += Date.now() - Math.max(start, w.phaseSince);
        w.idleSince = undefined;
      }
    },
    write: (p) => conn.write(p),
    closeWrite: () => conn.closeWrite(),
    close() {
      live.delete(w);
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch { /* closed by Deno already */ }
    },
  };
  live.add(w);
  return w;
}

function tcpTransport(
  conn: Deno.TcpConn,
  live: Set<Watched>,
  tls: StartTls | undefined,
  wrapper: boolean,
): Transport {
  const peer = {
    kind: "network" as const,
    address: conn.remoteAddr.hostname.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1"),
    port: String(conn.remoteAddr.port),
    name: "unknown",
    server: conn.localAddr,
  };
  const w = watch(conn, peer.address, live);
  // A wrapper-mode connection is never sent a plaintext 421 to make room.
  w.tls = wrapper;
  // What the session tells the listener, before and after STARTTLS alike.
  const marks: Pick<Transport, "inTransaction" | "sessionOver"> = {
    inTransaction: (on) => {
      if (on !== w.inMail) {
        w.phaseSince = Date.now();
        w.waited = w.received = 0;
      }
      w.inMail = on;
    },
    sessionOver: () => {
      w.over = true;
    },
  };
  return {
    peer,
    ...(wrapper ? { implicitTls: true } : {}),
    read: (p) => w.read(p),
    write: (p) => w.write(p),
    close: () => w.close(),
    ...marks,
    ...(tls
      ? {
        startTls: async (timeoutMs: number) => {
          w.tls = true;
          return Object.assign(await tls(w, peer, timeoutMs), marks);
        },
      }
      : {}),
  };
}

/** A connection closed to make room, and why it qualified. */
export interface Evicted {
  readonly address: string;
  /** How long its client had been silent. */
  readonly idleMs: number;
  /** Set when it was closed as slow, not idle: bytes its client sent in how long a wait. */
  readonly slow?: { readonly bytes: number; readonly waitedMs: number };
}

/** How long a connection has waited for its client since its phase began (ms). */
function waitedMs(w: Watched, now: number): number {
  return w.waited + (w.idleSince === undefined ? 0 : now - Math.max(w.idleSince, w.phaseSince));
}

/**
 * Whether a connection's client is too slow to keep a place others need:
 * it has kept its session waiting SLOW_AFTER_MS in all, and sent fewer
 * than MIN_BYTES_PER_SECOND a second of it.
 */
function isSlow(w: Watched, now: number): boolean {
  const waited = waitedMs(w, now);
  return waited >= SLOW_AFTER_MS && w.received * 1000 < MIN_BYTES_PER_SECOND * waited;
}

/**
 * Closes a connection to make room: one whose client has been silent at
 * least `minIdleMs` and that is not in a mail transaction, or else one
 * whose client is slow (isSlow), in a transaction or not. Of the address
 * holding the most connections, the longest silent (or the one that kept
 * its session waiting longest). A 421 goes first when the session is not
 * in TLS.
 * @param sessionsOnly only a connection whose session still holds its slot
 *   (one closed in a session's place must give that slot back)
 * @returns the victim, or undefined when no connection qualified
 */
function evictOldest(
  live: Set<Watched>,
  minIdleMs: number,
  farewell: Uint8Array | undefined,
  sessionsOnly: boolean,
): Evicted | undefined {
  // Without a farewell the descriptor is needed now: closed at once.
  const now = Date.now();
  // The victim comes from the address that holds the most connections:
  // one client with many idle connections pays before a client with few.
  const held = new Map<string, number>();
  for (const w of live) held.set(w.address, (held.get(w.address) ?? 0) + 1);
  const pick = (
    eligible: (w: Watched) => boolean,
    score: (w: Watched) => number,
  ): Watched | undefined => {
    let victim: Watched | undefined;
    let victimHeld = 0;
    let victimScore = 0;
    for (const w of live) {
      if (w.evicted || (sessionsOnly && w.over) || !eligible(w)) continue;
      const n = held.get(w.address) ?? 0;
      const s = score(w);
      if (!victim || n > victimHeld || (n === victimHeld && s > victimScore)) {
        victim = w;
        victimHeld = n;
        victimScore = s;
      }
    }
    return victim;
  };
  const idle = pick(
    (w) => !w.inMail && w.idleSince !== undefined && now - w.idleSince >= minIdleMs,
    (w) => now - (w.idleSince as number),
  );
  const v = idle ?? pick((w) => isSlow(w, now), (w) => waitedMs(w, now));
  if (!v) return undefined;
  v.evicted = true;
  const idleMs = v.idleSince === undefined ? 0 : now - v.idleSince;
  const evicted: Evicted = idle
    ? { address: v.address, idleMs }
    : { address: v.address, idleMs, slow: { bytes: v.received, waitedMs: waitedMs(v, now) } };
  live.delete(v);
  if (farewell && !v.tls) {
    // A 421 fits any idle socket's buffer; the close follows it, or comes
    // after 200 ms at the latest.
    const timer = setTimeout(() => v.close(), 200);
    v.write(farewell).catch(() => {}).finally(() => {
      clearTimeout(timer);
      v.close();
    });
  } else {
    v.close();
  }
  return evicted;
}

/** Runs the server side of STARTTLS on an accepted connection. */
type StartTls = (
  conn: ByteConn,
  peer: Extract<Transport["peer"], { kind: "network" }>,
  timeoutMs: number,
) => Promise<Transport>;

/**
 * STARTTLS for connections from Deno.listen: node:tls over a stream on the
 * connection (loaded only when TLS is on: node modules cost every isolate
 * memory). The handshake is node_socket.ts's, as for any node socket.
 */
async function startTlsWith(context: () => ServerTls): Promise<StartTls> {
  const { connDuplex } = await import("./conn_duplex.ts");
  const { nodeTransport } = await import("./node_socket.ts");
  type NodeSocket = Parameters<typeof nodeTransport>[0];
  return async (conn, peer, timeoutMs) => {
    const stream = connDuplex(conn);
    const plain = nodeTransport(stream as unknown as NodeSocket, peer, context());
    const secure = await (plain.startTls as (ms: number) => Promise<Transport>)(timeoutMs);
    return {
      peer: secure.peer,
      get tls() {
        return secure.tls;
      },
      read: (p) => secure.read(p),
      write: (p) => secure.write(p),
      close: () => {
        secure.close();
        stream.destroy();
      },
    };
  };
}

/**
 * STARTTLS (and wrapper mode) through the thread's TLS engine
 * (tls_engine.ts): the handshake and the encryption in Deno's TLS stack.
 */
function startTlsWithEngine(engine: TlsEngine, context: () => ServerTls): StartTls {
  return async (conn, peer, timeoutMs) => {
    const pem = context().pem;
    if (!pem) {
      conn.close();
      throw new TlsHandshakeError("protocol", "the TLS engine has no certificate chain");
    }
    const s = await engine.handshake(conn, pem, timeoutMs, context().ecPem);
    return {
      peer,
      tls: s.info,
      read: (p) => s.read(p),
      write: (p) => s.write(p),
      close: () => s.close(),
    };
  };
}

/** Running listeners. */
export interface TcpServer {
  /** The bound addresses (useful with port 0). */
  readonly addresses: readonly Deno.NetAddr[];
  /** Stops accepting. */
  close(): void;
  /** Resolves when all accept loops have ended. */
  readonly finished: Promise<void>;
  /**
   * Resolves with the reason when a listener broke and could not be opened
   * again (the daemon should exit non-zero); never resolves otherwise.
   */
  readonly failed: Promise<string>;
  /**
   * Makes room for a new client: closes this listener's connection that has
   * waited longest for its client (of those whose session holds its slot,
   * see Transport.sessionOver), if it has waited at least
   * `evictIdleAfterMs` and is not in a mail transaction, or else the one
   * whose client is slowest (under 500 bytes a second of 10 s or more of
   * waiting), with a 421 when it is not in TLS.
   * @returns the closed connection's client and why it qualified, or undefined
   */
  evictIdle(): Evicted | undefined;
  /**
   * The same when descriptors ran out: the connection is closed at once,
   * without a reply, so that its descriptor is free when this returns; a
   * connection silent for a quarter of `evictIdleAfterMs` qualifies.
   */
  evictIdleNow(): Evicted | undefined;
}

/** How {@linkcode serveTcp} listens. */
export interface ServeOptions {
  /** Share the ports with other listener threads (SO_REUSEPORT). */
  reusePort?: boolean;
  /**
   * TLS contexts: for STARTTLS on the plain addresses (when offered), and
   * wrapper mode; asked per handshake (a reload may replace them).
   */
  tls?: () => { readonly starttls: ServerTls | undefined; readonly wrapper: ServerTls };
  /**
   * The TLS engine's loopback address for this thread: TLS through Deno's
   * own TLS stack (tls_engine.ts) instead of node:tls.
   */
  tlsEngine?: { hostname: string; port: number; ecdsaPort?: number };
  /** The thread's reusable buffers (the TLS engine's relay takes its own from them). */
  buffers?: IoBuffers;
  /** Where accept warnings go (default: nowhere). */
  log?: AcceptLog & { error(text: string): void };
  /** Opens a listener (tests); default Deno.listen. */
  listen?: (a: ListenAddress & { reusePort: boolean }) => Deno.TcpListener;
  /** Failures other than a shortage for this long make the listener be opened again (ms). */
  reopenAfterMs?: number;
  /** A listener not open again after this long is given up (ms). */
  giveUpAfterMs?: number;
  /** Backoff waits (tests). */
  backoff?: BackoffOptions;
  /**
   * A connection whose client has been silent this long may be closed to
   * make room when the descriptors (or, through evictIdle, the session
   * slots) run out (ms). @default {1000}
   */
  evictIdleAfterMs?: number;
  /** The reply an idle connection gets when it is closed to make room. */
  farewell?: Uint8Array;
  /** Told of each idle connection closed because descriptors ran out. */
  onEvict?: (victim: Evicted, why: string) => void;
}

const quiet = { warning() {}, info() {}, error() {} };

function denoListen(a: ListenAddress & { reusePort: boolean }): Deno.TcpListener {
  return Deno.listen({
    hostname: a.hostname,
    port: a.port,
    transport: "tcp",
    ...(a.reusePort ? { reusePort: true } : {}),
  });
}

/**
 * The operator's line for an address that cannot be listened on: which
 * address, why, and for a privileged port without the privilege, what
 * grants it.
 * @param a the address
 * @param e the error of the listen call
 * @returns the message
 */
export function listenError(a: ListenAddress, e: unknown): string {
  const host = a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname;
  const why = (e as Error).message;
  const hint = e instanceof Deno.errors.PermissionDenied && a.port > 0 && a.port < 1024
    ? ` (a port below 1024 needs root or CAP_NET_BIND_SERVICE)`
    : "";
  return `cannot listen on ${host}:${a.port}: ${why}${hint}`;
}

/**
 * Listens on every address and hands each connection to `onTransport`.
 * @param addresses where to listen
 * @param onTransport runs one session; errors are the caller's to log
 * @param options threads, STARTTLS, logging
 * @returns the server handle, once listening
 */
export async function serveTcp(
  addresses: readonly ListenAddress[],
  onTransport: (t: Transport) => Promise<void>,
  options: ServeOptions = {},
): Promise<TcpServer> {
  const listen = options.listen ?? denoListen;
  const log = options.log ?? quiet;
  const reusePort = options.reusePort ?? false;
  const reopenAfter = options.reopenAfterMs ?? 5000;
  const giveUpAfter = options.giveUpAfterMs ?? 30_000;
  const tls = options.tls;
  let engine: TlsEngine | undefined;
  const contexts = tls?.();
  const pem = contexts?.starttls?.pem ?? contexts?.wrapper.pem;
  if (options.tlsEngine && pem) {
    const { openTlsEngine } = await import("./tls_engine.ts");
    try {
      const { hostname, port, ecdsaPort } = options.tlsEngine;
      const ecPem = contexts?.starttls?.ecPem ?? contexts?.wrapper.ecPem;
      engine = openTlsEngine(
        { hostname, port },
        pem,
        undefined,
        ecPem && ecdsaPort !== undefined ? { port: ecdsaPort, pem: ecPem } : undefined,
        options.buffers,
      );
    } catch (e) {
      const a = options.tlsEngine;
      throw new Error(
        `smtpd_tls_loopback_listen: cannot listen on ${a.hostname}:${a.port}: ${
          (e as Error).message
        }`,
      );
    }
  }
  const upgrader = (ctx: () => ServerTls) =>
    engine ? Promise.resolve(startTlsWithEngine(engine, ctx)) : startTlsWith(ctx);
  const starttls = contexts?.starttls ? await upgrader(() => tls!().starttls!) : undefined;
  const wrapperTls = tls ? await upgrader(() => tls().wrapper) : undefined;
  const live = new Set<Watched>();
  const evictAfter = options.evictIdleAfterMs ?? 1000;
  // A session ended but for its TLS relay's drain (a client that does not
  // read its last replies) gave its slot back already: closing it makes no
  // room for a session.
  const evictIdle = () => evictOldest(live, evictAfter, options.farewell, true);
  // Out of descriptors nobody is served until one comes free: a connection
  // silent for a quarter of that time may already give its own.
  const evictIdleNow = () => evictOldest(live, evictAfter / 4, undefined, false);
  if (!wrapperTls && addresses.some((a) => a.wrapper)) {
    throw new Error("smtpd_tls_wrappermode: no TLS context (certificate and key)");
  }
  const first: Deno.TcpListener[] = [];
  for (const a of addresses) {
    try {
      first.push(listen({ hostname: a.hostname, port: a.port, reusePort }));
    } catch (e) {
      for (const l of first) l.close();
      throw new Error(listenError(a, e), { cause: e });
    }
  }
  let closed = false;
  const timers = new Set<{ wake: () => void; id?: ReturnType<typeof setTimeout> }>();
  // A wait that close() cuts short.
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t: { wake: () => void; id?: ReturnType<typeof setTimeout> } = {
        wake: () => {
          clearTimeout(t.id);
          timers.delete(t);
          resolve();
        },
      };
      t.id = setTimeout(t.wake, ms);
      timers.add(t);
    });
  let fail: (why: string) => void = () => {};
  const failed = new Promise<string>((r) => (fail = r));
  const current = [...first];
  const loops = first.map(async (initial, i) => {
    let listener: Deno.TcpListener | undefined = initial;
    // Reopened on the port it got (port 0 became a real one).
    const addr = initial.addr as Deno.NetAddr;
    const where = `${addr.hostname}:${addr.port}`;
    const backoff = new AcceptBackoff(log, options.backoff);
    let lostSince: number | undefined;
    try {
      while (!closed) {
        if (!listener) {
          try {
            listener = listen({ hostname: addr.hostname, port: addr.port, reusePort });
            current[i] = listener;
            log.warning(`listener ${where}: listening again`);
            lostSince = undefined;
          } catch (err) {
            lostSince ??= Date.now();
            if (Date.now() - lostSince >= giveUpAfter) {
              const why = `listener ${where}: cannot listen again for ${
                Math.round((Date.now() - lostSince) / 1000)
              } s: ${describeAcceptError(err)}`;
              log.error(why);
              fail(why);
              return;
            }
            await sleep(backoff.failed(err));
            continue;
          }
        }
        let conn: Deno.TcpConn;
        try {
          conn = await listener.accept();
        } catch (err) {
          if (closed) return;
          const broken = err instanceof Deno.errors.BadResource ||
            (!resourceShortage(err) && backoff.failingSince !== undefined &&
              Date.now() - backoff.failingSince >= reopenAfter);
          if (broken) {
            log.warning(`listener ${where}: ${describeAcceptError(err)}; opening it again`);
            try {
              listener.close();
            } catch { /* already closed */ }
            listener = undefined;
            lostSince = Date.now();
          }
          const wait = backoff.failed(err);
          // Out of descriptors: an idle connection gives its own back, and
          // the client waiting in the backlog gets it at once.
          const victim = resourceShortage(err) ? evictIdleNow() : undefined;
          if (victim) {
            options.onEvict?.(victim, describeAcceptError(err));
            // Its descriptor is free once the runtime has cancelled its read.
            await sleep(10);
            continue;
          }
          await sleep(wait);
          continue;
        }
        backoff.succeeded();
        try {
          conn.setNoDelay(true);
        } catch { /* not fatal */ }
        const wrapper = addresses[i]?.wrapper === true;
        const upgrade = wrapper ? wrapperTls : starttls;
        void onTransport(tcpTransport(conn, live, upgrade, wrapper));
      }
    } finally {
      backoff.dispose();
    }
  });
  return {
    addresses: first.map((l) => l.addr as Deno.NetAddr),
    close: () => {
      closed = true;
      engine?.close();
      for (const t of [...timers]) t.wake();
      for (const l of current) {
        try {
          l.close();
        } catch { /* closed */ }
      }
    },
    finished: Promise.all(loops).then(() => {}),
    failed,
    evictIdle,
    evictIdleNow,
  };
}
