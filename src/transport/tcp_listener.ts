/**
 * Daemon mode's listener: accepts TCP connections on each configured
 * address and runs one session per connection until told to stop.
 *
 * @module
 */

import type { AddressInfo, Server } from "node:net";
import type { SecureContext } from "node:tls";
import type { Transport } from "./types.ts";

/** A host:port pair from smtpd_listen. */
export interface ListenAddress {
  readonly hostname: string;
  readonly port: number;
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

function tcpTransport(conn: Deno.TcpConn): Transport {
  const remote = conn.remoteAddr;
  return {
    peer: { kind: "network", address: remote.hostname, port: String(remote.port), name: "unknown" },
    read: (p) => conn.read(p),
    write: (p) => conn.write(p),
    close: () => {
      try {
        conn.close();
      } catch { /* already closed */ }
    },
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
}

/**
 * Listens on every address and hands each connection to `onTransport`.
 * @param addresses where to listen
 * @param onTransport runs one session; errors are the caller's to log
 * @param options reusePort: share the ports with other listener threads (SO_REUSEPORT)
 * @returns the server handle
 */
export function serveTcp(
  addresses: readonly ListenAddress[],
  onTransport: (t: Transport) => Promise<void>,
  options: { reusePort?: boolean } = {},
): TcpServer {
  const listeners = addresses.map((a) =>
    Deno.listen({
      hostname: a.hostname,
      port: a.port,
      transport: "tcp",
      ...(options.reusePort ? { reusePort: true } : {}),
    })
  );
  const loops = listeners.map(async (listener) => {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) {
          return;
        }
        continue; // e.g. EMFILE: keep serving
      }
      try {
        conn.setNoDelay(true);
      } catch { /* not fatal */ }
      void onTransport(tcpTransport(conn));
    }
  });
  return {
    addresses: listeners.map((l) => l.addr),
    close: () => {
      for (const l of listeners) {
        try {
          l.close();
        } catch { /* closed */ }
      }
    },
    finished: Promise.all(loops).then(() => {}),
  };
}

/**
 * Like {@linkcode serveTcp}, on node:net sockets, so that sessions can
 * upgrade to TLS with STARTTLS.
 * @param addresses where to listen
 * @param tls the server's TLS context
 * @param onTransport runs one session
 * @returns the server handle, once listening
 */
export async function serveNodeTcp(
  addresses: readonly ListenAddress[],
  tls: SecureContext,
  onTransport: (t: Transport) => Promise<void>,
): Promise<TcpServer> {
  // Loaded here, not at start-up: node:net and node:tls cost every isolate
  // a few MiB, and only a STARTTLS listener needs them.
  const { createServer } = await import("node:net");
  const { nodeTransport } = await import("./node_socket.ts");
  const servers: Server[] = [];
  const bound: Deno.NetAddr[] = [];
  for (const a of addresses) {
    const server = createServer({ pauseOnConnect: false, noDelay: true }, (socket) => {
      const peer = {
        kind: "network" as const,
        address: (socket.remoteAddress ?? "").replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1"),
        port: String(socket.remotePort ?? 0),
        name: "unknown",
      };
      void onTransport(nodeTransport(socket, peer, tls));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(a.port, a.hostname, () => resolve());
    });
    const addr = server.address() as AddressInfo;
    bound.push({ transport: "tcp", hostname: addr.address, port: addr.port });
    servers.push(server);
  }
  let finish: () => void = () => {};
  const finished = new Promise<void>((r) => (finish = r));
  return {
    addresses: bound,
    close: () => {
      for (const s of servers) s.close();
      finish();
    },
    finished,
  };
}
