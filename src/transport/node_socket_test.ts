import assert from "node:assert/strict";
import { createServer, type Server, type Socket } from "node:net";
import { createSecureContext } from "node:tls";
import { nodeTransport } from "./node_socket.ts";
import { TlsHandshakeError, type Transport } from "./types.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/**
 * A loopback server whose first connection becomes a transport, and a raw
 * Deno client connected to it.
 */
async function pair(): Promise<{ server: Server; transport: Transport; client: Deno.TcpConn }> {
  // No certificate: these handshakes fail before one would be needed.
  const tls = createSecureContext({});
  let accepted: (s: Socket) => void = () => {};
  const socket = new Promise<Socket>((r) => (accepted = r));
  const server = createServer((s) => accepted(s));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  const client = await Deno.connect({ hostname: "127.0.0.1", port });
  const transport = nodeTransport(await socket, { kind: "local" }, { context: tls });
  return { server, transport, client };
}

/** Reads until the connection ends; true when it did within the time. */
async function closes(client: Deno.TcpConn, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  const buf = new Uint8Array(4096);
  while (Date.now() < end) {
    const n = await client.read(buf).catch(() => null);
    if (n === null) return true;
  }
  return false;
}

/** The handshake's error; fails the test if it has none within 5 s. */
async function failure(p: Promise<unknown>): Promise<TlsHandshakeError> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("the handshake was still pending after 5 s")), 5000);
  });
  try {
    await Promise.race([p, stuck]);
  } catch (err) {
    if (!(err instanceof TlsHandshakeError)) throw err;
    return err;
  } finally {
    clearTimeout(timer);
  }
  throw new Error("the handshake succeeded");
}

Deno.test({
  name: "startTls() gives up after timeoutMs when the client never starts the handshake",
  ...opts,
  fn: async () => {
    const { server, transport, client } = await pair();
    try {
      const t0 = Date.now();
      const err = await failure(transport.startTls!(200));
      const ms = Date.now() - t0;
      assert.equal(err.why, "timeout");
      assert.equal(err.message, "Connection timed out");
      assert.ok(ms >= 150 && ms < 4000, `gave up after ${ms} ms`);
      assert.ok(await closes(client, 2000), "the connection was closed");
    } finally {
      client.close();
      server.close();
    }
  },
});

Deno.test({
  name: "startTls() fails at once on bytes that are not TLS, and closes the connection",
  ...opts,
  fn: async () => {
    const { server, transport, client } = await pair();
    try {
      const pending = failure(transport.startTls!(10_000));
      await client.write(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
      const t0 = Date.now();
      const err = await pending;
      assert.equal(err.why, "protocol");
      // At once, not at the handshake's 10 s (room for a loaded host).
      assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
      assert.ok(await closes(client, 2000), "the connection was closed");
    } finally {
      client.close();
      server.close();
    }
  },
});

Deno.test({
  name: "startTls() reports a client that leaves during the handshake as a lost connection",
  ...opts,
  fn: async () => {
    const { server, transport, client } = await pair();
    try {
      const pending = failure(transport.startTls!(10_000));
      await client.write(new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00])); // a record header only
      client.close();
      const err = await pending;
      assert.equal(err.why, "lost");
    } finally {
      server.close();
    }
  },
});
