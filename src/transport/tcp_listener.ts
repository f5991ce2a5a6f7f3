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
import { clientWasHeard, listenerClosed, listenerOpened } from "../io/turns.ts";
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
 * When a client is too slow to keep a place others need (smtpd_slow_client_wait,
 * smtpd_slow_client_rate): a session whose client, since the session last
 * entered or left a mail transaction, has kept it waiting `waitMs` in all
 * and sent fewer than `bytesPerSecond` a second of that wait gives its
 * place at the cap as an idle one does, in a mail transaction or not.
 * Without this, clients that each send a line a second (EHLO, or a message
 * body in DATA) are never silent for the idle threshold and hold every
 * slot indefinitely.
 */
export interface SlowClient {
  /** Waiting for the client, in all, that can make a session slow (ms). */
  readonly waitMs: number;
  /** Bytes a second of that wait a client must send not to be slow (0: none is slow). */
  readonly bytesPerSecond: number;
}

/** The defaults: 10 s of waiting under 500 bytes a second (Postfix's smtpd_min_data_rate default). */
const SLOW_CLIENT: SlowClient = { waitMs: 10_000, bytesPerSecond: 500 };

/**
 * An accepted connection as the listener sees it: whether the session is
 * waiting for the client (a read pending, since when), and how fast its
 * client sends, so that an idle or slow one can give its place to a new
 * client when the slots or the descriptors run out.
 */
interface Watched extends ByteConn {
  /** Names the connection to {@linkcode TcpServer.evictCandidate}. */
  readonly id: number;
  /** The client: the peer, or the one a PROXY header named (Transport.sessionBegun). */
  address: string;
  /** When the pending read started; undefined while none is pending. */
  idleSince: number | undefined;
  /**
   * When the pending write started; undefined while none is pending. A
   * write waits only when the socket's send buffer is full: its client
   * has not read what it was sent.
   */
  writingSince: number | undefined;
  /** STARTTLS started: nothing may be written in plaintext any more. */
  tls: boolean;
  /**
   * When the session started waiting on its DNS lookups (Transport.waitingOnDns);
   * undefined while none is under way.
   */
  dnsSince: number | undefined;
  /**
   * Time spent waiting on lookups that ended since the session last read
   * from its client (ms): the lookups of one command, one after another.
   */
  dnsWaited: number;
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
  /**
   * The session has its slot (Transport.sessionBegun): until then the
   * connection waits for one or is being refused, and closing it frees none.
   */
  holding: boolean;
  /** Gives the client's per-client slot back (Transport.sessionBegun), once. */
  releaseClient: (() => void) | undefined;
  evicted: boolean;
  /**
   * The TLS handshake is done: from now on the session's reads of the
   * plaintext (`read` of the result) say when it waits for its client, and
   * this connection's own reads no longer do. Those run ahead of the
   * session (the TLS engine's relay, node:tls), also while the session is
   * busy with its client's last command (a DNS lookup, a policy service,
   * a `sleep` restriction, the error tarpit): counted, they made a TLS
   * session whose client waits for a reply look idle or slow, and closed to
   * make room, where a plain session's would not.
   * @param read the TLS stream's read
   * @returns that read, watched
   */
  watchTls(
    read: (p: Uint8Array) => Promise<number | null>,
  ): (p: Uint8Array) => Promise<number | null>;
  /**
   * The session is over but for its last reply (sets `over`). Over TLS its
   * connection counts as idle from now: only the relay's drain (a client
   * that does not read its last replies) may keep it, and its descriptor
   * may be needed.
   */
  sessionEnded(): void;
}

function watch(conn: Deno.TcpConn, address: string, live: Live): Watched {
  // Closed once: a second close would build (and throw away) a BadResource
  // error with its stack, several per TLS connection (the relay's two ends
  // both close it).
  let closed = false;
  // Whose reads are watched: the connection's, until watchTls.
  let rawWatched = true;
  // The latest watched read: one that ends after a later one started (the
  // relay's last read of the handshake) leaves that one's marks alone.
  let latest = 0;
  // Writes under way (a farewell may join a pending one).
  let writing = 0;
  const watched = async (read: () => Promise<number | null>) => {
    const mine = ++latest;
    const start = w.idleSince = Date.now();
    try {
      const n = await read();
      if (n !== null) w.received += n;
      return n;
    } finally {
      if (mine === latest) {
        const now = Date.now();
        w.waited += now - Math.max(start, w.phaseSince);
        w.idleSince = undefined;
        // The client had its turn: what the session waits on DNS from now
        // on is for its next command (a lookup left running, say by a DNS
        // list whose answer was no longer needed, counts from here).
        w.dnsWaited = 0;
        if (w.dnsSince !== undefined) w.dnsSince = now;
      }
    }
  };
  const w: Watched = {
    id: ++live.lastId,
    address,
    idleSince: undefined,
    writingSince: undefined,
    dnsSince: undefined,
    dnsWaited: 0,
    tls: false,
    inMail: false,
    phaseSince: Date.now(),
    waited: 0,
    received: 0,
    over: false,
    holding: false,
    releaseClient: undefined,
    evicted: false,
    read: (p) => rawWatched ? watched(() => conn.read(p)) : conn.read(p),
    watchTls(read) {
      rawWatched = false;
      // The relay's read pending now is not the session's wait.
      latest++;
      w.idleSince = undefined;
      return (p) => watched(() => read(p));
    },
    sessionEnded() {
      w.over = true;
      if (rawWatched) return;
      latest++;
      w.idleSince = Date.now();
    },
    write: (p) => {
      if (writing++ === 0) w.writingSince = Date.now();
      return conn.write(p).finally(() => {
        if (--writing === 0) w.writingSince = undefined;
      });
    },
    closeWrite: () => conn.closeWrite(),
    close() {
      live.conns.delete(w);
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch { /* closed by Deno already */ }
    },
  };
  live.conns.add(w);
  return w;
}

/** A listener's accepted connections, and the last id given to one. */
interface Live {
  readonly conns: Set<Watched>;
  lastId: number;
}

function tcpTransport(
  conn: Deno.TcpConn,
  live: Live,
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
  const marks: Pick<
    Transport,
    "inTransaction" | "sessionOver" | "sessionBegun" | "tlsBegins" | "waitingOnDns"
  > = {
    inTransaction: (on) => {
      if (on !== w.inMail) {
        w.phaseSince = Date.now();
        w.waited = w.received = 0;
      }
      w.inMail = on;
    },
    sessionOver: () => w.sessionEnded(),
    sessionBegun: (releaseClient, client) => {
      w.holding = true;
      w.releaseClient = releaseClient;
      if (client !== undefined) w.address = client;
    },
    tlsBegins: () => {
      w.tls = true;
    },
    waitingOnDns: (on) => {
      const now = Date.now();
      if (on) {
        w.dnsSince = now;
      } else if (w.dnsSince !== undefined) {
        w.dnsWaited += now - w.dnsSince;
        w.dnsSince = undefined;
      }
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
          const secure = await tls(w, peer, timeoutMs);
          return Object.assign(secure, marks, { read: w.watchTls(secure.read.bind(secure)) });
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
  /**
   * Set when it was closed as slow, not idle: bytes its client sent in how
   * long a wait, or (`unreadMs`) how long its client had left a reply unread,
   * or (`dnsMs`) how long its command had waited on DNS.
   */
  readonly slow?: {
    readonly bytes: number;
    readonly waitedMs: number;
    readonly unreadMs?: number;
    readonly dnsMs?: number;
  };
  /** Set when it was closed because its address held more than its share: how many. */
  readonly crowding?: { readonly held: number };
}

/** How long a connection has waited for its client since its phase began (ms). */
function waitedMs(w: Watched, now: number): number {
  return w.waited + (w.idleSince === undefined ? 0 : now - Math.max(w.idleSince, w.phaseSince));
}

/**
 * Whether a connection's client is too slow to keep a place others need:
 * it has kept its session waiting `slow.waitMs` in all, and sent fewer
 * than `slow.bytesPerSecond` a second of it.
 */
function isSlow(w: Watched, now: number, slow: SlowClient): boolean {
  const waited = waitedMs(w, now);
  return waited >= slow.waitMs && w.received * 1000 < slow.bytesPerSecond * waited;
}

/**
 * How long a connection's client has left a write waiting (it does not
 * read its replies: the send buffer is full); 0 while no write waits.
 * Such a session waits for its client as a slow one does, however much
 * the client sent before: pipelining without reading, it had the session
 * answer until the buffers were full, and then held its place for
 * `smtpd_timeout`; a hundred of them held every place.
 */
function unreadMs(w: Watched, now: number): number {
  return w.writingSince === undefined ? 0 : now - w.writingSince;
}

/**
 * How long a connection's session has waited on DNS lookups for its
 * command (since it last read from its client) while a lookup is still
 * under way and no read is (the session is not waiting for its client);
 * 0 otherwise. The names are the client's choice (its sender domain,
 * whose hundred MX hosts never answer, under check_sender_mx_access: one
 * RCPT took minutes), and a session waiting on them is neither idle nor
 * slow by its bytes: a few clients held every place as long as they liked.
 */
function dnsMs(w: Watched, now: number): number {
  return w.dnsSince === undefined || w.idleSince !== undefined ? 0 : w.dnsWaited + now - w.dnsSince;
}

/**
 * A wait ({@linkcode unreadMs}, {@linkcode dnsMs}) that makes a session
 * slow: the wait once it is `slow.waitMs` or more; 0 otherwise, and when no
 * client is slow (`bytesPerSecond` 0).
 */
function slowWait(ms: number, slow: SlowClient): number {
  return slow.bytesPerSecond > 0 && ms >= slow.waitMs ? ms : 0;
}

/** Why a connection would be closed to make room: for a session slot, or for a descriptor. */
export type RoomPurpose = "session" | "descriptor";

/**
 * Why a connection qualifies to be closed to make room, in the order they
 * go: its client is silent out of a transaction (idle), sends too little
 * (slow, see {@linkcode SlowClient}), or its address holds at least two
 * sessions more than the new client's (crowding: a session slot only).
 */
export type RoomReason = "idle" | "slow" | "crowding";
const REASON_RANK: Record<RoomReason, number> = { idle: 0, slow: 1, crowding: 2 };

/**
 * The connection a listener would close to make room, as it compares with
 * other threads' ({@linkcode betterCandidate}).
 */
export interface RoomCandidate {
  /** The connection ({@linkcode TcpServer.evictCandidate}). */
  readonly id: number;
  /** Why it qualifies. */
  readonly why: RoomReason;
  /** Connections its client's address holds. */
  readonly held: number;
  /**
   * How long it was silent (idle) or kept its session waiting (slow), ms;
   * for crowding, 1 out of a mail transaction and 0 in one (none is lost).
   */
  readonly score: number;
}

/**
 * Whether `a` should give way before `b`: an idle connection before a slow
 * one, a slow one before a crowding one, then the one whose address holds
 * more connections, then the one silent (or waiting) longer. The same
 * order within a listener and across listener threads.
 * @param a a candidate
 * @param b another
 * @returns true when `a` goes first
 */
export function betterCandidate(a: RoomCandidate, b: RoomCandidate): boolean {
  if (a.why !== b.why) return REASON_RANK[a.why] < REASON_RANK[b.why];
  if (a.held !== b.held) return a.held > b.held;
  return a.score > b.score;
}

/** How connections qualify to be closed to make room. */
interface RoomRule {
  /** Silent this long (ms) and out of a transaction: idle. */
  readonly minIdleMs: number;
  /** Only a connection whose session still holds its slot (one closed in a session's place must give that slot back). */
  readonly sessionsOnly: boolean;
  readonly slow: SlowClient;
  /** Connections an address holds (by default, counted on this listener). */
  readonly held: (address: string) => number;
  /**
   * For a session slot, sessions the new client's address held before it
   * came: a connection whose address holds two more crowds it out.
   * Undefined: none qualifies so.
   */
  readonly newcomerHeld: number | undefined;
  /** Clients never closed for crowding (smtpd_client_event_limit_exceptions). */
  readonly exempt: (address: string) => boolean;
}

/** How a connection qualifies under a rule now, if it does. */
function qualifies(w: Watched, rule: RoomRule, now: number): RoomCandidate | undefined {
  // For a session slot, only a connection whose session holds one: one
  // still waiting for its place (a PROXY header, or its client's judgement
  // at connect) frees none when closed, and the new client would take a
  // place past the cap.
  if (w.evicted || (rule.sessionsOnly && (w.over || !w.holding))) return undefined;
  // An idle session gives way only to a client whose address held fewer
  // sessions than the session's own address (the newcomer's own address
  // holds its new one already): an address that holds many busy sessions
  // does not take the lone session of another between its messages. A slow
  // one (a client dripping its bytes) gives way to anyone, as before: the
  // rule would let a slow-drip from many addresses, one session each, keep
  // out the second connection of a sender that already has one.
  const fair = rule.newcomerHeld === undefined || rule.held(w.address) > rule.newcomerHeld;
  if (
    fair && !w.inMail && w.idleSince !== undefined && now - w.idleSince >= rule.minIdleMs
  ) {
    return { id: w.id, why: "idle", held: rule.held(w.address), score: now - w.idleSince };
  }
  const unread = slowWait(unreadMs(w, now), rule.slow);
  const dns = slowWait(dnsMs(w, now), rule.slow);
  if (unread > 0 || dns > 0 || isSlow(w, now, rule.slow)) {
    return {
      id: w.id,
      why: "slow",
      held: rule.held(w.address),
      score: Math.max(unread, dns, waitedMs(w, now)),
    };
  }
  if (rule.newcomerHeld !== undefined && !rule.exempt(w.address)) {
    const held = rule.held(w.address);
    if (held >= rule.newcomerHeld + 2) {
      return { id: w.id, why: "crowding", held, score: w.inMail ? 0 : 1 };
    }
  }
  return undefined;
}

/**
 * The connection to close to make room: one whose client has been silent
 * at least `minIdleMs` and that is not in a mail transaction, or else one
 * whose client is slow (isSlow), in a transaction or not; the first of
 * them in {@linkcode betterCandidate}'s order.
 */
function bestCandidate(
  live: Live,
  rule: RoomRule,
  now: number,
): { w: Watched; c: RoomCandidate } | undefined {
  let best: { w: Watched; c: RoomCandidate } | undefined;
  for (const w of live.conns) {
    const c = qualifies(w, rule, now);
    if (c && (!best || betterCandidate(c, best.c))) best = { w, c };
  }
  return best;
}

/**
 * Closes a connection to make room. A 421 goes first when the session is
 * not in TLS; without a farewell the descriptor is needed now: closed at
 * once.
 * @returns the victim, and why it qualified
 */
function closeToMakeRoom(
  live: Live,
  v: Watched,
  c: RoomCandidate,
  farewells: Farewells | undefined,
): Evicted {
  v.evicted = true;
  // Its address holds one fewer from now on: a burst of new clients each
  // counts it without this one (not only once its session has ended), and
  // takes no more of its sessions than crowding allows.
  v.releaseClient?.();
  v.releaseClient = undefined;
  const now = Date.now();
  const idleMs = v.idleSince === undefined ? 0 : now - v.idleSince;
  // Its command's DNS wait, when that is what made it slow.
  const dnsWait = dnsMs(v, now);
  const evicted: Evicted = c.why === "idle" ? { address: v.address, idleMs } : c.why === "slow"
    ? {
      address: v.address,
      idleMs,
      slow: v.writingSince !== undefined
        ? { bytes: v.received, waitedMs: c.score, unreadMs: unreadMs(v, now) }
        : dnsWait > 0 && dnsWait >= c.score
        ? { bytes: v.received, waitedMs: c.score, dnsMs: dnsWait }
        : { bytes: v.received, waitedMs: c.score },
    }
    : { address: v.address, idleMs, crowding: { held: c.held } };
  live.conns.delete(v);
  // A client that does not read its replies would not read the 421 either,
  // and it could land in the middle of the reply still being written.
  const farewell = v.writingSince === undefined ? farewells?.[c.why] : undefined;
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

/** The replies a connection closed to make room gets, by why it qualified. */
export interface Farewells {
  readonly idle: Uint8Array;
  readonly slow: Uint8Array;
  readonly crowding: Uint8Array;
}

/** An accept that failed because its client had already left (not a listener failure). */
function clientLeftFirst(err: unknown): boolean {
  return err instanceof Deno.errors.NotConnected ||
    err instanceof Deno.errors.ConnectionAborted ||
    err instanceof Deno.errors.ConnectionReset;
}

/** Runs the server side of STARTTLS on an accepted connection. */
type StartTls = (
  conn: ByteConn,
  peer: Extract<Transport["peer"], { kind: "network" }>,
  timeoutMs: number,
) => Promise<Transport>;

/**
 * STARTTLS for connections from Deno.listen: node:tls over a stream on the
 * connection (node_socket.ts, loaded only when TLS is on: node modules cost
 * every isolate memory).
 */
async function startTlsWith(context: () => ServerTls): Promise<StartTls> {
  const { nodeStartTls } = await import("./node_socket.ts");
  return nodeStartTls(context);
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
   * For a stop: closes every accepted connection, so that each session
   * ends as if its client had gone (a message in progress removes its
   * queue file), and waits for the sessions to end, at most `maxWaitMs`.
   */
  closeConnections(maxWaitMs: number): Promise<void>;
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
   * whose client is slowest (see {@linkcode SlowClient}), or else, given
   * how many sessions the new client's address held before it came, one
   * of an address that holds at least two more (crowding), with a 421 when
   * it is not in TLS ({@linkcode betterCandidate} says which goes first).
   * @param newcomerHeld sessions the new client's address held (undefined: none is crowding)
   * @returns the closed connection's client and why it qualified, or undefined
   */
  evictIdle(newcomerHeld?: number): Evicted | undefined;
  /**
   * The same when descriptors ran out: the connection is closed at once,
   * without a reply, so that its descriptor is free when this returns; a
   * connection silent for a quarter of `evictIdleAfterMs` qualifies.
   */
  evictIdleNow(): Evicted | undefined;
  /**
   * The connection {@linkcode evictIdle} ("session") or
   * {@linkcode evictIdleNow} ("descriptor") would close, without closing
   * it: for another listener thread to compare with its own.
   */
  candidate(purpose: RoomPurpose, newcomerHeld?: number): RoomCandidate | undefined;
  /**
   * Closes the connection a {@linkcode candidate} named, as evictIdle or
   * evictIdleNow would, if it still qualifies and `claim` (asked last,
   * just before the close) agrees.
   * @returns the closed connection's client and why, or undefined
   */
  evictCandidate(
    id: number,
    purpose: RoomPurpose,
    claim: () => boolean,
    newcomerHeld?: number,
  ): Evicted | undefined;
}

/** How {@linkcode serveTcp} listens. */
export interface ServeOptions {
  /** Share the ports with other listener threads (SO_REUSEPORT). */
  reusePort?: boolean;
  /**
   * The first listener of this process on its ports: with reusePort, a port
   * that another process already listens on with SO_REUSEPORT (a second
   * server started by mistake) would be shared with it, the kernel handing
   * each connection to either; each port is first bound alone, so that such
   * a port fails as "Address already in use", as without threads.
   */
  exclusive?: boolean;
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
  /** The reply a connection gets when it is closed to make room (idle or slow). */
  farewell?: Farewells;
  /** Told of each idle connection closed because descriptors ran out. */
  onEvict?: (victim: Evicted, why: string) => void;
  /**
   * Out of descriptors with no connection of its own to close: asks the
   * other listener threads to close one (descriptors are the process's);
   * resolves to whether one did.
   */
  roomElsewhere?: (purpose: RoomPurpose) => Promise<boolean>;
  /** When a client is slow (read at each use: a reload may change it). @default {10 s, 500 B/s} */
  slowClient?: () => SlowClient;
  /**
   * Connections an address holds, for the choice of whom to close (the
   * shared per-client count across listener threads); by default those of
   * this listener.
   */
  held?: (address: string) => number;
  /** Clients never closed for crowding (smtpd_client_event_limit_exceptions). */
  exempt?: (address: string) => boolean;
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
        {
          // Out of descriptors for a relay or the engine's accept: an idle
          // connection gives its own back, as for the listener's accept.
          makeRoom: async (err) => {
            const victim = evictIdleNow();
            if (victim) {
              options.onEvict?.(victim, describeAcceptError(err));
              return true;
            }
            return await options.roomElsewhere?.("descriptor") ?? false;
          },
        },
      );
    } catch (e) {
      const a = options.tlsEngine;
      // The engine's port is the operator's pick, often a high one: an
      // outgoing connection (the relays' own, or any program's) can hold
      // it as its local port, which a restart then finds in use.
      const hint = e instanceof Deno.errors.AddrInUse
        ? " (another program listens there, or a connection uses it as its local port: " +
          "choose ports below net.ipv4.ip_local_port_range, 32768 by default)"
        : "";
      throw new Error(
        `smtpd_tls_loopback_listen: cannot listen on ${a.hostname}:${a.port}: ${
          (e as Error).message
        }${hint}`,
      );
    }
  }
  const upgrader = (ctx: () => ServerTls) =>
    engine ? Promise.resolve(startTlsWithEngine(engine, ctx)) : startTlsWith(ctx);
  const starttls = contexts?.starttls ? await upgrader(() => tls!().starttls!) : undefined;
  const wrapperTls = tls ? await upgrader(() => tls().wrapper) : undefined;
  const live: Live = { conns: new Set(), lastId: 0 };
  const sessions = new Set<Promise<void>>();
  const evictAfter = options.evictIdleAfterMs ?? 1000;
  const countHere = () => {
    const held = new Map<string, number>();
    for (const w of live.conns) held.set(w.address, (held.get(w.address) ?? 0) + 1);
    return (address: string) => held.get(address) ?? 0;
  };
  const rule = (purpose: RoomPurpose, newcomerHeld?: number): RoomRule => ({
    // Out of descriptors nobody is served until one comes free: a
    // connection silent for a quarter of the time may already give its own.
    minIdleMs: purpose === "session" ? evictAfter : evictAfter / 4,
    // A session ended but for its TLS relay's drain (a client that does not
    // read its last replies) gave its slot back already: closing it makes
    // no room for a session.
    sessionsOnly: purpose === "session",
    slow: options.slowClient?.() ?? SLOW_CLIENT,
    held: options.held ?? countHere(),
    newcomerHeld: purpose === "session" ? newcomerHeld : undefined,
    exempt: options.exempt ?? (() => false),
  });
  // Without a farewell the descriptor is needed now: closed at once.
  const farewellFor = (purpose: RoomPurpose) =>
    purpose === "session" ? options.farewell : undefined;
  const evict = (purpose: RoomPurpose, newcomerHeld?: number) => {
    const best = bestCandidate(live, rule(purpose, newcomerHeld), Date.now());
    return best && closeToMakeRoom(live, best.w, best.c, farewellFor(purpose));
  };
  const evictIdle = (newcomerHeld?: number) => evict("session", newcomerHeld);
  const evictIdleNow = () => evict("descriptor");
  const candidate = (purpose: RoomPurpose, newcomerHeld?: number) =>
    bestCandidate(live, rule(purpose, newcomerHeld), Date.now())?.c;
  const evictCandidate = (
    id: number,
    purpose: RoomPurpose,
    claim: () => boolean,
    newcomerHeld?: number,
  ) => {
    let w: Watched | undefined;
    for (const x of live.conns) if (x.id === id) w = x;
    const c = w && qualifies(w, rule(purpose, newcomerHeld), Date.now());
    if (!w || !c || !claim()) return undefined;
    return closeToMakeRoom(live, w, c, farewellFor(purpose));
  };
  if (!wrapperTls && addresses.some((a) => a.wrapper)) {
    throw new Error("smtpd_tls_wrappermode: no TLS context (certificate and key)");
  }
  const first: Deno.TcpListener[] = [];
  if (reusePort && options.exclusive) {
    // Port 0 is a new port: nobody else's.
    for (const a of addresses.filter((a) => a.port !== 0)) {
      try {
        listen({ hostname: a.hostname, port: a.port, reusePort: false }).close();
      } catch (e) {
        throw new Error(listenError(a, e), { cause: e });
      }
    }
  }
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
    listenerOpened();
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
          clientWasHeard();
        } catch (err) {
          if (closed) return;
          // The client reset its connection before it was taken (Deno's
          // accept asks for the peer's address, which fails with ENOTCONN):
          // that connection is gone, the listener is fine. Counted as a
          // failure, a client doing this in a loop made every accept wait
          // (up to 1 s) and, after 5 s of it, had the listener closed and
          // opened again, refusing everyone meanwhile.
          if (clientLeftFirst(err)) continue;
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
          if (victim) options.onEvict?.(victim, describeAcceptError(err));
          // Without one here, another listener thread may close one of its own.
          if (
            victim ||
            (resourceShortage(err) && await options.roomElsewhere?.("descriptor"))
          ) {
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
        const session = onTransport(tcpTransport(conn, live, upgrade, wrapper));
        sessions.add(session);
        // A failure stays unhandled, for the thread's report, as before.
        void session.finally(() => sessions.delete(session));
      }
    } finally {
      backoff.dispose();
      listenerClosed();
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
    closeConnections: async (maxWaitMs: number) => {
      for (const w of [...live.conns]) w.close();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled(sessions),
        new Promise((r) => (timer = setTimeout(r, maxWaitMs))),
      ]);
      clearTimeout(timer);
    },
    failed,
    evictIdle,
    evictIdleNow,
    candidate,
    evictCandidate,
  };
}
