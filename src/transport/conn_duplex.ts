/**
 * A node:stream Duplex over a Deno.TcpConn, so that node:tls can run the
 * server side of STARTTLS on a connection that Deno.listen accepted.
 * (node:net's own listener stops accepting for good after one EMFILE, with
 * no event; Deno.listen reports each failure, so one accept loop with
 * backoff serves both kinds of listener.)
 *
 * @module
 */

import { Duplex } from "node:stream";

/** The most read from the connection at once: a whole TLS record. */
const READ_SIZE = 16384;

/** What the stream needs of a connection (a Deno.TcpConn, or a watched one). */
export interface ByteConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  closeWrite(): Promise<void>;
  close(): void;
}

/** Stops and restarts reading from the connection (as libuv's uv_read_stop/uv_read_start). */
export interface ReadSwitch {
  readStop(): void;
  readStart(): void;
}

/**
 * Wraps a connection: reads while the stream wants data (back-pressure),
 * writes in order, end() half-closes, destroy() closes the connection.
 * Its `readSwitch` stops reading from the connection altogether: node:tls
 * over this stream reads on while the TLS socket is paused, so a session
 * that does not read stops the reads here (see node_socket.ts).
 * @param conn the accepted connection
 * @returns the stream
 */
export function connDuplex(conn: ByteConn): Duplex & { readSwitch: ReadSwitch } {
  // One read buffer per connection, and each push a copy of just the bytes
  // read: a fresh 16 KiB per read made a client that sends one byte per
  // segment cost 16 KiB of allocation per byte, and a chunk held in the
  // stream's buffer kept all 16 KiB alive for its one byte.
  let buf: Uint8Array | undefined;
  let reading = false;
  let held = false;
  let release: (() => void) | undefined;
  const readSwitch: ReadSwitch = {
    readStop() {
      held = true;
    },
    readStart() {
      held = false;
      const r = release;
      release = undefined;
      r?.();
    },
  };
  const stream: Duplex = new Duplex({
    read() {
      if (reading) return;
      reading = true;
      void (async () => {
        try {
          for (;;) {
            while (held) await new Promise<void>((r) => (release = r));
            buf ??= new Uint8Array(READ_SIZE);
            const n = await conn.read(buf);
            if (n === null) {
              stream.push(null);
              return;
            }
            if (!stream.push(buf.slice(0, n))) return;
          }
        } catch (e) {
          stream.destroy(e as Error);
        } finally {
          reading = false;
        }
      })();
    },
    write(chunk: Uint8Array, _encoding, done) {
      void (async () => {
        let off = 0;
        while (off < chunk.length) off += await conn.write(chunk.subarray(off));
      })().then(() => done(), (e) => done(e as Error));
    },
    final(done) {
      try {
        void conn.closeWrite().catch(() => {});
      } catch { /* already closed */ }
      done();
    },
    destroy(err, done) {
      try {
        conn.close();
      } catch { /* already closed */ }
      done(err);
    },
  });
  return Object.assign(stream, { readSwitch });
}
