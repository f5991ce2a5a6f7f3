/**
 * Start-up recovery with many complete files of ours waiting in incoming/
 * (Postfix's qmgr stopped while we kept receiving, then our restart): the
 * daemon listens as soon as with an empty queue, and the recovery, which
 * runs while it serves, still sets aside only the leftovers of interrupted
 * writes, never a complete file, a file of Postfix's or a file of the
 * daemon's own.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { makeQueueId } from "../src/queue/queue_id.ts";
import {
  type Daemon,
  makeWorkDir,
  RawClient,
  run,
  startDaemon,
  swaks,
  waitFor,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Complete files of ours planted: 20,000 took the old start 16-26 s here. */
const WAITING = 20_000;

/** Starts the daemon on `dir` and waits for its greeting; returns it and the time taken. */
async function startGreeted(dir: string): Promise<{ d: Daemon; ms: number }> {
  const t = performance.now();
  const d = await startDaemon("", { dir });
  const c = await RawClient.connect(d.port);
  try {
    assert.match(await c.reply(), /^220 /);
  } finally {
    c.close();
  }
  return { d, ms: performance.now() - t };
}

/** The IDs the daemon logged as queued. */
const queuedIds = (log: string) =>
  [...log.matchAll(/: (u[A-Za-z0-9]+): from=<[^>]*>, size=\d+, nrcpt=1 \(queue active\)/g)].map(
    (m) => m[1] ?? "",
  );

/** Sends `count` messages with Postfix's smtp-source, two sessions at once. */
async function load(port: number, count: number): Promise<void> {
  const r = await run("smtp-source", [
    "-s",
    "2",
    "-m",
    String(count),
    "-l",
    "2000",
    `127.0.0.1:${port}`,
  ], { timeoutMs: 60000 });
  assert.equal(r.code, 0, r.stderr);
}

Deno.test({
  name:
    `start-up: ${WAITING} complete files of ours in incoming/ do not delay listening; recovery runs while serving and sets aside only leftovers`,
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("startup-recovery");
    const incoming = join(dir, "spool", "incoming");
    let d: Daemon | undefined;
    try {
      // A start with an empty queue, and one real message from swaks.
      const empty = await startGreeted(dir);
      d = empty.d;
      const sent = await swaks(d.port, ["--from", "a@example.org", "--to", "b@example.com"]);
      assert.equal(sent.code, 0, sent.stdout);
      const first = /queued as (\w+)/.exec(sent.stdout)?.[1] ?? "";
      assert.ok(first, sent.stdout);
      await d.stop();
      const message = await Deno.readFile(join(incoming, first));
      await Deno.remove(join(incoming, first));

      // Postfix stopped: many complete files of ours wait for its qmgr.
      const sec = Math.floor(Date.now() / 1000) - 3600;
      const waiting = new Set<string>();
      for (let i = 0; i < WAITING; i++) {
        const name = makeQueueId(sec + Math.floor(i / 1000), i % 1000, i % 50);
        Deno.writeFileSync(join(incoming, name), message, { mode: 0o700 });
        waiting.add(name);
      }
      // The leftovers of a crash: a file being written, one marked complete
      // whose end never reached the disk, an unused pool file; and a file
      // Postfix's cleanup is writing.
      const partial = makeQueueId(sec - 60, 1, 1);
      const noEnd = makeQueueId(sec - 60, 2, 2);
      const pool = makeQueueId(sec - 60, 3, 3);
      const postfix = "4jZtBg6CChzm0xR";
      Deno.writeFileSync(join(incoming, partial), message.subarray(0, 300), { mode: 0o600 });
      Deno.writeFileSync(join(incoming, noEnd), message.subarray(0, message.length - 2), {
        mode: 0o700,
      });
      Deno.writeFileSync(join(incoming, pool), new Uint8Array(0), { mode: 0o600 });
      Deno.writeFileSync(join(incoming, postfix), message.subarray(0, 300), { mode: 0o600 });

      // The port accepts as soon as with an empty queue (and a little for the listing).
      const full = await startGreeted(dir);
      d = full.d;
      // deno-lint-ignore no-console
      console.log(
        `greeting after ${Math.round(empty.ms)} ms with an empty queue, ` +
          `${Math.round(full.ms)} ms with ${WAITING} complete files waiting`,
      );
      assert.ok(
        full.ms < empty.ms + 6000,
        `greeting after ${Math.round(full.ms)} ms (empty queue: ${Math.round(empty.ms)} ms)`,
      );

      // Messages while the recovery runs, and after it: each one the daemon
      // queued stays, in files the daemon made after its listing.
      await load(d.port, 20);
      await d.waitForLog(
        new RegExp(
          `queue recovery: done in \\d+ ms: ${
            WAITING + 3
          } files of ours .* looked at, 2 moved to corrupt/`,
        ),
        120000,
      );
      await load(d.port, 20);
      // The last lines of the log may come after smtp-source has ended.
      const daemon = d;
      await waitFor(
        "40 messages logged",
        () => Promise.resolve(queuedIds(daemon.log()).length >= 40),
      );
      const queued = queuedIds(d.log());
      assert.equal(queued.length, 40, `${queued.length} queued:\n${d.log().slice(-2000)}`);
      for (const id of queued) {
        const st = await Deno.stat(join(incoming, id));
        assert.equal(st.mode! & 0o777, 0o700, id);
      }
      const log = d.log();
      assert.match(
        log,
        new RegExp(`incoming/${partial}: incomplete \\(still marked as being written\\)`),
      );
      assert.match(log, new RegExp(`incoming/${noEnd}: no end record`));
      assert.doesNotMatch(log, /queue recovery failed/);
      const left = new Set(Array.from(Deno.readDirSync(incoming), (e) => e.name));
      assert.deepEqual([...waiting].filter((n) => !left.has(n)), [], "every complete file stays");
      assert.ok(left.has(postfix), "Postfix's file stays");
      assert.ok(!left.has(pool), "the unused pool file is removed");
      assert.deepEqual(
        Array.from(Deno.readDirSync(join(dir, "spool", "corrupt")), (e) => e.name).sort(),
        [`incoming.${noEnd}`, `incoming.${partial}`].sort(),
      );
    } finally {
      await d?.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
