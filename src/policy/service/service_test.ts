import assert from "node:assert/strict";
import { PolicyClient } from "./client.ts";
import { type Duplex, PolicyConnection } from "./connection.ts";
import { parseEndpoint, type ServiceSettings } from "./endpoint.ts";
import { encodeRequest, parseReply, REPLY_LIMIT } from "./protocol.ts";
import { netstring } from "../tables/socketmap_table.ts";
import { rawByteChar } from "../../io/wire_text.ts";

const enc = new TextEncoder();

Deno.test("encodeRequest() never lets a value forge an attribute", () => {
  const text = new TextDecoder().decode(
    encodeRequest([["helo_name", "x\nrecipient=forged@example\r\n\nrequest=evil"], [
      "sender",
      "a\0b",
    ]]),
  );
  assert.equal(text, "helo_name=x?recipient=forged@example???request=evil\nsender=a?b\n\n");
  assert.equal(text.split("\n").filter((l) => l.startsWith("recipient=")).length, 0);
});

const REPLIES: [string, ReturnType<typeof parseReply>][] = [
  ["action=DUNNO\n\n", { kind: "action", action: "DUNNO", trailing: false }],
  ["action=REJECT go away\r\n\r\n", { kind: "action", action: "REJECT go away", trailing: false }],
  ["other=1\naction=OK\nmore=2\n\n", { kind: "action", action: "OK", trailing: false }],
  ["action=OK\n\naction=REJECT\n\n", { kind: "action", action: "OK", trailing: true }],
  ["action=OK\n", { kind: "incomplete" }],
  ["", { kind: "incomplete" }],
  ["hello\n\n", { kind: "error", reason: "missing attribute action", trailing: false }],
  ["action=\n\n", { kind: "error", reason: "empty action attribute", trailing: false }],
  [`action=${"x".repeat(REPLY_LIMIT)}`, {
    kind: "error",
    reason: `reply longer than ${REPLY_LIMIT} bytes`,
  }],
];

for (const [bytes, want] of REPLIES) {
  Deno.test(`parseReply(${JSON.stringify(bytes.slice(0, 30))}) → ${want.kind}`, () => {
    assert.deepEqual(parseReply(enc.encode(bytes)), want);
  });
}

Deno.test("parseReply() refuses malformed UTF-8", () => {
  const bytes = new Uint8Array([...enc.encode("action=REJECT "), 0xff, 10, 10]);
  assert.deepEqual(parseReply(bytes), { kind: "error", reason: "malformed UTF-8 in reply" });
});

Deno.test("parseEndpoint() reads inet:, unix: (relative to the queue), local:", () => {
  assert.deepEqual(parseEndpoint("inet:127.0.0.1:9998", "/q"), {
    kind: "inet",
    hostname: "127.0.0.1",
    port: 9998,
  });
  assert.deepEqual(parseEndpoint("inet:[::1]:25", "/q"), {
    kind: "inet",
    hostname: "::1",
    port: 25,
  });
  assert.deepEqual(parseEndpoint("unix:private/policy", "/q"), {
    kind: "unix",
    path: "/q/private/policy",
  });
  assert.deepEqual(parseEndpoint("local:/run/p", "/q"), { kind: "unix", path: "/run/p" });
  for (const bad of ["inet:host", "inet:h:0", "inet:h:70000", "tcp:h:1", "unix:"]) {
    assert.throws(() => parseEndpoint(bad, "/q"), SyntaxError, bad);
  }
});

/** A fake server: answers each request with the next action, counts connections. */
function fakeConnector(answer: (n: number) => string | undefined) {
  const state = { opened: 0, closed: 0, requests: 0 };
  const connect = (): Promise<Duplex> => {
    state.opened++;
    let pending: ((n: number | null) => void) | undefined;
    let out: Uint8Array | undefined;
    let closed = false;
    return Promise.resolve({
      read(buf: Uint8Array) {
        if (closed) return Promise.resolve(null);
        if (out) {
          buf.set(out);
          const n = out.length;
          out = undefined;
          return Promise.resolve(n);
        }
        return new Promise<number | null>((r) => pending = r).then((n) => {
          if (n && out) {
            buf.set(out);
            out = undefined;
          }
          return n;
        });
      },
      write(data: Uint8Array) {
        const a = answer(++state.requests);
        if (a !== undefined) {
          out = enc.encode(`action=${a}\n\n`);
          const p = pending;
          pending = undefined;
          p?.(out.length);
        }
        return Promise.resolve(data.length);
      },
      close() {
        if (closed) return;
        closed = true;
        state.closed++;
        pending?.(null);
      },
    });
  };
  return { connect, state };
}

function settings(more: Partial<ServiceSettings> = {}): ServiceSettings {
  return {
    endpoint: { kind: "inet", hostname: "127.0.0.1", port: 1 },
    name: "inet:127.0.0.1:1",
    timeout: 1,
    maxIdle: 300,
    maxTtl: 1000,
    requestLimit: 0,
    tryLimit: 2,
    retryDelay: 0,
    defaultAction: "DUNNO",
    policyContext: "",
    ...more,
  };
}

function client(s: ServiceSettings, f: ReturnType<typeof fakeConnector>, now = Date.now) {
  const warnings: string[] = [];
  const c = new PolicyClient(s, {
    connect: f.connect,
    now,
    sleep: () => Promise.resolve(),
    warn: (t) => warnings.push(t),
  });
  return { c, warnings };
}

Deno.test("PolicyClient reuses one connection for sequential requests", async () => {
  const f = fakeConnector(() => "DUNNO");
  const { c } = client(settings(), f);
  for (let i = 0; i < 5; i++) {
    assert.deepEqual(await c.request([["request", "smtpd_access_policy"]]), {
      kind: "action",
      action: "DUNNO",
    });
  }
  assert.equal(f.state.opened, 1);
  c.close();
});

Deno.test("PolicyClient opens a new connection after request_limit requests", async () => {
  const f = fakeConnector(() => "OK");
  const { c } = client(settings({ requestLimit: 2 }), f);
  for (let i = 0; i < 5; i++) await c.request([["a", "b"]]);
  assert.equal(f.state.opened, 3);
  c.close();
});

Deno.test("PolicyClient closes a connection older than max_ttl instead of reusing it", async () => {
  const f = fakeConnector(() => "OK");
  let t = 1_000_000;
  const { c } = client(settings({ maxTtl: 10 }), f, () => t);
  await c.request([["a", "b"]]);
  t += 5_000;
  await c.request([["a", "b"]]);
  assert.equal(f.state.opened, 1);
  t += 6_000;
  await c.request([["a", "b"]]);
  assert.equal(f.state.opened, 2);
  c.close();
});

Deno.test("PolicyClient closes an idle connection after max_idle", async () => {
  const f = fakeConnector(() => "OK");
  const { c } = client(settings({ maxIdle: 0.05 }), f);
  await c.request([["a", "b"]]);
  assert.equal(c.idleCount, 1);
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(c.idleCount, 0);
  assert.equal(f.state.closed, 1);
});

Deno.test("PolicyClient retries a failed request up to try_limit, then reports it", async () => {
  const f = fakeConnector((n) => n === 1 ? undefined : "OK"); // the first request is never answered
  const { c, warnings } = client(settings({ timeout: 0.1, tryLimit: 2 }), f);
  assert.deepEqual(await c.request([["a", "b"]]), { kind: "action", action: "OK" });
  assert.equal(f.state.opened, 2);
  const g = fakeConnector(() => undefined);
  const { c: c2, warnings: w2 } = client(settings({ timeout: 0.05, tryLimit: 3 }), g);
  const r = await c2.request([["a", "b"]]);
  assert.equal(r.kind, "failed");
  assert.equal(g.state.opened, 3);
  assert.match(w2.join("\n"), /problem talking to server inet:127\.0\.0\.1:1: timeout/);
  assert.equal(warnings.length, 0);
  c.close();
});

Deno.test("PolicyClient.retire closes the idle connection now, and one used after it is closed when done", async () => {
  const f = fakeConnector(() => "DUNNO");
  const { c } = client(settings(), f);
  await c.request([["a", "b"]]);
  assert.equal(c.idleCount, 1);
  c.retire();
  assert.equal(c.idleCount, 0);
  assert.equal(f.state.closed, 1);
  // A session from before the reload still gets its answer.
  assert.deepEqual(await c.request([["a", "b"]]), { kind: "action", action: "DUNNO" });
  assert.equal(f.state.opened, 2);
  assert.equal(c.idleCount, 0);
  assert.equal(f.state.closed, 2);
});

Deno.test("PolicyConnection: a reply sent a byte at a time is not copied whole at each byte", async () => {
  // Copying the whole reply at each byte made a 600 KB reply sent a byte
  // per read cost 13 s of the thread's CPU (180 GB copied). Counted, not
  // timed: the server sends its next byte only once the reply so far was
  // looked at, and the test counts the buffers it was gathered in. Growing
  // by doubling needs a few dozen; a copy per byte, one per byte.
  const size = 5000;
  let sent = 0;
  let looked: (() => void) | undefined;
  let asked: (() => void) | undefined;
  const asking = new Promise<void>((r) => asked = r);
  const duplex: Duplex = {
    async read(buf) {
      await asking;
      if (sent >= size) return await new Promise<null>(() => {});
      if (sent > 0) await new Promise<void>((r) => looked = r);
      buf[0] = 120;
      sent++;
      return 1;
    },
    write(data) {
      asked?.();
      return Promise.resolve(data.length);
    },
    close() {},
  };
  const buffers = new Set<ArrayBufferLike>();
  const framing = {
    parse: (b: Uint8Array) => {
      if (b.length > 0) buffers.add(b.buffer);
      const next = looked;
      looked = undefined;
      next?.();
      return b.length >= size
        ? { kind: "action" as const, action: String(b.length) }
        : { kind: "incomplete" as const };
    },
    limit: size,
  };
  const conn = new PolicyConnection(duplex, Date.now(), framing);
  assert.equal(await conn.exchange(enc.encode("q"), Date.now() + 60_000), String(size));
  conn.close();
  assert.ok(buffers.size <= 64, `${buffers.size} buffers for ${size} bytes`);
});

Deno.test("a client's byte that is not UTF-8 goes to a policy service and a socketmap as that byte", () => {
  // smtputf8_enable off: the byte is kept as a lone surrogate (wire_text.ts);
  // Postfix sends the byte, never U+FFFD (EF BF BD).
  const value = `a${rawByteChar(0xff)}b@example.org`;
  assert.deepEqual(
    encodeRequest([["sender", value]]),
    Uint8Array.from("sender=a\xffb@example.org\n\n", (c) => c.charCodeAt(0)),
  );
  assert.deepEqual(
    netstring(value),
    Uint8Array.from("15:a\xffb@example.org,", (c) => c.charCodeAt(0)),
  );
});
