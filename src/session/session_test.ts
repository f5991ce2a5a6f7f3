import assert from "node:assert/strict";
import { runSession } from "./session.ts";
import { fakeDeps, scriptedTransport } from "./_test_fakes.ts";

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
