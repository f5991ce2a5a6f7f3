/**
 * The Dovecot client against broken and hostile auth servers (small Deno
 * servers on a UNIX socket in a temporary directory): endless lines,
 * silence, a handshake that never ends, the wrong socket, the wrong
 * version, replies for other ids. Each must end in a bounded time with a
 * failure (temporary where the SMTP side answers 454), never a hang, and
 * never with memory that grows with what the server sends.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { DovecotAuthClient } from "../src/sasl/mod.ts";

const enc = new TextEncoder();
const HANDSHAKE = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\n" +
  "SPID\t1\nCUID\t1\nCOOKIE\t00\nDONE\n";
const INFO = {
  clientAddress: "192.0.2.7",
  clientPort: 40000,
  serverAddress: "127.0.0.1",
  serverPort: 25,
  tls: true,
};

/** What a fake server's script gets for one connection. */
interface FakeConn {
  send(text: string): Promise<boolean>;
  /** The next line from the client, or null at its end. */
  line(): Promise<string | null>;
  /** Bytes this connection has written. */
  written: number;
}

/** A fake auth server: runs `script` for every connection; records what clients sent. */
async function fakeServer(script: (c: FakeConn, index: number) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "smtpd-fakeauth-" });
  const path = join(dir, "auth");
  const listener = Deno.listen({ transport: "unix", path });
  const received: string[] = [];
  const conns: Deno.Conn[] = [];
  const tasks: Promise<void>[] = [];
  let connections = 0;
  const serve = async (conn: Deno.Conn, index: number) => {
    let buf = "";
    const reader = conn.readable.getReader();
    const fc: FakeConn = {
      written: 0,
      async send(text: string) {
        try {
          const bytes = enc.encode(text);
          let off = 0;
          while (off < bytes.length) off += await conn.write(bytes.subarray(off));
          fc.written += bytes.length;
          return true;
        } catch {
          return false;
        }
      },
      async line() {
        for (;;) {
          const lf = buf.indexOf("\n");
          if (lf >= 0) {
            const l = buf.slice(0, lf);
            buf = buf.slice(lf + 1);
            received.push(l);
            return l;
          }
          const r = await reader.read().catch(() => ({ done: true, value: undefined }));
          if (r.done || !r.value) return null;
          buf += new TextDecoder().decode(r.value);
        }
      },
    };
    await script(fc, index).catch(() => {});
    try {
      conn.close();
    } catch { /* closed */ }
  };
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      tasks.push(serve(conn, connections++));
    }
  })().catch(() => {});
  return {
    path,
    received,
    get connections() {
      return connections;
    },
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await accepting;
      await Promise.all(tasks);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function clientFor(path: string, warnings: string[], timeoutMs = 1_000, retryDelayMs = 0) {
  return new DovecotAuthClient({
    endpoint: { transport: "unix", path },
    timeoutMs,
    retryDelayMs,
    onWarning: (t) => warnings.push(t),
  });
}

/** Sends "A"s without a line end until the peer stops reading or 64 MiB went out. */
async function endless(c: FakeConn): Promise<void> {
  const chunk = "A".repeat(65536);
  while (c.written < 64 * 1024 * 1024 && await c.send(chunk)) { /* more */ }
}

Deno.test("Dovecot client: an endless line in the handshake is cut at 16 KiB, at once", async () => {
  const server = await fakeServer(async (c) => {
    await c.send("VERSION\t1\t2\nMECH\tPLAIN\t");
    await endless(c);
  });
  const warnings: string[] = [];
  const client = clientFor(server.path, warnings, 5_000);
  try {
    const t0 = Date.now();
    assert.equal(await client.mechanisms(), undefined);
    assert.ok(Date.now() - t0 < 2_000, `took ${Date.now() - t0} ms`);
    assert.match(warnings.join("\n"), /line longer than 16384 bytes/);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("Dovecot client: an endless reply line → temporary failure, connection dropped", async () => {
  const server = await fakeServer(async (c) => {
    await c.send(HANDSHAKE);
    await c.line(); // VERSION
    await c.line(); // CPID
    await c.line(); // AUTH
    await c.send("OK\t1\tuser=");
    await endless(c);
  });
  const warnings: string[] = [];
  const client = clientFor(server.path, warnings, 5_000);
  try {
    const t0 = Date.now();
    const step = await client.start("PLAIN", INFO).begin(btoa("\0a\0b"));
    assert.deepEqual(step, {
      kind: "failure",
      reason: "Connection lost to authentication server",
      temporary: true,
    });
    assert.ok(Date.now() - t0 < 2_000, `took ${Date.now() - t0} ms`);
    assert.match(warnings.join("\n"), /ended: line longer than 16384 bytes/);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("Dovecot client: a silent server and a handshake that never ends time out", async () => {
  const silent = await fakeServer(async (c) => {
    await c.line();
    await new Promise((r) => setTimeout(r, 1_000));
  });
  // A line every 50 ms for 10 s, or until the client has gone.
  const drip = await fakeServer(async (c) => {
    await c.send("VERSION\t1\t2\n");
    for (let i = 0; i < 200 && await c.send(`MECH\tX${i}\n`); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  try {
    for (const server of [silent, drip]) {
      const warnings: string[] = [];
      const client = clientFor(server.path, warnings, 500);
      const t0 = Date.now();
      assert.equal(await client.mechanisms(), undefined);
      const took = Date.now() - t0;
      // The 500 ms timeout, with room for a loaded host; well short of the
      // drip's 10 s.
      assert.ok(took >= 450 && took < 5_000, `took ${took} ms`);
      assert.match(warnings.join("\n"), /failed: timed out/);
      client.close();
    }
  } finally {
    await silent.close();
    await drip.close();
  }
});

Deno.test("Dovecot client: no reply to AUTH → 454-type failure within the timeout; a server silent 3 timeouts long is dropped, then reconnect", async () => {
  const server = await fakeServer(async (c, index) => {
    await c.send(HANDSHAKE);
    for (;;) {
      const l = await c.line();
      if (l === null) return;
      if (index > 0 && l.startsWith("AUTH\t")) {
        await c.send(`OK\t${l.split("\t")[1]}\tuser=alice\n`);
      }
    }
  });
  const warnings: string[] = [];
  // 1 s: the reconnect's handshake and AUTH below must each be answered
  // within it, on a loaded host too.
  const client = clientFor(server.path, warnings, 1_000);
  try {
    const t0 = Date.now();
    const step = await client.start("PLAIN", INFO).begin(btoa("\0a\0b"));
    assert.deepEqual(step, {
      kind: "failure",
      reason: "Timeout waiting for authentication server",
      temporary: true,
    });
    assert.ok(Date.now() - t0 < 2_900, `took ${Date.now() - t0} ms`);
    // Silent on: taken for stuck, closed (3 timeouts after the request went out).
    for (let i = 0; i < 300 && warnings.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(warnings.join("\n"), /no reply from authentication server/);
    const again = await client.start("PLAIN", INFO).begin(btoa("\0a\0b"));
    assert.deepEqual(again, { kind: "success", username: "alice" });
    assert.equal(server.connections, 2);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("Dovecot client: a reply Dovecot delays past the timeout fails that request only; the shared connection stays", async () => {
  // Dovecot delays a request from an address with recent failures by up to
  // 15 s (auth_penalty) plus auth_failure_delay: past our 10 s wait, and
  // while it waits nothing else may come on the connection. That one
  // request fails (454), as in Postfix, but the connection every session of
  // the thread shares is not taken for stuck: here the late reply comes with
  // the next request's, on the same connection, and nothing is logged.
  const server = await fakeServer(async (c, index) => {
    await c.send(HANDSHAKE);
    let held: string | undefined;
    for (;;) {
      const l = await c.line();
      if (l === null) return;
      if (!l.startsWith("AUTH\t")) continue;
      const id = l.split("\t")[1];
      if (index === 0 && id === "1") {
        held = `FAIL\t${id}\tuser=mallory\n`;
        continue;
      }
      await c.send(`${held ?? ""}OK\t${id}\tuser=alice\n`);
      held = undefined;
    }
  });
  const warnings: string[] = [];
  // 1 s: the next request's reply must come within it (and within the 2 s
  // after which a silent connection is taken for stuck), on a loaded host too.
  const client = clientFor(server.path, warnings, 1_000);
  try {
    const late = await client.start("PLAIN", INFO).begin(btoa("\0mallory\0guess"));
    assert.deepEqual(late, {
      kind: "failure",
      reason: "Timeout waiting for authentication server",
      temporary: true,
    });
    const next = await client.start("PLAIN", INFO).begin(btoa("\0alice\0secret"));
    assert.deepEqual(next, { kind: "success", username: "alice" });
    assert.equal(server.connections, 1);
    assert.deepEqual(warnings, []);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("Dovecot client: the wrong socket and the wrong version are refused", async () => {
  const master = await fakeServer(async (c) => {
    await c.send("VERSION\t1\t2\nSPID\t7\n");
    await c.line();
  });
  const v2 = await fakeServer(async (c) => {
    await c.send("VERSION\t2\t0\n" + HANDSHAKE.slice(HANDSHAKE.indexOf("MECH")));
    await c.line();
  });
  try {
    const cases: [string, RegExp][] = [
      [master.path, /wrong auth socket/],
      [v2.path, /Protocol version mismatch \(2 vs\. 1\)/],
    ];
    for (const [path, want] of cases) {
      const warnings: string[] = [];
      const client = clientFor(path, warnings);
      assert.equal(await client.mechanisms(), undefined);
      assert.match(warnings.join("\n"), want);
      client.close();
    }
  } finally {
    await master.close();
    await v2.close();
  }
});

Deno.test("Dovecot client: the AUTH line, ids never reused, replies for other ids ignored", async () => {
  const server = await fakeServer(async (c) => {
    await c.send(HANDSHAKE);
    for (;;) {
      const l = await c.line();
      if (l === null) return;
      if (!l.startsWith("AUTH\t")) continue;
      const id = Number(l.split("\t")[1]);
      await c.send(`OK\t${id + 1000}\tuser=mallory\nGARBAGE\nFAIL\tx\nCONT\t${id}\tnot base64!\n`);
      if (l.includes("resp=AGJhZAB4")) {
        await c.send(`FAIL\t${id}\tuser=bad\treason=No\x01tway\x01\x01\ttemp\n`);
      } else if (l.includes("resp=AGVtcHR5AHg=")) {
        await c.send(`OK\t${id}\n`);
      } else if (l.includes("resp=AGV2aWwAeA==")) {
        // A UTF-8 name stays; an escaped CR LF does not reach a header or log line.
        await c.send(`OK\t${id}\tuser=j\u00f6rg\x01r\x01nX-Injected: 1\x1b[0m\n`);
      } else {
        await c.send(`OK\t${id}\tuser=alice\n`);
      }
    }
  });
  const client = clientFor(server.path, []);
  try {
    const ok = await client.start("plain", INFO).begin(btoa("\0alice\0x"));
    assert.deepEqual(ok, { kind: "success", username: "alice" });
    const temp = await client.start("PLAIN", INFO).begin(btoa("\0bad\0x"));
    assert.deepEqual(temp, {
      kind: "failure",
      reason: "No?way?",
      temporary: true,
      username: "bad",
    });
    const evil = await client.start("PLAIN", INFO).begin(btoa("\0evil\0x"));
    assert.deepEqual(evil, { kind: "success", username: "jörg??X-Injected: 1?[0m" });
    const noUser = await client.start("PLAIN", INFO).begin(btoa("\0empty\0x"));
    assert.deepEqual(noUser, {
      kind: "failure",
      reason: "Authentication backend error",
      temporary: false,
    });
    const unknown = await client.start("CRAM-MD5", INFO).begin(undefined);
    assert.deepEqual(unknown, {
      kind: "failure",
      reason: "Invalid authentication mechanism",
      temporary: false,
    });
    await Promise.all([1, 2, 3].map(() => client.start("LOGIN", INFO).begin(btoa("x"))));
    const auths = server.received.filter((l) => l.startsWith("AUTH\t"));
    assert.equal(
      auths[0],
      `AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.7\tlport=25\trport=40000\tsecured=tls\tresp=${
        btoa("\0alice\0x")
      }`,
    );
    const ids = auths.map((l) => Number(l.split("\t")[1]));
    assert.deepEqual(ids, [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(server.received.slice(0, 2), ["VERSION\t1\t2", `CPID\t${Deno.pid}`]);
    assert.equal(server.connections, 1);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("Dovecot client: after a failed connect, requests fail at once for retryDelayMs", async () => {
  const server = await fakeServer(async (c) => {
    await c.line();
    await new Promise((r) => setTimeout(r, 1_000));
  });
  const warnings: string[] = [];
  const client = clientFor(server.path, warnings, 300, 1_000);
  try {
    assert.equal(await client.mechanisms(), undefined);
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) {
      const step = await client.start("PLAIN", INFO).begin(btoa("\0a\0b"));
      assert.deepEqual(step, {
        kind: "failure",
        reason: "Can't connect to authentication server",
        temporary: true,
      });
    }
    // A request that tried the silent server would wait out its 300 ms
    // timeout (6 s for 20), and one that waited for the delay would take
    // 1 s; below that, any time is "at once" on a loaded host.
    assert.ok(Date.now() - t0 < 1_000, `took ${Date.now() - t0} ms`);
    assert.equal(server.connections, 1);
    assert.equal(warnings.length, 1);
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(await client.mechanisms(), undefined);
    assert.equal(server.connections, 2, "a new attempt once the delay is over");
  } finally {
    client.close();
    await server.close();
  }
});
