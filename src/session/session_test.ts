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
