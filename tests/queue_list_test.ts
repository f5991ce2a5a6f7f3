/**
 * `smtpd queue list` on a running daemon's queue: the pre-created pool
 * files (empty, 0600) are not messages and are not listed.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  makeWorkDir,
  RawClient,
  ROOT,
  run,
  smtpdArgs,
  startDaemon,
  writeConfig,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "smtpd queue list leaves out a daemon's pool files and lists only the queued message",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("queuelist");
    const configFile = join(dir, "smtpd.toml").slice(ROOT.length);
    const d = await startDaemon("smtpd_peername_lookup = false", { dir });
    try {
      const list = async () => {
        const r = await run(
          Deno.execPath(),
          await smtpdArgs(["queue", "list", "--json", "-c", configFile]),
        );
        assert.equal(r.code, 0, r.stderr);
        return JSON.parse(r.stdout) as { id: string; complete: boolean }[];
      };
      // The pool is there: empty files in incoming/.
      let pooled = 0;
      for (let i = 0; i < 100 && pooled === 0; i++) {
        for await (const e of Deno.readDir(join(d.queueDir, "incoming"))) {
          const st = await Deno.stat(join(d.queueDir, "incoming", e.name)).catch(() => undefined);
          if (st?.size === 0) pooled++;
        }
        if (pooled === 0) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(pooled > 0, "the daemon pre-created pool files");
      assert.deepEqual(await list(), []);
      const c = await RawClient.connect(d.port);
      try {
        await c.reply();
        await c.send(
          "EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
        );
        for (let i = 0; i < 4; i++) await c.reply();
        await c.send("Subject: q\r\n\r\nbody\r\n.\r\nQUIT\r\n");
        assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as/);
      } finally {
        c.close();
      }
      const entries = await list();
      assert.equal(entries.length, 1, JSON.stringify(entries));
      assert.equal(entries[0]?.complete, true);
      const text = await run(Deno.execPath(), await smtpdArgs(["queue", "list", "-c", configFile]));
      assert.match(text.stdout, /-- 1 files$/m);
      assert.doesNotMatch(text.stdout, /incomplete/);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "smtpd queue list and cat fail, naming the directory, when the queue cannot be read",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("queuelist-missing");
    try {
      const { configFile, queueDir } = await writeConfig(dir);
      const queue = async (...args: string[]) =>
        await run(Deno.execPath(), await smtpdArgs(["queue", ...args, "-c", configFile]));
      // No queue directory at all (a typo in queue_directory): not an empty queue.
      for (const args of [["list"], ["list", "--json"], ["cat", "u4jgYG8Kpjzhp8DrFK0"]]) {
        const r = await queue(...args);
        assert.equal(r.code, 1, `${args.join(" ")}: ${r.stdout}`);
        assert.doesNotMatch(r.stdout, /empty|\[\]/);
        assert.equal(
          r.stderr.trim(),
          `smtpd: queue ${args[0]}: cannot read queue directory "${queueDir}": no such directory`,
        );
      }
      // A queue that cannot be listed (here incoming/ is not a directory).
      await Deno.mkdir(queueDir);
      await Deno.writeTextFile(join(queueDir, "incoming"), "");
      const r = await queue("list");
      assert.equal(r.code, 1, r.stdout);
      assert.match(
        r.stderr,
        new RegExp(`^smtpd: queue list: cannot read "${queueDir}/incoming": `),
      );
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
      // A queue directory with no queues created yet is an empty queue.
      await Deno.remove(join(queueDir, "incoming"));
      const empty = await queue("list");
      assert.equal(empty.code, 0, empty.stderr);
      assert.equal(empty.stdout.trim(), "Mail queue is empty");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
