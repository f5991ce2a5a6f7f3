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
import type { PeerInfo, TlsInfo, Transport } from "./types.ts";

function bitsOf(cipher: string): number {
  if (/AES_256|AES256|CHACHA20/i.test(cipher)) return 256;
  if (/AES_128|AES128/i.test(cipher)) return 128;
  return 0;
}

/**
 * Wraps a connected socket.
 * @param socket the socket (plain or TLS)
 * @param peer who is at the other end
 * @param tls a TLS context for STARTTLS, if offered
 * @returns the transport
 */
export function nodeTransport(socket: Socket, peer: PeerInfo, tls?: SecureContext): Transport {
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
    socket.pause();
    wake();
  };
  const onEnd = () => {
    ended = true;
    wake();
  };
  const onError = (e: Error) => {
    failed = e;
    ended = true;
    wake();
  };
  socket.on("data", onData);
  socket.on("end", onEnd);
  socket.on("close", onEnd);
  socket.on("error", onError);
  const detach = () => {
    socket.off("data", onData);
    socket.off("end", onEnd);
    socket.off("close", onEnd);
    socket.off("error", onError);
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
      if (chunks.length === 0) socket.resume();
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
      socket.destroy();
    },
    startTls: tls
      ? async () => {
        detach();
        chunks.length = 0; // RFC 3207 §6: plaintext sent before the handshake is discarded
        const secure = new TLSSocket(socket, { isServer: true, secureContext: tls });
        await new Promise<void>((resolve, reject) => {
          secure.once("secure", () => resolve());
          secure.once("error", reject);
          secure.once("close", () => reject(new Error("connection closed during TLS handshake")));
        });
        return nodeTransport(secure, peer);
      }
      : undefined,
  };
  return t;
}

function tlsInfo(s: TLSSocket): TlsInfo {
  const c = s.getCipher();
  const name = c?.standardName ?? c?.name ?? "unknown";
  return { protocol: s.getProtocol() ?? "unknown", cipher: name, bits: bitsOf(name) };
}
