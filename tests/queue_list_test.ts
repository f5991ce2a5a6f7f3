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

Deno.test({
  name:
    "smtpd queue list and cat show a client's C1 control (0x9b is CSI) as '?', JSON escaped, not to the terminal",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("queuelist-c1");
    const configFile = join(dir, "smtpd.toml").slice(ROOT.length);
    // With smtputf8_enable off an 8-bit local part is taken, as in Postfix.
    const d = await startDaemon("smtpd_peername_lookup = false\nsmtputf8_enable = false", { dir });
    try {
      const c = await RawClient.connect(d.port);
      let id = "";
      try {
        await c.reply();
        await c.send(
          Uint8Array.from(
            "EHLO x\r\nMAIL FROM:<j\x9b31m@example.org>\r\nRCPT TO:<k\xc2\x9b2J\xe9@example.com>\r\nDATA\r\n",
            (ch) => ch.charCodeAt(0),
          ),
        );
        const replies = [];
        for (let i = 0; i < 4; i++) replies.push(await c.reply());
        assert.match(replies[3] ?? "", /^354 /, replies.join(""));
        await c.send("Subject: q\r\n\r\nbody\r\n.\r\nQUIT\r\n");
        const queued = await c.reply();
        id = /queued as (\S+)/.exec(queued)?.[1] ?? "";
        assert.ok(id, queued);
      } finally {
        c.close();
      }
      const queue = async (...args: string[]) => {
        const r = await run(
          Deno.execPath(),
          await smtpdArgs(["queue", ...args, "-c", configFile]),
        );
        assert.equal(r.code, 0, r.stderr);
        return r.stdout;
      };
      const list = await queue("list");
      // The content is shown as it is, as postcat shows it (ISO-2022-JP
      // text holds ESC): the envelope is judged.
      const cat = (await queue("cat", id)).split("*** CONTENT ***")[0] as string;
      const json = await queue("list", "--json");
      for (const text of [list, cat, json]) {
        // deno-lint-ignore no-control-regex
        assert.doesNotMatch(text, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/, JSON.stringify(text));
      }
      // A record that is not UTF-8 is read byte by byte (ISO 8859-1).
      assert.match(list, /j\?31m@example\.org\n +k\u00c2\?2J\u00e9@example\.com$/m);
      assert.match(
        cat,
        /^sender: j\?31m@example\.org\nrecipient: k\u00c2\?2J\u00e9@example\.com$/m,
      );
      // The JSON says what the records hold.
      const [entry] = JSON.parse(json) as { sender: string; recipients: string[] }[];
      assert.equal(entry?.sender, "j\x9b31m@example.org");
      assert.deepEqual(entry?.recipients, ["k\u00c2\u009b2J\u00e9@example.com"]);
    } finally {
      await d.stop();
    }
  },
});
