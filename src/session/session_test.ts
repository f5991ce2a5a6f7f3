import assert from "node:assert/strict";
import { runSession } from "./session.ts";
import { fakeDeps, scriptedTransport } from "./_test_fakes.ts";
import { pausesTaken, sessionEnded, sessionStarted } from "../io/turns.ts";

Deno.test("Session: a pipelined burst of short commands never queues more than a few KB of replies", async () => {
  const count = 16384; // 128 KiB of input, about 2.4 MB of EHLO replies
  const input = new TextEncoder().encode("EHLO x\r\n".repeat(count) + "QUIT\r\n");
  const writes: number[] = [];
  await runSession(scriptedTransport(input, { writes }).transport, fakeDeps());
  const total = writes.reduce((a, b) => a + b, 0);
  const ehlo = "250-mx\r\n".length; // at least this much per EHLO reply
  assert.ok(total > count * ehlo, `every EHLO was answered (${total} bytes)`);
  const largest = Math.max(...writes);
  assert.ok(largest <= 8192, `largest write ${largest} bytes`);
});

Deno.test("Session: tells `ending` before its 221 to QUIT is written, once", async () => {
  const { transport, output } = scriptedTransport(new TextEncoder().encode("HELO x\r\nQUIT\r\n"));
  const seen: string[] = [];
  await runSession(transport, { ...fakeDeps(), ending: () => seen.push(output()) });
  assert.equal(seen.length, 1);
  assert.match(seen[0] as string, /^220 /, "the greeting and HELO reply went out before");
  assert.doesNotMatch(seen[0] as string, /221 /, "the slot was free before the 221 left");
  assert.match(output(), /221 2\.0\.0 Bye\r\n$/);
});

Deno.test("Session: with a notify_classes transcript to mail, `ending` waits for it", async () => {
  const { transport, output } = scriptedTransport(new TextEncoder().encode("FOO\r\nQUIT\r\n"));
  const seen: string[] = [];
  const deps = fakeDeps({ notify_classes: ["protocol"] });
  await runSession(transport, { ...deps, ending: () => seen.push(output()) });
  assert.equal(seen.length, 1);
  assert.match(seen[0] as string, /221 2\.0\.0 Bye\r\n$/);
});

Deno.test("Session: tells the transport TLS begins before its 220 to STARTTLS is written", async () => {
  const input = new TextEncoder().encode("EHLO c.example\r\nSTARTTLS\r\n");
  const { transport, output } = scriptedTransport(input, { startTls: true });
  const seen: string[] = [];
  transport.tlsBegins = () => seen.push(output());
  await runSession(transport, fakeDeps({ smtpd_tls_security_level: "may" }));
  assert.equal(seen.length, 1, "told once");
  // Until then a listener making room may still write a plaintext 421;
  // after the 220 the client expects a handshake.
  assert.match(seen[0] as string, /^220 /, "the greeting went out before");
  assert.doesNotMatch(seen[0] as string, /220 2\.0\.0 Ready to start TLS/);
  assert.match(output(), /220 2\.0\.0 Ready to start TLS\r\n/);
});

Deno.test("Session: a command that had to wait for its last bytes starts a new turn (no pause for it)", async () => {
  // Each read ends in the middle of a line and the next comes 2 ms later
  // (a client that trickles its commands): the session waits for the
  // client before every command, so it never runs a turn long enough to
  // pause, though another session is live on the thread.
  const lines = ["EHLO x"];
  for (let i = 0; i < 40; i++) lines.push("NOOP");
  lines.push("QUIT");
  const segments: Uint8Array[] = [];
  let carry = "";
  for (const l of lines) {
    const half = Math.ceil((l.length + 2) / 2);
    segments.push(new TextEncoder().encode(carry + `${l}\r\n`.slice(0, half)));
    carry = `${l}\r\n`.slice(half);
  }
  segments.push(new TextEncoder().encode(carry));
  const base = scriptedTransport(new Uint8Array(0)).transport;
  const transport = {
    ...base,
    async read(p: Uint8Array): Promise<number | null> {
      const next = segments.shift();
      if (!next) return null;
      await new Promise((r) => setTimeout(r, 2));
      p.set(next);
      return next.length;
    },
  };
  sessionStarted(); // another session, idle, on the same thread
  try {
    const before = pausesTaken();
    await runSession(transport, fakeDeps());
    const after = pausesTaken();
    // Without a new turn after each wait: a pause before almost every
    // command (40). Some are allowed for a loaded host that preempts the
    // session in a command (a turn is 0.5 ms): up to half of them.
    const taken = after.cheap + after.polled - before.cheap - before.polled;
    assert.ok(taken <= 20, `${taken} pauses for 42 commands that each waited for the client`);
  } finally {
    sessionEnded();
  }
});
