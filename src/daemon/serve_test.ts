import assert from "node:assert/strict";
import { join } from "node:path";
import { SharedFileList } from "../queue/mod.ts";
import { stopWorker } from "./serve.ts";
import type { StuckWriterFiles, StuckWriterInit } from "./_stuck_writer_thread.ts";

Deno.test("stopWorker: a listener thread deaf to the stop is ended in bounded time, its half-written queue file removed, its complete one kept", async () => {
  const dir = await Deno.makeTempDir({ prefix: "smtpd-stop-" });
  try {
    await Deno.mkdir(join(dir, "incoming"));
    const unfinished = new SharedFileList(8);
    const worker = new Worker(new URL("./_stuck_writer_thread.ts", import.meta.url), {
      type: "module",
    });
    const files = await new Promise<StuckWriterFiles>((resolve) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.postMessage(
        { directory: dir, unfinished: unfinished.buffer } satisfies StuckWriterInit,
      );
    });
    const half = await Deno.stat(files.half);
    assert.ok(half.size > 256 * 1024 && ((half.mode ?? 0) & 0o100) === 0, "half-written before");
    const lines: string[] = [];
    const start = Date.now();
    await stopWorker({ worker, unfinished }, dir, { warning: (t) => lines.push(t) }, 1);
    // Its wait is 1 s; room for a loaded host (deaf for ever would never end).
    assert.ok(Date.now() - start < 15_000, `stopped in ${Date.now() - start} ms`);
    await assert.rejects(Deno.stat(files.half), Deno.errors.NotFound, "half-written file left");
    assert.equal(((await Deno.stat(files.complete)).mode ?? 0) & 0o777, 0o700);
    assert.deepEqual(lines, [
      "listener thread 1 did not stop in time: removed its 1 unfinished queue file",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
