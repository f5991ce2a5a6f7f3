import assert from "node:assert/strict";
import { betterCandidate, parseListenAddress, serveTcp } from "./tcp_listener.ts";

function recorder() {
  const lines: string[] = [];
  return {
    lines,
    log: {
      warning: (t: string) => lines.push(`warning: ${t}`),
      info: (t: string) => lines.push(t),
      error: (t: string) => lines.push(`error: ${t}`),
    },
  };
}

/** A listener whose accept fails as told, then waits until closed. */
function fakeListener(errors: Error[]): Deno.TcpListener {
  let closed = false;
  let wake: (() => void) | undefined;
  return {
    addr: { transport: "tcp", hostname: "127.0.0.1", port: 2525 },
    accept(): Promise<Deno.TcpConn> {
      const e = errors.shift();
      if (e) return Promise.reject(e);
      return new Promise((_, reject) => {
        wake = () => reject(new Deno.errors.BadResource("closed"));
        if (closed) wake();
      });
    },
    close() {
      closed = true;
      wake?.();
    },
  } as unknown as Deno.TcpListener;
}

Deno.test("parseListenAddress: host:port, [v6]:port, :port", () => {
  assert.deepEqual(parseListenAddress("127.0.0.1:25"), { hostname: "127.0.0.1", port: 25 });
  assert.deepEqual(parseListenAddress("[::1]:2525"), { hostname: "::1", port: 2525 });
  assert.deepEqual(parseListenAddress(":25"), { hostname: "0.0.0.0", port: 25 });
  assert.equal(parseListenAddress("host:99999"), undefined);
});

Deno.test("serveTcp: a listener that breaks is opened again on the same port", async () => {
  const r = recorder();
  const opened: { port: number }[] = [];
  const server = await serveTcp([{ hostname: "127.0.0.1", port: 0 }], () => Promise.resolve(), {
    log: r.log,
    backoff: { initialMs: 1 },
    listen: (a) => {
      opened.push({ port: a.port });
      return fakeListener(opened.length === 1 ? [new Deno.errors.BadResource("gone")] : []);
    },
  });
  const end = Date.now() + 20_000;
  while (opened.length < 2 && Date.now() < end) await new Promise((res) => setTimeout(res, 5));
  server.close();
  await server.finished;
  assert.equal(opened.length, 2);
  assert.equal(opened[1]?.port, 2525, "opened again on the port the first one got");
  assert.match(r.lines.join("\n"), /listener 127\.0\.0\.1:2525: gone; opening it again/);
  assert.match(r.lines.join("\n"), /listener 127\.0\.0\.1:2525: listening again/);
});

Deno.test("serveTcp: an address that cannot be listened on is named, with the privilege it lacks", async () => {
  const cases: [number, Error, RegExp][] = [
    [
      25,
      new Deno.errors.PermissionDenied("Permission denied (os error 13)"),
      /^cannot listen on 127\.0\.0\.1:25: Permission denied \(os error 13\) \(a port below 1024 needs root or CAP_NET_BIND_SERVICE\)$/,
    ],
    [
      2525,
      new Deno.errors.AddrInUse("Address already in use (os error 98)"),
      /^cannot listen on 127\.0\.0\.1:2525: Address already in use \(os error 98\)$/,
    ],
  ];
  for (const [port, error, want] of cases) {
    const opened: Deno.TcpListener[] = [];
    await assert.rejects(
      serveTcp(
        [{ hostname: "::1", port: 0 }, { hostname: "127.0.0.1", port }],
        () => Promise.resolve(),
        {
          listen: (a) => {
            if (a.port !== port) {
              const l = fakeListener([]);
              opened.push(l);
              return l;
            }
            throw error;
          },
        },
      ),
      { message: want },
    );
  }
});

Deno.test("serveTcp: a listener that cannot be opened again is reported failed", async () => {
  const r = recorder();
  let opens = 0;
  const server = await serveTcp([{ hostname: "127.0.0.1", port: 25 }], () => Promise.resolve(), {
    log: r.log,
    backoff: { initialMs: 1, maxMs: 5 },
    // Long enough for several tries on a loaded host too.
    giveUpAfterMs: 1000,
    listen: () => {
      if (++opens === 1) return fakeListener([new Deno.errors.BadResource("gone")]);
      throw new Deno.errors.AddrInUse("Address already in use (os error 98)");
    },
  });
  const why = await server.failed;
  await server.finished;
  server.close();
  assert.match(
    why,
    /^listener 127\.0\.0\.1:2525: cannot listen again for \d+ s: Address already in use$/,
  );
  assert.ok(opens > 2);
  assert.match(r.lines.at(-1) ?? "", /^error: listener 127\.0\.0\.1:2525: cannot listen again/);
});

Deno.test("serveTcp: EMFILE is waited out, never a reason to reopen the listener", async () => {
  const r = recorder();
  let opens = 0;
  const emfile = () => new Error("Too many open files (os error 24)");
  const errors = Array.from({ length: 20 }, emfile);
  const server = await serveTcp([{ hostname: "127.0.0.1", port: 0 }], () => Promise.resolve(), {
    log: r.log,
    backoff: { initialMs: 1, maxMs: 2 },
    reopenAfterMs: 0,
    listen: () => {
      opens++;
      return fakeListener(errors);
    },
  });
  // Every failure seen (a loaded host may take longer than their waits add up to).
  for (let i = 0; i < 2000 && errors.length > 0; i++) {
    await new Promise((res) => setTimeout(res, 10));
  }
  assert.equal(errors.length, 0, "every failed accept was tried again");
  server.close();
  await server.finished;
  assert.equal(opens, 1);
  assert.deepEqual(r.lines, ["warning: accept: too many open files; backing off"]);
});

Deno.test("serveTcp: a client that resets before its accept is no listener failure: no wait, no reopen", async () => {
  const r = recorder();
  let opens = 0;
  const errors = Array.from(
    { length: 20 },
    (_, i) =>
      i % 2
        ? new Deno.errors.NotConnected("Transport endpoint is not connected (os error 107)")
        : new Deno.errors.ConnectionAborted("Software caused connection abort (os error 103)"),
  );
  const server = await serveTcp([{ hostname: "127.0.0.1", port: 0 }], () => Promise.resolve(), {
    log: r.log,
    // Were these failures, the second accept would wait a second, and the
    // listener would be opened again at once.
    backoff: { initialMs: 1000 },
    reopenAfterMs: 0,
    listen: () => {
      opens++;
      return fakeListener(errors);
    },
  });
  await new Promise((res) => setTimeout(res, 100));
  server.close();
  await server.finished;
  assert.equal(errors.length, 0, "every failed accept was followed by the next at once");
  assert.equal(opens, 1);
  assert.deepEqual(r.lines, []);
});

Deno.test("betterCandidate() puts idle before slow before crowding, then more held, then longer waits", () => {
  const c = (idle: boolean, held: number, score: number) => ({
    id: 0,
    why: idle ? "idle" as const : "slow" as const,
    held,
    score,
  });
  const crowd = (held: number, score: number) => ({ id: 0, why: "crowding" as const, held, score });
  assert.equal(betterCandidate(c(true, 1, 1000), c(false, 9, 90_000)), true);
  assert.equal(betterCandidate(c(false, 9, 90_000), c(true, 1, 1000)), false);
  assert.equal(betterCandidate(c(true, 3, 1000), c(true, 2, 5000)), true);
  assert.equal(betterCandidate(c(false, 2, 12_000), c(false, 2, 11_000)), true);
  assert.equal(betterCandidate(c(true, 2, 1000), c(true, 2, 1000)), false);
  assert.equal(betterCandidate(c(false, 1, 10_000), crowd(50, 1)), true);
  assert.equal(betterCandidate(crowd(50, 1), c(false, 1, 10_000)), false);
  assert.equal(betterCandidate(crowd(10, 0), crowd(9, 1)), true);
  assert.equal(betterCandidate(crowd(10, 1), crowd(10, 0)), true);
});
