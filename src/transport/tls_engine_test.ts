import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type ListenTls,
  openTlsEngine,
  readClientHello,
  type TlsEngine,
  type TlsPem,
  type TlsStream,
} from "./tls_engine.ts";
import { TlsHandshakeError } from "./types.ts";
import type { ByteConn } from "./conn_duplex.ts";

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
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
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
    // At once, not at the handshake's timeout (room for a loaded host).
    assert.ok(Date.now() - t1 < 10_000, `took ${Date.now() - t1} ms`);

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
      // The one that sent garbage is closed once it is seen to be nobody's
      // (2 s; room for a loaded host).
      await noisyDone;
      assert.ok(Date.now() - t0 < 15_000, `the stray connection lived ${Date.now() - t0} ms`);
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

/** A client's connection whose reads can be made to fail, as when the client resets it. */
function resettable(conn: Deno.TcpConn): ByteConn & { reset(): void } {
  let reset: (e: Error) => void = () => {};
  const gone = new Promise<never>((_, reject) => (reset = reject));
  gone.catch(() => {});
  return {
    read: (p) => Promise.race([conn.read(p), gone]),
    write: (p) => conn.write(p),
    closeWrite: () => conn.closeWrite(),
    close: () => conn.close(),
    reset: () => reset(new Deno.errors.ConnectionReset("Connection reset by peer (os error 104)")),
  };
}

/**
 * Deno.listenTls with a record of every connection it accepted (closed or
 * not), and a hook run on each accept before the engine sees it.
 */
function trackedListen(
  onAccept: (c: Deno.TlsConn) => Promise<void> = () => Promise.resolve(),
): { listen: ListenTls; accepted: { closed: boolean }[] } {
  const accepted: { closed: boolean }[] = [];
  const listen: ListenTls = (o) => {
    const l = Deno.listenTls(o);
    return {
      addr: l.addr,
      close: () => l.close(),
      accept: async () => {
        const c = await l.accept();
        const record = { closed: false };
        accepted.push(record);
        const close = c.close.bind(c);
        c.close = () => {
          record.closed = true;
          close();
        };
        await onAccept(c);
        return c;
      },
    } as unknown as Deno.TlsListener;
  };
  return { listen, accepted };
}

/** Waits (at most 20 s) until every accepted connection is closed. */
async function allClosed(accepted: { closed: boolean }[]): Promise<void> {
  for (let i = 0; i < 400 && accepted.some((r) => !r.closed); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
}

engineTest(
  "a client whose connection fails after the handshake ends the session at once, not at smtpd_timeout",
  async (t) => {
    const client = await Deno.connect({ hostname: "127.0.0.1", port: t.plain.port });
    const server = resettable(await t.plain.next());
    const [s, c] = await Promise.all([
      t.engine.handshake(server, t.a.pem, 5000),
      Deno.startTls(client, { hostname: "localhost", caCerts: [t.a.ca] }),
    ]);
    await c.handshake();
    server.reset();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      s.read(new Uint8Array(64)).then(() => "ended", () => "ended"),
      new Promise((r) => (timer = setTimeout(() => r("still waiting after 10 s"), 10_000))),
    ]);
    clearTimeout(timer);
    assert.equal(outcome, "ended");
    s.close();
    c.close();
  },
);

Deno.test({
  name:
    "every connection the engine accepted is closed when its handshake fails, whatever the order of the accept and the failure",
  ...opts,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const a = await chain(dir, "a");
    const plain = plainPair();
    // The client's reset reaches the engine some turns before or after the accept.
    let turns = 0;
    let resetClient = () => {};
    const { listen, accepted } = trackedListen(async () => {
      resetClient();
      for (let i = 0; i < turns; i++) await Promise.resolve();
    });
    const engine = openTlsEngine({ hostname: "127.0.0.1", port: 0 }, a.pem, listen);
    const clients: Deno.TcpConn[] = [];
    try {
      for (turns = 0; turns < 30; turns++) {
        const client = await Deno.connect({ hostname: "127.0.0.1", port: plain.port });
        clients.push(client);
        const server = resettable(await plain.next());
        resetClient = () => server.reset();
        const err = await engine.handshake(server, a.pem, 5000).catch((e) => e);
        assert.ok(err instanceof TlsHandshakeError, String(err));
      }
      // Connections nobody claimed are closed after 2 s (and their failed
      // handshake; a loaded host may take longer).
      await new Promise((r) => setTimeout(r, 2500));
      await allClosed(accepted);
      assert.equal(accepted.length, 30);
      const open = accepted.filter((r) => !r.closed).length;
      assert.equal(open, 0, `${open} accepted connections were never closed`);
    } finally {
      for (const c of clients) c.close();
      engine.close();
      plain.close();
    }
  },
});

Deno.test({
  name: "an accept that fails (no descriptor free) does not stop the engine: later handshakes run",
  ...opts,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const a = await chain(dir, "a");
    const plain = plainPair();
    let failures = 1;
    const listen: ListenTls = (o) => {
      const l = Deno.listenTls(o);
      return {
        addr: l.addr,
        close: () => l.close(),
        accept: () =>
          failures-- > 0
            ? Promise.reject(new Error("Too many open files (os error 24)"))
            : l.accept(),
      } as unknown as Deno.TlsListener;
    };
    const engine = openTlsEngine({ hostname: "127.0.0.1", port: 0 }, a.pem, listen);
    try {
      const client = await Deno.connect({ hostname: "127.0.0.1", port: plain.port });
      const [s, c] = await Promise.all([
        engine.handshake(await plain.next(), a.pem, 5000),
        Deno.startTls(client, { hostname: "localhost", caCerts: [a.ca] }),
      ]);
      await c.write(new TextEncoder().encode("x"));
      assert.equal(await s.read(new Uint8Array(4)), 1);
      s.close();
      c.close();
    } finally {
      engine.close();
      plain.close();
    }
  },
});

Deno.test({
  name:
    "a handshake whose time is up while its relay connects (after a reload): the relay is closed once open",
  ...opts,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const a = await chain(dir, "a");
    const plain = plainPair();
    const b = await chain(dir, "b");
    const { listen, accepted } = trackedListen();
    const engine = openTlsEngine({ hostname: "127.0.0.1", port: 0 }, a.pem, listen);
    const clients: Deno.TcpConn[] = [];
    try {
      for (let i = 0; i < 60; i++) {
        clients.push(await Deno.connect({ hostname: "127.0.0.1", port: plain.port }));
        // A new chain each time: the relay connects once the listener is open again.
        const pem = i % 2 ? a.pem : b.pem;
        const err = await engine.handshake(await plain.next(), pem, 0).catch((e) => e);
        assert.ok(err instanceof TlsHandshakeError && err.why === "timeout", String(err));
      }
      // Connections nobody claimed are closed after 2 s, once their relay
      // has closed (a relay may connect after its handshake failed, and a
      // loaded host may take longer: the last accept can come late).
      await new Promise((r) => setTimeout(r, 2500));
      await allClosed(accepted);
      const open = accepted.filter((r) => !r.closed).length;
      assert.equal(open, 0, `${open} of ${accepted.length} accepted connections were never closed`);
    } finally {
      for (const c of clients) c.close();
      engine.close();
      plain.close();
    }
  },
});

Deno.test({
  name:
    "a reload whose chain change cannot reopen the port at once (taken, or no descriptor free): the engine keeps trying, and serves again once it can",
  ...opts,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const a = await chain(dir, "a");
    const b = await chain(dir, "b");
    const plain = plainPair();
    // The first listen opens; the next 100 (the quick attempts after a
    // chain change: 50, each with the new chain and the old) fail as an
    // address in use or EMFILE does; later ones open.
    let calls = 0;
    let reopened = false;
    const listen: ListenTls = (o) => {
      calls++;
      if (calls > 1 && calls <= 101) throw new Deno.errors.AddrInUse("Address already in use");
      if (calls > 1) reopened = true;
      return Deno.listenTls(o);
    };
    const engine = openTlsEngine({ hostname: "127.0.0.1", port: 0 }, a.pem, listen);
    const clients: Deno.TcpConn[] = [];
    try {
      // The new chain "b" closes the listener; while the port cannot be had,
      // a handshake fails at once.
      clients.push(await Deno.connect({ hostname: "127.0.0.1", port: plain.port }));
      const err = await engine.handshake(await plain.next(), b.pem, 5000).catch((e) => e);
      assert.ok(err instanceof TlsHandshakeError, String(err));
      // Given up after its quick attempts, the engine never listened again.
      const until = Date.now() + 10_000;
      while (!reopened && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.ok(reopened, `the port was never tried again (${calls} listens)`);
      const client = await Deno.connect({ hostname: "127.0.0.1", port: plain.port });
      clients.push(client);
      const [s, c] = await Promise.all([
        engine.handshake(await plain.next(), b.pem, 5000),
        Deno.startTls(client, { hostname: "localhost", caCerts: [b.ca] }),
      ]);
      assert.equal(s.info.protocol, "TLSv1.3");
      s.close();
      c.close();
    } finally {
      for (const c of clients) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      engine.close();
      plain.close();
    }
  },
});

Deno.test("readClientHello: a ClientHello sent a byte at a time is read into one buffer, never copied again", async () => {
  // A record of 100 bytes whose body is a ClientHello of 96 (no suites, no extensions).
  const hello = new Uint8Array(105);
  hello.set([22, 3, 1, 0, 100, 1, 0, 0, 96]);
  const targets: Uint8Array[] = [];
  let at = 0;
  const conn = {
    read(p: Uint8Array): Promise<number | null> {
      targets.push(p);
      if (at >= hello.length) return Promise.resolve(null);
      p[0] = hello[at++] as number;
      return Promise.resolve(1);
    },
  };
  const r = await readClientHello(conn);
  assert.ok(r);
  assert.deepEqual([...r.bytes], [...hello]);
  assert.equal(r.ecdsa, false);
  assert.equal(targets.length, hello.length);
  // Each read lands just after the bytes before it, in the same buffer as the result.
  targets.forEach((p, i) => {
    assert.equal(p.buffer, r.bytes.buffer, `read ${i} went to another buffer`);
    assert.equal(p.byteOffset, i, `read ${i}`);
  });
});
