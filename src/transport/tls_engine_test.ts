import assert from "node:assert/strict";
import { join } from "node:path";
import { openTlsEngine, type TlsEngine, type TlsPem, type TlsStream } from "./tls_engine.ts";
import { TlsHandshakeError } from "./types.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function openssl(args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}

/** A CA and a "localhost" certificate it signed. */
async function chain(dir: string, name: string): Promise<{ ca: string; pem: TlsPem }> {
  const f = (x: string) => join(dir, `${name}.${x}`);
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    f("ca.key"),
    "-out",
    f("ca.pem"),
    "-days",
    "2",
    "-subj",
    `/CN=${name} CA`,
  ]);
  await openssl([
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    f("key"),
    "-out",
    f("csr"),
    "-subj",
    "/CN=localhost",
  ]);
  await Deno.writeTextFile(f("ext"), "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n");
  await openssl([
    "x509",
    "-req",
    "-in",
    f("csr"),
    "-CA",
    f("ca.pem"),
    "-CAkey",
    f("ca.key"),
    "-CAcreateserial",
    "-out",
    f("pem"),
    "-days",
    "2",
    "-extfile",
    f("ext"),
  ]);
  return {
    ca: await Deno.readTextFile(f("ca.pem")),
    pem: { cert: await Deno.readTextFile(f("pem")), key: await Deno.readTextFile(f("key")) },
  };
}

/** A plain listener; each test's client connects to it, the server side goes to the engine. */
function plainPair(): { port: number; next: () => Promise<Deno.TcpConn>; close: () => void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return { port: (l.addr as Deno.NetAddr).port, next: () => l.accept(), close: () => l.close() };
}

async function readAll(c: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(1024);
  let text = "";
  for (;;) {
    const n = await c.read(buf).catch(() => null);
    if (n === null) return text;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
}

/** What each test gets: a chain "a", an engine serving it, and a plain listener for clients. */
interface Setup {
  dir: string;
  a: { ca: string; pem: TlsPem };
  engine: TlsEngine;
  plain: ReturnType<typeof plainPair>;
}

function engineTest(name: string, body: (t: Setup) => Promise<void>): void {
  Deno.test({
    name,
    ...opts,
    fn: async () => {
      const dir = await Deno.makeTempDir();
      const a = await chain(dir, "a");
      const engine = openTlsEngine({ hostname: "127.0.0.1", port: 0 }, a.pem);
      const plain = plainPair();
      try {
        await body({ dir, a, engine, plain });
      } finally {
        engine.close();
        plain.close();
      }
    },
  });
}

/** A client through the plain listener, and both ends of its TLS session. */
async function session(
  t: Setup,
  pem = t.a.pem,
  ca = t.a.ca,
): Promise<{ s: TlsStream; c: Deno.TlsConn }> {
  const client = await Deno.connect({ hostname: "127.0.0.1", port: t.plain.port });
  const [s, c] = await Promise.all([
    t.engine.handshake(await t.plain.next(), pem, 5000),
    Deno.startTls(client, { hostname: "localhost", caCerts: [ca] }),
  ]);
  return { s, c };
}

engineTest(
  "a handshake through the engine: data both ways, the protocol and cipher from the ServerHello",
  async (t) => {
    const { s, c } = await session(t);
    assert.equal(s.info.protocol, "TLSv1.3");
    assert.match(s.info.cipher, /^TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)$/);
    await c.write(new TextEncoder().encode("EHLO x\r\n"));
    const buf = new Uint8Array(64);
    const n = await s.read(buf);
    assert.equal(new TextDecoder().decode(buf.subarray(0, n ?? 0)), "EHLO x\r\n");
    // What the session writes last reaches the client before the close.
    await s.write(new TextEncoder().encode("221 2.0.0 Bye\r\n"));
    s.close();
    assert.equal(await readAll(c), "221 2.0.0 Bye\r\n");
    c.close();
  },
);

engineTest(
  "a new chain (a reload) is served to the next handshake; the old one no more",
  async (t) => {
    const b = await chain(t.dir, "b");
    const attempt = async (pem: TlsPem, ca: string) => {
      try {
        const { s, c } = await session(t, pem, ca);
        await c.handshake();
        s.close();
        c.close();
        return true;
      } catch {
        return false;
      }
    };
    assert.equal(await attempt(t.a.pem, t.a.ca), true);
    assert.equal(await attempt(b.pem, b.ca), true, "the new chain was not served");
    assert.equal(await attempt(b.pem, t.a.ca), false, "the old chain was still served");
  },
);

engineTest(
  "a client silent after STARTTLS fails with timeout; one that leaves fails with lost, at once",
  async ({ a, engine, plain }) => {
    const silent = await Deno.connect({ hostname: "127.0.0.1", port: plain.port });
    const t0 = Date.now();
    const err = await engine.handshake(await plain.next(), a.pem, 300).catch((e) => e);
    assert.ok(err instanceof TlsHandshakeError && err.why === "timeout", String(err));
    assert.ok(Date.now() - t0 < 2000);
    // The server closed the client's connection.
    assert.equal(await readAll(silent), "");
    silent.close();

    const leaving = await Deno.connect({ hostname: "127.0.0.1", port: plain.port });
    const server = await plain.next();
    const t1 = Date.now();
    const pending = engine.handshake(server, a.pem, 60_000).catch((e) => e);
    leaving.close();
    const lost = await pending;
    assert.ok(lost instanceof TlsHandshakeError && lost.why === "lost", String(lost));
    assert.ok(Date.now() - t1 < 2000, `took ${Date.now() - t1} ms`);

    const garbage = await Deno.connect({ hostname: "127.0.0.1", port: plain.port });
    const gs = await plain.next();
    const g = engine.handshake(gs, a.pem, 60_000).catch((e) => e);
    await garbage.write(new TextEncoder().encode("MAIL FROM:<a@b>\r\n".repeat(20)));
    const refused = await g;
    assert.ok(refused instanceof TlsHandshakeError, String(refused));
    assert.notEqual(refused.why, "timeout");
    garbage.close();
  },
);

engineTest(
  "connections to the engine's port that no relay opened: sessions go on; one that sends garbage is closed",
  async (t) => {
    // Other local processes talk to the engine directly.
    const silent = await Deno.connect({ hostname: "127.0.0.1", port: t.engine.address.port });
    const noisy = await Deno.connect({ hostname: "127.0.0.1", port: t.engine.address.port });
    try {
      await noisy.write(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
      const t0 = Date.now();
      const noisyDone = readAll(noisy);
      // A real session meanwhile.
      const { s, c } = await session(t);
      await c.write(new TextEncoder().encode("x"));
      assert.equal(await s.read(new Uint8Array(4)), 1);
      s.close();
      c.close();
      // The one that sent garbage is closed once it is seen to be nobody's (2 s).
      await noisyDone;
      assert.ok(Date.now() - t0 < 5000, `the stray connection lived ${Date.now() - t0} ms`);
    } finally {
      silent.close();
      noisy.close();
    }
  },
);

engineTest("the engine's port in use: opening fails (the start reports it)", (t) => {
  assert.throws(() =>
    openTlsEngine({ hostname: "127.0.0.1", port: t.engine.address.port }, t.a.pem)
  );
  return Promise.resolve();
});
