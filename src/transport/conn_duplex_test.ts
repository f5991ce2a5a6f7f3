import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connDuplex } from "./conn_duplex.ts";

Deno.test("connDuplex: bytes both ways, end() half-closes, destroy() closes the connection", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const accepted = listener.accept();
    const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    const stream = connDuplex(await accepted);
    const got: Uint8Array[] = [];
    const ended = new Promise<void>((r) => stream.on("end", () => r()));
    stream.on("data", (b: Uint8Array) => got.push(b));
    await client.write(new TextEncoder().encode("EHLO x\r\n"));
    client.closeWrite();
    await ended;
    assert.equal(new TextDecoder().decode(Buffer.concat(got)), "EHLO x\r\n");
    await new Promise<void>((r) => stream.end("250 ok\r\n", () => r()));
    const buf = new Uint8Array(64);
    const n = await client.read(buf);
    assert.equal(new TextDecoder().decode(buf.subarray(0, n ?? 0)), "250 ok\r\n");
    assert.equal(await client.read(buf), null, "end() sent FIN");
    stream.destroy();
    client.close();
  } finally {
    listener.close();
  }
});

Deno.test("connDuplex: a chunk holds only the bytes read, not a whole read buffer (one byte per read)", async () => {
  // A client that sends one byte per segment: each read returns one byte.
  let left = 200;
  const conn = {
    read(p: Uint8Array) {
      if (left === 0) return Promise.resolve(null);
      left--;
      p[0] = 0x41;
      return Promise.resolve(1);
    },
    write: (p: Uint8Array) => Promise.resolve(p.length),
    closeWrite: () => Promise.resolve(),
    close() {},
  };
  const stream = connDuplex(conn);
  const chunks: Uint8Array[] = [];
  const ended = new Promise<void>((r) => stream.on("end", () => r()));
  stream.on("data", (b: Uint8Array) => chunks.push(b));
  await ended;
  assert.equal(chunks.reduce((n, c) => n + c.length, 0), 200);
  const held = chunks.reduce((n, c) => n + c.buffer.byteLength, 0);
  // Node's Buffer may share a pool slab between small chunks; what must
  // not happen is 16 KiB of backing store per byte (3.2 MB here).
  assert.ok(held <= 200 * 64, `the chunks keep ${held} bytes alive for 200 bytes read`);
  stream.destroy();
});

Deno.test("connDuplex: chunks the consumer has not read yet keep their bytes (the read buffer is reused)", async () => {
  // Each read fills the buffer it is given with its own byte value.
  let reads = 0;
  const conn = {
    read(p: Uint8Array) {
      if (reads === 100) return Promise.resolve(null);
      reads++;
      p.fill(reads, 0, 3);
      return Promise.resolve(3);
    },
    write: (p: Uint8Array) => Promise.resolve(p.length),
    closeWrite: () => Promise.resolve(),
    close() {},
  };
  const stream = connDuplex(conn);
  // Paused: the chunks stay in the stream's buffer while every read runs.
  const ended = new Promise<void>((r) => stream.on("end", () => r()));
  stream.on("readable", () => {});
  for (let i = 0; i < 50 && reads < 100; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(reads, 100);
  const seen: number[] = [];
  for (let c: Uint8Array | null; (c = stream.read()) !== null;) seen.push(...c);
  await ended;
  assert.deepEqual(seen, Array.from({ length: 100 }, (_, i) => [i + 1, i + 1, i + 1]).flat());
  stream.destroy();
});
