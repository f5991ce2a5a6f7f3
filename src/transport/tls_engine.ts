/**
 * The TLS engine: the server side of TLS in Deno's own TLS stack
 * (Deno.listenTls: rustls in the runtime, the key loaded once) instead of
 * node:tls, which loads the key again for every connection and costs about
 * twice the CPU per handshake. Deno can serve TLS only to connections its
 * TLS listener accepts, so each thread listens on a loopback port of its
 * own (smtpd_tls_loopback_listen) and relays: after STARTTLS (or, in
 * wrapper mode, at once) the client's bytes go to a connection this thread
 * opens to its engine port, and the engine's bytes go back to the client.
 * The session reads and writes the plaintext of the connection the engine
 * accepted.
 *
 * The relay passes bytes as they come and only when the other side has
 * taken the last ones: a client that sends without reading stops being
 * read (the kernel buffers hold the rest), as on a plain connection. The
 * engine's first record, the ServerHello, is read on the way for the
 * protocol and cipher (server_hello.ts). Only connections this thread
 * opened are served: the engine matches each accepted connection to the
 * relay that opened it by its source address and port, and closes any
 * other.
 *
 * @module
 */

import { IoBuffers } from "../io/io_buffers.ts";
import { resourceShortage } from "../io/os_error.ts";
import { writeAll } from "../io/reply_writer.ts";
import type { ByteConn } from "./conn_duplex.ts";
import { CLIENT_HELLO_LIMIT, clientTakesEcdsa, ecdsaSchemesOf } from "./client_hello.ts";
import { parseServerHello, SERVER_HELLO_LIMIT } from "./server_hello.ts";
import { TlsHandshakeError, type TlsInfo } from "./types.ts";

/** A certificate chain and its key, PEM. */
export interface TlsPem {
  readonly cert: string;
  readonly key: string;
}

/** The encrypted side of a connection, once the handshake is done. */
export interface TlsStream {
  readonly info: TlsInfo;
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  /** Ends TLS; what was written still reaches the client, then its connection is closed. */
  close(): void;
}

/** One thread's TLS engine. */
export interface TlsEngine {
  /** Where it listens (port 0 resolved). */
  readonly address: Deno.NetAddr;
  /**
   * Runs the server handshake over a client's connection, within timeoutMs.
   * @param conn the client's connection (its plaintext part is over)
   * @param pem the chain and key to serve (a reload may bring new ones)
   * @param ecPem the ECDSA chain, when the engine has one
   * @param timeoutMs smtpd_starttls_timeout
   * @returns the encrypted stream
   * @throws {TlsHandshakeError} on timeout, a client that leaves, or a failed handshake;
   *   the client's connection is closed then
   */
  handshake(conn: ByteConn, pem: TlsPem, timeoutMs: number, ecPem?: TlsPem): Promise<TlsStream>;
  /** Stops listening; sessions already encrypted go on. */
  close(): void;
}

/** How long a closed session's last bytes may take to reach its client (ms). */
const DRAIN_MS = 10_000;
/** How long an accepted connection waits for its relay to claim it (ms). */
const EARLY_MS = 2000;
/** How long a certificate change waits for handshakes in progress (ms). */
const SWAP_WAIT_MS = 1000;
/** How often the engine tries its port again when a chain change could not reopen it (ms). */
const REOPEN_RETRY_MS = 1000;
/** How long the engine waits after an accept failed (no descriptor free) before the next (ms). */
const ACCEPT_RETRY_MS = 50;
/**
 * What settles a handshake's waits once it is over. One object for all:
 * an Error built per handshake (with its stack) cost about 1% of the
 * listener thread's time under a load of one message per connection.
 */
const HANDSHAKE_OVER: Error = new TlsHandshakeError("timeout", "done");

/** Opens a TLS listener (Deno.listenTls; tests may pass another). */
export type ListenTls = (o: Deno.TcpListenOptions & TlsPem) => Deno.TlsListener;

/** Opens a relay's connection to the engine (Deno.connect; tests may pass another). */
export type ConnectTcp = (o: { hostname: string; port: number }) => Promise<Deno.TcpConn>;

/**
 * Makes a descriptor free when one was needed and none was (EMFILE): the
 * listener closes an idle connection, its own or another thread's, as for
 * an accept. Without it a TLS session, which needs two descriptors more
 * than a plain one (the relay and the engine's accept), was refused or
 * left waiting for its handshake's timeout while idle clients held every
 * descriptor, when a plain client was served.
 * @param err the failure
 * @returns whether a connection was closed
 */
export type MakeRoom = (err: unknown) => Promise<boolean>;

/** How many times a relay's connect is tried again after room was made for it. */
const CONNECT_ROOM_TRIES = 3;

/** One listener of the engine, serving one chain: its port, its accepts, its chain swaps. */
interface Door {
  readonly address: Deno.NetAddr;
  /** Serves this chain from the next handshake on (a reload may bring a new one). */
  serve(pem: TlsPem): void;
  /**
   * Opens a relay to the listener, and the connection the listener accepted from it.
   * @param failed rejects when the handshake's time is up
   */
  connect(
    failed: Promise<never>,
  ): Promise<{ relay: Deno.TcpConn; accepted: Promise<Deno.TlsConn> }>;
  close(): void;
}

function openDoor(
  at: { hostname: string; port: number },
  pem: TlsPem,
  listen: ListenTls,
  room: { makeRoom?: MakeRoom; connect: ConnectTcp },
): Door {
  // Relays that have connected, by their source address, until accepted;
  // and connections accepted before their relay knew its address (the
  // accept can be seen before the connect), for a moment.
  const waiting = new Map<string, (c: Deno.TlsConn) => void>();
  const early = new Map<string, Deno.TlsConn>();
  let connecting = 0;
  let current = pem;
  let listener: Deno.TlsListener | undefined = listen({ ...at, ...pem });
  const address = listener.addr as Deno.NetAddr;
  let closed = false;
  const accepting = (l: Deno.TlsListener): Promise<void> =>
    (async () => {
      for (;;) {
        let c: Deno.TlsConn;
        try {
          c = await l.accept();
        } catch (err) {
          // Closed (a new chain opens the next listener), or a failure
          // that passes (no descriptor free, EMFILE): the connection stays
          // in the backlog and is accepted on the next try, at once when
          // an idle connection gave its descriptor back.
          if (closed || listener !== l) return;
          const freed = resourceShortage(err) !== undefined && room.makeRoom !== undefined &&
            await room.makeRoom(err).catch(() => false);
          // A closed connection's descriptor is free once the runtime has cancelled its read.
          await new Promise((r) => setTimeout(r, freed ? 10 : ACCEPT_RETRY_MS));
          continue;
        }
        const from = c.remoteAddr as Deno.NetAddr;
        const key = `${from.hostname}:${from.port}`;
        const mine = waiting.get(key);
        if (mine) {
          waiting.delete(key);
          mine(c);
          continue;
        }
        // Its relay's connect has not been seen yet, or it is not one of
        // this thread's relays (another local process): closed unless
        // claimed soon.
        early.set(key, c);
        setTimeout(() => {
          if (early.get(key) !== c) return;
          early.delete(key);
          // Deno closes a TLS connection only once its handshake has run:
          // one that sends garbage is closed at once, one that sends
          // nothing, or part of a ClientHello, stays until it leaves (see
          // the README).
          void c.handshake().catch(() => {}).finally(() => closeQuietly(c));
        }, EARLY_MS);
      }
    })();
  let acceptLoop = accepting(listener);

  // A new chain (after a reload) takes over once no handshake waits for an
  // accept: closing a listener resets the connections in its backlog. The
  // port is free again once the old listener's pending accept has ended;
  // handshakes wait for the new listener (a few milliseconds).
  let next: TlsPem | undefined;
  let swapTimer: ReturnType<typeof setTimeout> | undefined;
  let ready: Promise<void> = Promise.resolve();
  const swapNow = () => {
    clearTimeout(swapTimer);
    swapTimer = undefined;
    if (!next || closed || !listener) return;
    const chain = next;
    next = undefined;
    const old = listener;
    const oldLoop = acceptLoop;
    listener = undefined;
    // The new chain (or a later reload's), else the one served so far.
    const reopen = (): boolean => {
      const wanted = next ?? chain;
      for (const p of [wanted, current]) {
        try {
          listener = listen({ hostname: address.hostname, port: address.port, ...p });
        } catch {
          continue; // the port is not free yet, or no descriptor is
        }
        current = p;
        if (next === wanted) next = undefined;
        acceptLoop = accepting(listener);
        return true;
      }
      return false;
    };
    ready = (async () => {
      closeQuietly(old);
      await oldLoop;
      for (let attempt = 0; attempt < 50 && !closed; attempt++) {
        if (reopen()) return;
        await new Promise((r) => setTimeout(r, 10));
      }
      // Still not had (another process took the port in the moment it was
      // free, or the descriptors ran out then): handshakes fail at once
      // meanwhile ("not listening"), and the port is tried again every
      // second until it is had. Given up here, the engine stayed closed
      // until a restart, every STARTTLS failing.
      void (async () => {
        while (!closed && !listener) {
          await new Promise((r) => setTimeout(r, REOPEN_RETRY_MS));
          if (!closed && !listener) reopen();
        }
      })();
    })();
  };
  const maybeSwap = () => {
    if (next && connecting === 0 && waiting.size === 0) swapNow();
  };
  return {
    address,
    serve(p) {
      if (p.cert === current.cert && p.key === current.key) {
        next = undefined;
        return;
      }
      next = p;
      maybeSwap();
      if (next) swapTimer ??= setTimeout(swapNow, SWAP_WAIT_MS);
    },
    async connect(failed) {
      connecting++;
      try {
        await ready;
        if (closed || !listener) throw new Error("the TLS engine is not listening");
        let relay: Deno.TcpConn | undefined;
        for (let tries = 0; !relay; tries++) {
          const opening = room.connect({ hostname: address.hostname, port: address.port });
          relay = await Promise.race([opening, failed]).catch(async (e) => {
            // Given up first: the relay is closed once open.
            opening.then(closeQuietly, () => {});
            // No descriptor free: an idle connection gives its own, and the
            // connect is tried again.
            if (
              tries < CONNECT_ROOM_TRIES && resourceShortage(e) !== undefined && room.makeRoom &&
              await Promise.race([room.makeRoom(e).catch(() => false), failed])
            ) {
              await Promise.race([new Promise((r) => setTimeout(r, 10)), failed]);
              return undefined;
            }
            throw e;
          });
        }
        try {
          relay.setNoDelay(true);
        } catch { /* not fatal */ }
        const mine = relay.localAddr as Deno.NetAddr;
        const key = `${mine.hostname}:${mine.port}`;
        const here = early.get(key);
        early.delete(key);
        const accepted = here
          ? Promise.resolve(here)
          : new Promise<Deno.TlsConn>((resolve) => waiting.set(key, resolve));
        // Given up with the handshake: no longer waited for.
        failed.catch(() => {
          waiting.delete(key);
          maybeSwap();
        });
        void accepted.then(() => maybeSwap());
        return { relay, accepted };
      } finally {
        connecting--;
        maybeSwap();
      }
    },
    close() {
      closed = true;
      clearTimeout(swapTimer);
      closeQuietly(listener);
    },
  };
}

/**
 * Opens a thread's engine.
 * @param at the loopback address and port (0: any free port)
 * @param pem the chain and key
 * @param listen opens the TLS listener
 * @param ecdsa a second chain (ECDSA, smtpd_tls_eccert_file) and the port it is served on:
 *   clients that accept ECDSA signatures get it, the others the first chain
 * @param buffers the thread's reusable buffers, which the relay's come from
 * @param room makeRoom: frees a descriptor when none is (see MakeRoom); connect: opens a relay
 * @returns the engine, listening
 * @throws when a port cannot be had (in use, or not permitted)
 */
export function openTlsEngine(
  at: { hostname: string; port: number },
  pem: TlsPem,
  listen: ListenTls = (o) => Deno.listenTls(o),
  ecdsa?: { port: number; pem: TlsPem },
  buffers: IoBuffers = new IoBuffers(),
  room: { makeRoom?: MakeRoom; connect?: ConnectTcp } = {},
): TlsEngine {
  const doorRoom = { ...room, connect: room.connect ?? ((o) => Deno.connect(o)) };
  const main = openDoor(at, pem, listen, doorRoom);
  const ec = ecdsa
    ? openSecond(main, () => openDoor({ ...at, port: ecdsa.port }, ecdsa.pem, listen, doorRoom))
    : undefined;

  const handshake = async (conn: ByteConn, pem: TlsPem, timeoutMs: number, ecPem?: TlsPem) => {
    main.serve(pem);
    if (ec && ecPem) ec.serve(ecPem);
    let fail: (e: Error) => void = () => {};
    let over = false;
    const failed = new Promise<never>((_, reject) => (fail = reject));
    failed.catch(() => {});
    const timer = setTimeout(
      () => fail(new TlsHandshakeError("timeout", "Connection timed out")),
      timeoutMs,
    );
    let relay: Deno.TcpConn | undefined;
    let accepted: Promise<Deno.TlsConn> | undefined;
    let tls: Deno.TlsConn | undefined;
    let info: TlsInfo | undefined;
    try {
      // With two chains, the ClientHello says which one the client takes.
      let first: Uint8Array | undefined;
      let door = main;
      if (ec) {
        const hello = await Promise.race([
          readClientHello(conn, ecPem ? await keySchemes(ecPem.key) : undefined),
          failed,
        ]);
        if (hello === null) throw new TlsHandshakeError("lost", "lost connection");
        first = hello.bytes;
        if (hello.ecdsa) door = ec;
      }
      const opened = await door.connect(failed);
      relay = opened.relay;
      accepted = opened.accepted;
      const engineSide = relay;
      // Both pumps end by closing both sides: once is enough (a second
      // close costs a thrown BadResource error).
      let bothClosed = false;
      const closeBoth = () => {
        if (bothClosed) return;
        bothClosed = true;
        closeQuietly(conn);
        closeQuietly(engineSide);
      };
      const drain = deferredTimer(closeBoth);
      // Client to engine: its end is passed on, after its last bytes, and the
      // engine sees it in turn (a client may send its Finished, commands and
      // its end at once: the handshake completes and the commands are
      // answered, as Postfix does; an end before the handshake is done fails
      // it as a lost connection). A client whose connection fails (a reset)
      // is gone, and the session learns it at once, as on a plain connection.
      void (async () => {
        if (first) await writeAll(engineSide, first);
        return await pump(buffers, conn, engineSide);
      })().catch(() => "destination failed" as const).then((end) => {
        if (end === "end") return;
        // After the handshake, only the connections need closing.
        if (!over) fail(new TlsHandshakeError("lost", "lost connection"));
        if (end === "source failed") {
          drain.stop();
          closeBoth();
        }
      });
      // Engine to client, reading the ServerHello on the way; its end closes both.
      void pump(buffers, engineSide, conn, (facts) => (info = facts)).then(() => {
        drain.stop();
        closeBoth();
      });
      tls = await Promise.race([opened.accepted, failed]);
      await Promise.race([tls.handshake(), failed]);
      const secure = tls;
      let closed = false;
      return {
        info: info ?? { protocol: "unknown", cipher: "unknown", bits: 0 },
        read: (p: Uint8Array) => secure.read(p).catch(lostOnTlsError),
        write: (p: Uint8Array) => secure.write(p).catch(lostOnTlsError),
        close() {
          if (closed) return;
          closed = true;
          closeQuietly(secure);
          drain.start(DRAIN_MS);
        },
      };
    } catch (err) {
      for (const c of [tls, relay, conn]) closeQuietly(c);
      // The accept may come in the same turn as the failure, after it.
      if (!tls) accepted?.then(closeQuietly);
      if (err instanceof TlsHandshakeError) throw err;
      const message = (err as Error)?.message ?? String(err);
      if (
        err instanceof Deno.errors.UnexpectedEof ||
        /eof|end of file|reset|broken pipe|connection closed/i.test(message)
      ) {
        throw new TlsHandshakeError("lost", "lost connection");
      }
      throw new TlsHandshakeError("protocol", message);
    } finally {
      clearTimeout(timer);
      over = true;
      fail(HANDSHAKE_OVER); // settles the waits above
    }
  };

  return {
    address: main.address,
    handshake,
    close() {
      main.close();
      ec?.close();
    },
  };
}

/** Opens a second door; the first is closed when that fails. */
function openSecond(first: Door, open: () => Door): Door {
  try {
    return open();
  } catch (e) {
    first.close();
    throw e;
  }
}

/**
 * Reads the client's first record (its ClientHello), to choose a chain.
 * Every read goes into the part of one buffer not yet filled: a client that
 * sends its ClientHello a byte at a time costs a read per byte, not a copy
 * of all it sent so far (16 KiB sent that way was 134 MB of copying).
 * @param conn the client's connection
 * @param schemes the ECDSA key's signature schemes (see clientTakesEcdsa)
 * @returns its bytes and whether it takes ECDSA; null when the client left first
 */
export async function readClientHello(
  conn: Pick<ByteConn, "read">,
  schemes?: ReadonlySet<number>,
): Promise<{ bytes: Uint8Array; ecdsa: boolean } | null> {
  const buf = new Uint8Array(CLIENT_HELLO_LIMIT);
  let seen = 0;
  for (;;) {
    const n = await conn.read(buf.subarray(seen));
    if (n === null) return null;
    seen += n;
    const bytes = buf.subarray(0, seen);
    const says = clientTakesEcdsa(bytes, schemes);
    if (says !== "more") return { bytes, ecdsa: says === true };
    // A record longer than the limit is not a ClientHello: the TLS stack refuses it.
    if (seen >= CLIENT_HELLO_LIMIT) return { bytes, ecdsa: false };
  }
}

/** The last ECDSA key asked about and its schemes (a reload may bring another). */
let lastKey: { pem: string; schemes: ReadonlySet<number> } | undefined;

/**
 * The signature schemes the ECDSA chain's key signs with: its curve's
 * only (rustls signs with no other), so that a client that lists ECDSA
 * schemes of other curves gets the RSA chain, as from OpenSSL.
 * @param pem the key, PEM
 * @returns its schemes (every ECDSA one when its curve cannot be read)
 */
async function keySchemes(pem: string): Promise<ReadonlySet<number>> {
  if (lastKey?.pem === pem) return lastKey.schemes;
  let curve: string | undefined;
  try {
    // Loaded here, not with the module: only a server with an ECDSA chain
    // needs it (and has loaded it already, to check the chain).
    const { createPrivateKey } = await import("node:crypto");
    curve = createPrivateKey(pem).asymmetricKeyDetails?.namedCurve;
  } catch { /* checked at start and reload: not here */ }
  lastKey = { pem, schemes: ecdsaSchemesOf(curve) };
  return lastKey.schemes;
}

/**
 * A TLS failure on an established connection (a fatal alert from the
 * client, a record that does not decrypt, a refused renegotiation, an end
 * without close_notify) is the client's doing: the session sees a lost
 * connection, as on a plain connection and with node:tls, not a failure of
 * ours (an error with its stack, and a notice of software problems to the
 * postmaster for every such client).
 */
function lostOnTlsError(err: unknown): never {
  if (err instanceof Deno.errors.InvalidData || err instanceof Deno.errors.UnexpectedEof) {
    throw new Deno.errors.ConnectionReset(`lost connection: ${(err as Error).message}`);
  }
  throw err;
}

function closeQuietly(c: { close(): void } | undefined): void {
  try {
    c?.close();
  } catch { /* closed */ }
}

/** The relay's read size: a whole TLS record. */
const RELAY_BUFFER = 16384;

/**
 * Copies one direction until its end; the destination is half-closed then.
 * Its buffer is taken from, and given back to, the thread's reusable
 * buffers: a buffer per session would live as long as the session, past
 * young collections, and its 16 KiB outside the heap would be freed only
 * by a full collection (under load, one every few dozen sessions).
 * @returns "end" when the source ended, or which side failed
 */
async function pump(
  buffers: IoBuffers,
  from: ByteConn,
  to: ByteConn,
  onServerHello?: (info: TlsInfo) => void,
): Promise<"end" | "source failed" | "destination failed"> {
  const buf = buffers.take(RELAY_BUFFER);
  try {
    return await copy(buf, from, to, onServerHello);
  } finally {
    // No read or write holds it now: each was awaited to its end.
    buffers.giveBack(buf);
  }
}

async function copy(
  buf: Uint8Array,
  from: ByteConn,
  to: ByteConn,
  onServerHello?: (info: TlsInfo) => void,
): Promise<"end" | "source failed" | "destination failed"> {
  let hello: Uint8Array | undefined = onServerHello ? new Uint8Array(0) : undefined;
  try {
    for (;;) {
      let n: number | null;
      try {
        n = await from.read(buf);
      } catch {
        return "source failed";
      }
      if (n === null) break;
      // Written here rather than through writeAll: one async call fewer per
      // chunk, and no view when the chunk fills the buffer.
      for (let off = 0; off < n;) {
        off += await to.write(off === 0 && n === buf.length ? buf : buf.subarray(off, n));
      }
      if (hello && onServerHello) {
        const seen = new Uint8Array(Math.min(hello.length + n, SERVER_HELLO_LIMIT));
        seen.set(hello.subarray(0, seen.length));
        seen.set(buf.subarray(0, seen.length - hello.length), hello.length);
        const facts = parseServerHello(seen);
        if (facts === "more" && seen.length < SERVER_HELLO_LIMIT) hello = seen;
        else {
          hello = undefined;
          if (facts && facts !== "more") onServerHello(facts);
        }
      }
    }
  } catch {
    return "destination failed";
  }
  try {
    await to.closeWrite();
  } catch { /* closed */ }
  return "end";
}

/** A timer armed later, and stopped when what it guards ends first. */
function deferredTimer(fire: () => void): { start(ms: number): void; stop(): void } {
  let t: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  return {
    start(ms) {
      if (!stopped && t === undefined) t = setTimeout(fire, ms);
    },
    stop() {
      stopped = true;
      clearTimeout(t);
    },
  };
}
