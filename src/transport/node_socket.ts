/**
 * A {@linkcode Transport} over a node:net socket, used when STARTTLS is
 * offered: Deno.listen has no server-side TLS upgrade, node:tls has
 * (RFC 3207). Reads are queued from "data" events with back-pressure
 * (pause when a chunk waits unread).
 *
 * @module
 */

import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import type { SecureContext } from "node:tls";
import type { TlsPem } from "./tls_engine.ts";
import { type ByteConn, connDuplex } from "./conn_duplex.ts";
import { suiteByIanaName } from "./server_hello.ts";
import { type PeerInfo, TlsHandshakeError, type TlsInfo, type Transport } from "./types.ts";

/** A server's TLS context, and the contexts it serves for SNI names (tls_server_sni_maps). */
export interface ServerTls {
  readonly context: SecureContext;
  readonly sni?: (name: string) => SecureContext | undefined;
  /** The chain and key, for the TLS engine (tls_engine.ts) when it serves them. */
  readonly pem?: TlsPem;
  /** The engine's ECDSA chain (smtpd_tls_eccert_file), when there is one. */
  readonly ecPem?: TlsPem;
}

/** The longest a TLS session's close_notify may take to go out before its sockets are closed. */
const CLOSE_NOTIFY_MS = 1000;

function bitsOf(cipher: string): number {
  if (/AES_256|AES256|CHACHA20/i.test(cipher)) return 256;
  if (/AES_128|AES128/i.test(cipher)) return 128;
  return 0;
}

/** The read switch of a socket's stream handle (libuv's uv_read_start/uv_read_stop). */
interface ReadSwitch {
  readStart?: () => unknown;
  readStop?: () => unknown;
}

/**
 * Back-pressure for a socket: pause() stops reading from the network.
 * For a TLS socket, pausing it is not enough: Deno's node:tls goes on
 * reading ciphertext from the TCP socket underneath and keeps it in memory,
 * so a client that sends without end (and does not read its replies) would
 * grow the process without bound. The TCP handle's own reads are stopped too.
 */
function flowControl(socket: Socket, under?: Socket): { pause(): void; resume(): void } {
  // A TCP socket's handle, or the read switch of a stream over a Deno
  // connection (conn_duplex.ts).
  const below = under as unknown as { _handle?: ReadSwitch; readSwitch?: ReadSwitch } | undefined;
  const handle = below?.readSwitch ?? below?._handle;
  let stopped = false;
  return {
    pause() {
      socket.pause();
      if (!stopped && handle?.readStop) {
        stopped = true;
        try {
          handle.readStop();
        } catch { /* closed */ }
      }
    },
    resume() {
      if (stopped) {
        stopped = false;
        try {
          handle?.readStart?.();
        } catch { /* closed */ }
      }
      socket.resume();
    },
  };
}

/**
 * Wraps a connected socket.
 * @param socket the socket (plain or TLS)
 * @param peer who is at the other end
 * @param tls a TLS context for STARTTLS, if offered
 * @param under for a TLS socket, the TCP socket it runs over
 * @returns the transport
 */
export function nodeTransport(
  socket: Socket,
  peer: PeerInfo,
  tls?: ServerTls,
  under?: Socket,
): Transport {
  const flow = flowControl(socket, under);
  const chunks: Uint8Array[] = [];
  let ended = false;
  let failed: Error | undefined;
  let waiter: (() => void) | undefined;
  const wake = () => {
    const w = waiter;
    waiter = undefined;
    w?.();
  };
  const onData = (b: Uint8Array) => {
    chunks.push(b);
    flow.pause();
    wake();
  };
  const onEnd = () => {
    ended = true;
    wake();
  };
  // A fatal alert after the handshake (a forged or corrupt record): node:tls
  // sends the alert and reports it only as "_tlsError" on a TLS socket made
  // without a tls.Server; no "error", and no "end" until the client closes.
  // The session ends there, as Postfix's does when SSL_read fails (lost
  // connection), instead of waiting for smtpd_timeout.
  let broken = false;
  const onError = (e: Error) => {
    if (broken) return;
    failed = e;
    ended = true;
    wake();
  };
  const onTlsError = () => {
    broken = true;
    failed = undefined;
    ended = true;
    wake();
  };
  socket.on("data", onData);
  socket.on("end", onEnd);
  socket.on("close", onEnd);
  socket.on("error", onError);
  if (socket instanceof TLSSocket) socket.on("_tlsError", onTlsError);
  const detach = () => {
    socket.off("data", onData);
    socket.off("end", onEnd);
    socket.off("close", onEnd);
    socket.off("error", onError);
    socket.off("_tlsError", onTlsError);
  };
  const t: Transport = {
    peer,
    tls: socket instanceof TLSSocket ? tlsInfo(socket) : undefined,
    async read(p: Uint8Array): Promise<number | null> {
      while (chunks.length === 0) {
        if (ended) {
          if (failed && !/ECONNRESET|EPIPE/.test(String(failed))) throw failed;
          return null;
        }
        await new Promise<void>((r) => {
          waiter = r;
        });
      }
      const c = chunks[0] as Uint8Array;
      const n = Math.min(c.length, p.length);
      p.set(c.subarray(0, n));
      if (n === c.length) chunks.shift();
      else chunks[0] = c.subarray(n);
      if (chunks.length === 0) flow.resume();
      return n;
    },
    write(p: Uint8Array): Promise<number> {
      return new Promise((resolve, reject) => {
        if (socket.destroyed) {
          reject(new Deno.errors.BrokenPipe("socket closed"));
          return;
        }
        socket.write(p, (err) => err ? reject(err) : resolve(p.length));
      });
    },
    close() {
      if (!(socket instanceof TLSSocket) || !under || socket.destroyed) {
        socket.destroy();
        under?.destroy();
        return;
      }
      // RFC 8446 §6.1, and Postfix's SSL_shutdown(): the session ends with
      // a close_notify alert, which end() sends; without it a client logs an
      // error for a session that went well (Exim: "The TLS connection was
      // non-properly terminated"). Both sockets go once it is written (the
      // socket underneath ends after its pending writes), at the latest
      // after CLOSE_NOTIFY_MS (a client that reads nothing).
      const gone = () => {
        clearTimeout(timer);
        socket.destroy();
        under.destroy();
      };
      const timer = setTimeout(gone, CLOSE_NOTIFY_MS);
      socket.end(() => under.end(gone));
    },
    startTls: tls
      ? async (timeoutMs: number) => {
        detach();
        chunks.length = 0; // RFC 3207 §6: plaintext sent before the handshake is discarded
        return nodeTransport(
          await serverHandshake(socket, tls, timeoutMs),
          peer,
          undefined,
          socket,
        );
      }
      : undefined,
  };
  return t;
}

/**
 * Runs the server side of the TLS handshake on a connected socket, within
 * timeoutMs (smtpd_starttls_timeout) from start to finish: a client that
 * reads the 220 and goes silent, or trickles its handshake, is cut off.
 * On any failure both sockets are destroyed before the error is thrown.
 * @param socket the plain socket, its listeners detached
 * @param tls the server's TLS context
 * @param timeoutMs the longest the whole handshake may take
 * @returns the encrypted socket
 */
async function serverHandshake(
  socket: Socket,
  tls: ServerTls,
  timeoutMs: number,
): Promise<TLSSocket> {
  // An "error" event nobody listens to ends the process: both sockets keep a
  // listener for errors that come after the outcome (a reset while closing).
  const ignore = () => {};
  socket.on("error", ignore);
  const sni = tls.sni;
  const secure = new TLSSocket(socket, {
    isServer: true,
    secureContext: tls.context,
    // An unmatched name (or none) gets the default chain.
    ...(sni
      ? {
        SNICallback: (name: string, done: (e: Error | null, c?: SecureContext) => void) =>
          done(null, sni(name) ?? tls.context),
      }
      : {}),
  });
  secure.on("error", ignore);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new TlsHandshakeError("timeout", "Connection timed out")),
        timeoutMs,
      );
      secure.once("secure", () => resolve());
      secure.once("error", (e: Error) => {
        const lost = /ECONNRESET|EPIPE|socket hang up/.test(
          String((e as { code?: string }).code ?? e),
        );
        reject(new TlsHandshakeError(lost ? "lost" : "protocol", e.message));
      });
      const lost = () => reject(new TlsHandshakeError("lost", "lost connection"));
      secure.once("close", lost);
      // The client may leave before TLS notices (node:tls over a stream does
      // not always pass the end on during the handshake): its slot must not
      // wait for smtpd_starttls_timeout.
      socket.once("end", lost);
      socket.once("close", lost);
    });
  } catch (err) {
    secure.destroy();
    socket.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return secure;
}

function tlsInfo(s: TLSSocket): TlsInfo {
  const c = s.getCipher();
  const name = c?.standardName ?? c?.name ?? "unknown";
  // Postfix logs OpenSSL's suite names (ECDHE-RSA-AES256-GCM-SHA384), as the
  // TLS engine does; node:tls gives the IANA ones.
  const known = suiteByIanaName(name);
  return {
    protocol: s.getProtocol() ?? "unknown",
    cipher: known?.name ?? name,
    bits: known?.bits ?? bitsOf(name),
  };
}

/**
 * STARTTLS (and wrapper mode) over a connection that is not a node:net
 * socket (one Deno.listen accepted, or stdin and stdout in stand-alone
 * mode): node:tls over a stream on it (conn_duplex.ts), with the handshake
 * of {@linkcode nodeTransport}.
 * @param context the TLS context to serve (read at each handshake: a reload may bring new ones)
 * @returns what runs the handshake on a connection, within timeoutMs, and
 *   gives the encrypted transport
 */
export function nodeStartTls(
  context: () => ServerTls,
): (conn: ByteConn, peer: PeerInfo, timeoutMs: number) => Promise<Transport> {
  return async (conn, peer, timeoutMs) => {
    const stream = connDuplex(conn);
    const plain = nodeTransport(stream as unknown as Socket, peer, context());
    const secure = await (plain.startTls as (ms: number) => Promise<Transport>)(timeoutMs);
    return {
      peer: secure.peer,
      get tls() {
        return secure.tls;
      },
      read: (p) => secure.read(p),
      write: (p) => secure.write(p),
      // Closes the stream underneath too, once the TLS session's close_notify is out.
      close: () => secure.close(),
    };
  };
}
