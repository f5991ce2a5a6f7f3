/**
 * A queue shared with a running Postfix: start-up recovery touches only the
 * files this program created (their queue IDs carry a mark Postfix never
 * uses, src/queue/queue_id.ts), never Postfix's own files, whatever their
 * age or state.
 *
 * 1. Without Postfix: the queue holds files in the shapes Postfix's cleanup
 *    and postdrop leave while writing, beside leftovers of ours; a start
 *    sets aside ours and leaves the others as they were.
 * 2. A stand-alone process of ours (`smtpd stdin`) still writing a large
 *    message into maildrop/ while a daemon starts: its file is locked, so
 *    recovery leaves it, and the client gets its 250.
 * 3. A message of ours that `postsuper -r` requeued into maildrop/ (mode
 *    0700, not our 0744) is complete: a start leaves it for pickup.
 * 4. With a private Postfix instance (root, Debian's postfix package) whose
 *    queue is our queue_directory: Postfix's smtpd, sendmail/postdrop and
 *    our daemon write into it while our daemon is restarted (SIGTERM, start)
 *    several times. One Postfix session is held in the middle of DATA across
 *    the first restart, so Postfix's cleanup has a real half-written file in
 *    incoming/ then (made to look an hour old, so no age rule can protect
 *    it). Every message Postfix or we acknowledged must be delivered, and no
 *    file of Postfix's may be moved to corrupt/.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  freePort,
  makeWorkDir,
  RawClient,
  ROOT,
  run,
  sleep,
  smtpdArgs,
  startDaemon,
  swaks,
  waitFor,
  writeConfig,
} from "./_harness.ts";
import { havePostfix, startPostfix } from "./_postfix.ts";
import { isOurQueueId, makeQueueId } from "../src/queue/queue_id.ts";

const isRoot = Deno.uid() === 0;
const hasPostfix = await havePostfix();

/** Records as a writer leaves them after its first writes: C, T, A, S, and half a record. */
function partialRecords(sender: string): Uint8Array {
  const enc = new TextEncoder();
  const rec = (
    type: string,
    text: string,
  ) => [type.charCodeAt(0), text.length, ...enc.encode(text)];
  const now = Math.floor(Date.now() / 1000);
  return new Uint8Array([
    ...rec("C", "             0              0              0"),
    ...rec("T", `${now} 0`),
    ...rec("A", `create_time=${now}`),
    ...rec("S", sender),
    "N".charCodeAt(0),
    40,
    ...enc.encode("Subject: cut off"),
  ]);
}

/** Names Postfix gives its files: long and short queue IDs, cleanup's temporary name. */
const POSTFIX_SHAPED = {
  incoming: ["4jZtBg6CChzm0xR", "3F2A91C0042", "815342.4242"],
  maildrop: ["4jZtBg7DDhzm0xS", "5E1B0C0043"],
};

interface Planted {
  path: string;
  bytes: Uint8Array;
  mode: number;
}

/** Plants Postfix-shaped files being written (incoming 0600 as cleanup, maildrop 0644 as postdrop). */
async function plantForeign(queueDir: string, ageMs: number): Promise<Planted[]> {
  const out: Planted[] = [];
  const then = new Date(Date.now() - ageMs);
  for (const [queue, names] of Object.entries(POSTFIX_SHAPED)) {
    const mode = queue === "incoming" ? 0o600 : 0o644;
    for (const name of names) {
      const path = join(queueDir, queue, name);
      const bytes = partialRecords("postfix@sender.example");
      await Deno.writeFile(path, bytes, { mode });
      await Deno.chmod(path, mode);
      await Deno.utime(path, then, then);
      out.push({ path, bytes, mode });
    }
  }
  return out;
}

/** The planted files that are no longer there as planted. */
async function disturbed(planted: Planted[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of planted) {
    const st = await Deno.stat(p.path).catch(() => undefined);
    const bytes = st ? await Deno.readFile(p.path) : undefined;
    const same = st && ((st.mode ?? 0) & 0o777) === p.mode && bytes &&
      bytes.length === p.bytes.length && bytes.every((b, i) => b === p.bytes[i]);
    if (!same) out.push(p.path.slice(p.path.lastIndexOf("/", p.path.lastIndexOf("/") - 1) + 1));
  }
  return out;
}

const list = (dir: string): Promise<string[]> =>
  Array.fromAsync(Deno.readDir(dir)).then((es) => es.map((e) => e.name).sort(), () => []);

Deno.test({
  name: "start-up recovery sets aside only our leftovers, never files in Postfix's shapes",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("shared");
    const queueDir = join(dir, "spool");
    for (const q of ["incoming", "maildrop"]) {
      await Deno.mkdir(join(queueDir, q), { recursive: true });
    }
    // Young files: no age rule protects Postfix's writes in progress here
    // (no mail_owner: smtpd runs as the postfix user).
    const foreign = await plantForeign(queueDir, 0);
    const ours = makeQueueId(Math.floor(Date.now() / 1000) - 60, 1, 1);
    await Deno.writeFile(join(queueDir, "incoming", ours), partialRecords("a@b.example"), {
      mode: 0o600,
    });
    const pool = makeQueueId(Math.floor(Date.now() / 1000) - 60, 2, 2);
    await Deno.writeFile(join(queueDir, "incoming", pool), new Uint8Array(0), { mode: 0o600 });
    const d = await startDaemon("smtpd_peername_lookup = false", { dir });
    try {
      await d.waitForLog(
        `incoming/${ours}: incomplete (still marked as being written): set aside in corrupt/`,
      );
      // It runs while the daemon serves: its end.
      await d.waitForLog(/queue recovery: done in \d+ ms: 2 files of ours .* looked at, 1 moved/);
      assert.deepEqual(await disturbed(foreign), []);
      assert.deepEqual(await list(join(queueDir, "corrupt")), [`incoming.${ours}`]);
      const left = await list(join(queueDir, "incoming"));
      assert.ok(!left.includes(pool), "our unused pool file was removed");
      assert.doesNotMatch(
        d.log(),
        /4jZtBg|3F2A91|815342|5E1B0C/,
        "nothing logged about Postfix's files",
      );
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "a daemon start leaves alone the message a stand-alone process of ours is still writing",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    // smtpd stdin (socket-activated, inetd) runs beside the daemon: a large
    // message's file exists, mode 0600, while the client is still sending.
    const dir = await makeWorkDir("shared-stdin");
    const { configFile, queueDir } = await writeConfig(dir, "smtpd_peername_lookup = false");
    await Deno.mkdir(join(queueDir, "maildrop"), { recursive: true });
    const child = new Deno.Command(Deno.execPath(), {
      args: await smtpdArgs(["stdin", "-c", configFile]),
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdin = child.stdin.getWriter();
    const enc = new TextEncoder();
    const line = "0123456789".repeat(10) + "\r\n";
    let d;
    try {
      await stdin.write(enc.encode(
        "HELO local\r\nMAIL FROM:<a@sender.example>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n" +
          "Subject: large\r\n\r\n" + line.repeat(4000), // 400 KiB: the file is created at 256 KiB
      ));
      let name = "";
      await waitFor("the stand-alone process's file in maildrop/", async () => {
        name = (await list(join(queueDir, "maildrop")))[0] ?? "";
        return name !== "";
      });
      assert.ok(isOurQueueId(name), name);
      assert.equal((await Deno.stat(join(queueDir, "maildrop", name))).mode! & 0o777, 0o600);
      d = await startDaemon("smtpd_peername_lookup = false", { dir });
      // It runs while the daemon serves: its end (the file was looked at, and skipped).
      await d.waitForLog(/queue recovery: done in \d+ ms: 1 file of ours .* looked at, 0 moved/);
      await stdin.write(enc.encode(line.repeat(100) + ".\r\nQUIT\r\n"));
      await stdin.close();
      const out = await child.output();
      const stdout = new TextDecoder().decode(out.stdout);
      assert.match(stdout, new RegExp(`250 2\\.0\\.0 Ok: queued as ${name}\r\n221 `));
      assert.deepEqual(await list(join(queueDir, "corrupt")), []);
      const st = await Deno.stat(join(queueDir, "maildrop", name));
      assert.equal(st.mode! & 0o777, 0o744, "complete");
      assert.doesNotMatch(d.log(), /set aside/);
    } finally {
      await stdin.close().catch(() => {});
      await child.status;
      await d?.stop();
    }
  },
});

Deno.test({
  name: "a message of ours requeued by postsuper -r into maildrop/ (mode 0700) survives our start",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    // Queued by our daemon, then requeued by the administrator while the
    // daemon was down: Postfix's postsuper renames the file into maildrop/,
    // name and mode 0700 kept, for pickup. Our next start must leave it.
    const dir = await makeWorkDir("shared-requeue");
    let d = await startDaemon("", { dir });
    const sent = await swaks(d.port, ["--from", "a@sender.example", "--to", "b@example.com"]);
    await d.stop();
    const id = /queued as (\w+)/.exec(sent.stdout)?.[1] ?? "";
    assert.ok(isOurQueueId(id), sent.stdout);
    const queueDir = join(dir, "spool");
    const conf = join(dir, "postfix");
    await Deno.mkdir(conf);
    await Deno.writeTextFile(
      join(conf, "main.cf"),
      `compatibility_level = 3.6\nqueue_directory = ${queueDir}\nmail_owner = postfix\n`,
    );
    // postsuper works as mail_owner in the queue.
    await run("chown", ["-R", "postfix", queueDir]);
    const requeued = await run("postsuper", ["-c", conf, "-r", id]);
    assert.match(requeued.stderr, /Requeued: 1 message/, requeued.stderr);
    const path = join(queueDir, "maildrop", id);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o700);
    const before = await Deno.readFile(path);
    d = await startDaemon("", { dir });
    // It runs while the daemon serves: its end.
    await d.waitForLog(/queue recovery: done in \d+ ms: 1 file of ours .* looked at, 0 moved/);
    await d.stop();
    assert.doesNotMatch(d.log(), /set aside/);
    assert.deepEqual(await list(join(queueDir, "maildrop")), [id]);
    assert.deepEqual(await Deno.readFile(path), before);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o700);
  },
});

/** What the senders got a 250 (or postdrop an exit 0) for: subject token → queue ID. */
type Acked = Map<string, string>;

/**
 * Sends messages one after another over one SMTP connection (reconnecting
 * when the server goes away), until `until` or `max` messages, and records
 * each acknowledged token with its queue ID in `acked`.
 */
async function smtpSender(
  port: () => number,
  tag: string,
  acked: Acked,
  until: () => boolean,
  max: number,
): Promise<void> {
  let n = 0;
  while (!until() && n < max) {
    let c: RawClient | undefined;
    try {
      c = await RawClient.connect(port());
      if (!(await c.reply(5000)).startsWith("220")) throw new Error("no greeting");
      await c.send("EHLO sender.example\r\n");
      await c.reply(5000);
      while (!until() && n < max) {
        const token = `${tag}-${n++}`;
        await c.send(
          `MAIL FROM:<${tag}@sender.example>\r\nRCPT TO:<${tag}@example.com>\r\nDATA\r\n`,
        );
        const replies = [await c.reply(5000), await c.reply(5000), await c.reply(5000)];
        if (!replies[2]!.startsWith("354")) throw new Error(replies.join(""));
        await c.send(`Subject: shared ${token}\r\n\r\nbody of ${token}\r\n.\r\n`);
        const done = await c.reply(10000);
        const id = /^250 2\.0\.0 Ok: queued as (\w+)/.exec(done)?.[1];
        if (!id) throw new Error(done);
        acked.set(token, id);
        await sleep(80); // a steady stream across the restarts, not a burst before them
      }
      await c.send("QUIT\r\n");
    } catch {
      await sleep(100); // the server is restarting: try again
    } finally {
      c?.close();
    }
  }
}

/** Tokens found in the delivered messages. */
async function delivered(mbox: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const name of await list(mbox)) {
    const text = await Deno.readTextFile(join(mbox, name)).catch(() => "");
    for (const m of text.matchAll(/^Subject: shared (\S+)$/gm)) out.add(m[1]!);
  }
  return out;
}

Deno.test({
  name:
    "a real Postfix shares the queue through restarts of our server: its files stay, every acknowledged message is delivered",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("shared-postfix");
    const pfPort = freePort();
    const pf = await startPostfix(dir, {
      name: "shared",
      // One file per delivered message.
      deliver: `f=$(mktemp ${dir}/mbox/msg.XXXXXX) || exit 75\ncat > "$f" || exit 75\nexit 0\n`,
      smtpdPort: pfPort,
      mainCfExtra:
        "mynetworks = 127.0.0.0/8\nsmtpd_relay_restrictions = permit_mynetworks, reject\n",
    });
    const { conf, queueDir } = pf;
    const mbox = join(dir, "mbox");
    const ourPort = freePort();
    const extra = [pf.smtpdConfig, `smtpd_listen = ["127.0.0.1:${ourPort}"]`].join("\n");
    const acked = {
      postfix: new Map() as Acked,
      postdrop: new Map() as Acked,
      ours: new Map() as Acked,
    };
    let daemon;
    let held: RawClient | undefined;
    let restarts = 0;
    /** Acknowledged so far (Postfix smtpd + postdrop / ours) before and after each restart under load. */
    const during: string[] = [];
    try {
      daemon = await startDaemon(extra, { dir });

      // Postfix's files being written, in every shape, an hour old.
      const planted = await plantForeign(queueDir, 3600_000 + 60_000);
      // And one of ours, left by a crash an hour ago.
      const oursLeft = makeQueueId(Math.floor(Date.now() / 1000) - 60, 3, 3);
      await Deno.writeFile(join(queueDir, "incoming", oursLeft), partialRecords("a@b.example"), {
        mode: 0o600,
      });
      const crashedAt = new Date(Date.now() - 3600_000 - 60_000);
      await Deno.utime(join(queueDir, "incoming", oursLeft), crashedAt, crashedAt);

      // A Postfix session held in the middle of DATA: Postfix's cleanup has
      // its half-written file in incoming/ while our server restarts.
      const before = new Set(await list(join(queueDir, "incoming")));
      held = await RawClient.connect(pfPort);
      assert.match(await held.reply(), /^220 /);
      await held.send("EHLO held.example\r\n");
      await held.reply();
      await held.send("MAIL FROM:<held@sender.example>\r\n");
      assert.match(await held.reply(), /^250 /);
      await held.send("RCPT TO:<held@example.com>\r\n");
      assert.match(await held.reply(), /^250 /);
      await held.send("DATA\r\n");
      assert.match(await held.reply(), /^354 /);
      await held.send("Subject: shared held-0\r\n\r\nfirst line of a message still arriving\r\n");
      let cleanupFile = "";
      await waitFor("Postfix's cleanup file in incoming/", async () => {
        const now = (await list(join(queueDir, "incoming"))).filter((n) =>
          !before.has(n) && !isOurQueueId(n)
        );
        cleanupFile = now[0] ?? "";
        return now.length === 1;
      });
      const cleanupPath = join(queueDir, "incoming", cleanupFile);
      assert.equal((await Deno.stat(cleanupPath)).mode! & 0o777, 0o600, "still being written");
      const hourAgo = new Date(Date.now() - 3600_000 - 60_000);
      await Deno.utime(cleanupPath, hourAgo, hourAgo);

      // Restart with Postfix's file in progress, then restarts under load.
      let stillThere = false;
      let stop = false;
      const load = [
        smtpSender(() => pfPort, "postfix-a", acked.postfix, () => stop, 300),
        smtpSender(() => pfPort, "postfix-b", acked.postfix, () => stop, 300),
        smtpSender(() => ourPort, "ours-a", acked.ours, () => stop, 300),
        (async () => {
          for (let n = 0; !stop && n < 40; n++) {
            const token = `postdrop-${n}`;
            const r = await run("sendmail", [
              "-C",
              conf,
              "-f",
              "pd@sender.example",
              "pd@example.com",
            ], {
              stdin: `Subject: shared ${token}\n\nbody of ${token}\n`,
              timeoutMs: 20000,
            });
            if (r.code === 0) acked.postdrop.set(token, "(maildrop)");
            await sleep(100);
          }
        })(),
      ];
      try {
        await daemon.stop();
        daemon = await startDaemon(extra, { dir });
        restarts++;
        // Recovery runs once the daemon listens, here beside the load (20 s, not the 5 s default).
        await daemon.waitForLog(`incoming/${oursLeft}: incomplete`, 20000);
        stillThere = await Deno.stat(cleanupPath).then(() => true, () => false);
        for (let i = 0; i < 2; i++) {
          await sleep(700);
          const at = `${acked.postfix.size}+${acked.postdrop.size}/${acked.ours.size}`;
          await daemon.stop();
          daemon = await startDaemon(extra, { dir });
          restarts++;
          during.push(`${at} -> ${acked.postfix.size}+${acked.postdrop.size}/${acked.ours.size}`);
        }
        await sleep(700);
        stop = true;
        await Promise.all(load);
        // The held message ends: Postfix acknowledges it.
        await held.send("last line\r\n.\r\n");
        const end = await held.reply(20000);
        const heldId = /^250 2\.0\.0 Ok: queued as (\w+)/.exec(end)?.[1];
        assert.ok(heldId, end);
        acked.postfix.set("held-0", heldId);
        await held.send("QUIT\r\n");
        held.close();
        held = undefined;
      } finally {
        stop = true;
        await Promise.all(load);
      }

      // Every acknowledged message is delivered.
      const all = new Map([...acked.postfix, ...acked.postdrop, ...acked.ours]);
      let got = new Set<string>();
      // Hundreds of messages through Postfix's pipe, one process each: room for a loaded host.
      await waitFor("every acknowledged message delivered", async () => {
        got = await delivered(mbox);
        return [...all.keys()].every((t) => got.has(t));
      }, 120000).catch(() => {});
      const missing = [...all.keys()].filter((t) => !got.has(t));
      const corrupt = await list(join(queueDir, "corrupt"));
      const moved = await disturbed(planted);
      const count = (m: Acked) =>
        `${m.size} acknowledged, ${[...m.keys()].filter((t) => got.has(t)).length} delivered`;
      // deno-lint-ignore no-console
      console.log(
        [
          `our server restarted ${restarts} times (SIGTERM, start) while Postfix wrote into the same queue`,
          `acknowledged (Postfix smtpd+postdrop/ours) across the restarts under load: ${
            during.join(", ")
          }`,
          `Postfix smtpd: ${
            count(acked.postfix)
          } (one held in DATA across a restart: ${cleanupFile} -> ${acked.postfix.get("held-0")})`,
          `Postfix sendmail/postdrop: ${count(acked.postdrop)}`,
          `our server: ${count(acked.ours)}`,
          `Postfix's half-written ${cleanupFile} after our restart: ${
            stillThere ? "still in incoming/" : "gone"
          }`,
          `missing: ${missing.length ? missing.join(" ") : "none"}`,
          `Postfix-shaped files planted: ${planted.length}, disturbed: ${
            moved.length ? moved.join(" ") : "none"
          }`,
          `corrupt/: ${corrupt.join(" ") || "empty"}`,
        ].join("\n"),
      );
      assert.ok(stillThere, "Postfix's half-written file was still in incoming/ after our restart");
      assert.deepEqual(missing, [], "every acknowledged message is delivered");
      assert.deepEqual(moved, [], "Postfix's files are left as they were");
      // Only files of ours are ever set aside: the planted leftover, and any
      // message of ours a stop cut off in the middle (its client got no 250).
      assert.ok(corrupt.includes(`incoming.${oursLeft}`), "our leftover was set aside");
      for (const name of corrupt) assert.ok(isOurQueueId(name.slice(name.indexOf(".") + 1)), name);
      assert.ok(
        acked.postfix.size > 1 && acked.ours.size > 0 && acked.postdrop.size > 0,
        "the load ran",
      );
      for (const id of acked.postfix.values()) assert.ok(!isOurQueueId(id), `Postfix's ID ${id}`);
      for (const id of acked.ours.values()) assert.ok(isOurQueueId(id), `our ID ${id}`);
    } finally {
      held?.close();
      await daemon?.stop();
      await pf.stop();
    }
  },
});
