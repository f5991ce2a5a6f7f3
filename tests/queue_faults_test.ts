/**
 * Queue-file faults injected into the running daemon with strace: a
 * failing flock(2) on a pre-created pool file must neither leak its
 * descriptor nor lose the file's name (a clean stop then could not remove
 * it), and the client gets the queue-file write error.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { canTrace, RawClient, startDaemon, waitFor } from "./_harness.ts";

async function openFiles(pid: number): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(`/proc/${pid}/fd`)) {
    const target = await Deno.readLink(`/proc/${pid}/fd/${e.name}`).catch(() => "");
    if (target.includes("/spool/incoming/")) n++;
  }
  return n;
}

Deno.test({
  name:
    "flock failing on pool files (ENOLCK): 451, no descriptor leaked, a clean stop leaves no file",
  ignore: !(await canTrace()),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const d = await startDaemon("notify_classes = []\n");
    const traced = join(d.queueDir, "..", "strace.out");
    const strace = new Deno.Command("strace", {
      args: [
        "-f",
        "-qq",
        "-p",
        String(d.pid),
        "-e",
        "trace=flock",
        "-e",
        "inject=flock:error=ENOLCK",
        "-o",
        traced,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      // Attached to every thread, not only the main one (strace -f takes the
      // others one after the other): the flock may run on any of them (Deno's
      // blocking pool), and one not yet traced would let it succeed.
      await waitFor("strace attached to every thread", async () => {
        for await (const task of Deno.readDir(`/proc/${d.pid}/task`)) {
          const t = await Deno.readTextFile(`/proc/${d.pid}/task/${task.name}/status`)
            .catch(() => "TracerPid: 1"); // the thread has ended
          if (!/^TracerPid:\s+[1-9]/m.test(t)) return false;
        }
        return true;
      }, 10_000);
      const c = await RawClient.connect(d.port);
      try {
        await c.reply();
        await c.send("EHLO faults.example\r\n");
        await c.reply();
        for (let i = 0; i < 3; i++) {
          await c.send("MAIL FROM:<a@example.org>\r\n");
          assert.match(await c.reply(), /^250/);
          await c.send("RCPT TO:<u@example.com>\r\n");
          assert.match(await c.reply(), /^250/);
          await c.send("DATA\r\n");
          const r = await c.reply();
          if (r.startsWith("354")) {
            await c.send("Subject: x\r\n\r\nhello\r\n.\r\n");
            assert.match(await c.reply(), /^451 4\.3\.0 /);
          } else {
            assert.match(r, /^451 4\.3\.0 Error: queue file write error/);
            await c.send("RSET\r\n");
            assert.match(await c.reply(), /^250/);
          }
        }
        // A leaked descriptor stays open; one a refill or an abort holds for
        // a moment does not (a fixed 200 ms sleep was too short on CI).
        await waitFor("no queue file open", async () => await openFiles(d.pid) === 0, 5000)
          .catch(async () => assert.equal(await openFiles(d.pid), 0, "queue files left open"));
      } finally {
        c.close();
      }
    } finally {
      strace.kill("SIGINT");
      await strace.status;
    }
    await d.stop("SIGTERM");
    const left = await Array.fromAsync(
      Deno.readDir(join(d.queueDir, "incoming")),
      (e) => e.name,
    );
    assert.deepEqual(left, [], `left in incoming/ after a clean stop:\n${d.log()}`);
  },
});
