/**
 * Crash consistency: SIGKILL the daemon in the middle of a load, several
 * times; every message that got 250 must be in the queue, complete and
 * readable by postcat, and nothing incomplete may look complete.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { makeWorkDir, postcat, queueFiles, RawClient, startDaemon } from "./_harness.ts";

async function sender(port: number, acked: string[], stopAt: number): Promise<void> {
  let c: RawClient | undefined;
  try {
    c = await RawClient.connect(port);
    await c.reply();
    await c.send("EHLO load.example\r\n");
    await c.reply();
    const body = "Subject: load\r\n\r\n" + "0123456789abcdef".repeat(64).concat("\r\n").repeat(4) +
      ".\r\n";
    while (Date.now() < stopAt) {
      await c.send("MAIL FROM:<l@example.org>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n");
      const a = await c.reply(10_000);
      const b = await c.reply(10_000);
      const d = await c.reply(10_000);
      if (!a.startsWith("250") || !b.startsWith("250") || !d.startsWith("354")) return;
      await c.send(body);
      const done = await c.reply(10_000);
      const m = /^250 2\.0\.0 Ok: queued as (\w+)/.exec(done);
      if (!m) return;
      acked.push(m[1] as string);
    }
  } catch {
    // the server died under us: expected
  } finally {
    c?.close();
  }
}

Deno.test({
  name:
    "SIGKILL during a load: every acknowledged message is complete, nothing partial looks complete",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("crash");
    const acked: string[] = [];
    const kills = 3;
    for (let round = 0; round < kills; round++) {
      const d = await startDaemon("", { dir });
      const stopAt = Date.now() + 5000;
      const before = acked.length;
      const clients = Array.from({ length: 4 }, () => sender(d.port, acked, stopAt));
      // In the middle of the load: once the first message of the round is
      // acknowledged (a loaded host may take longer than a fixed pause to
      // get there, and a round would test nothing), then a moment more.
      while (acked.length === before && Date.now() < stopAt) {
        await new Promise((r) => setTimeout(r, 10));
      }
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 400)));
      await d.stop("SIGKILL");
      await Promise.all(clients);
    }
    const queueDir = join(dir, "spool");
    const complete = new Set(
      (await queueFiles(queueDir)).map((f) => f.slice(f.lastIndexOf("/") + 1)),
    );
    const missing = acked.filter((id) => !complete.has(id));
    assert.ok(acked.length > 0, "some messages were acknowledged");
    assert.deepEqual(missing, [], `acknowledged but missing: ${missing.join(" ")}`);
    for (const id of complete) await postcat(join(queueDir, "incoming", id));
    // deno-lint-ignore no-console
    console.log(
      `kills=${kills} acknowledged=${acked.length} complete=${complete.size} missing=${missing.length}`,
    );
  },
});
