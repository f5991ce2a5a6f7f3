/**
 * The memory budget (smtpd_memory_budget) against header bombs: many
 * concurrent sessions each sending a 100 KB header block of "a:" lines,
 * slowly, to a daemon with a 2 MB budget and two listener threads. Those
 * past the budget get 452 4.3.1, the daemon stays up, the budget comes
 * back (a normal message is accepted afterwards), and no partial queue
 * file stays. Also header_size_limit cutting a long folded line, read
 * back with postcat.
 */

import assert from "node:assert/strict";
import { basename } from "node:path";
import { allEntries, postcat, queueFiles, RawClient, startDaemon } from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const SESSIONS = 12;
const CHUNKS = 10;
/** 2,560 "a:" lines per chunk: 10 chunks make the 100 KB of header_size_limit. */
const CHUNK = "a:\r\n".repeat(2560);

/** One header-bomb message; returns the reply to the end of data (or to DATA). */
async function bomb(port: number): Promise<string> {
  const c = await RawClient.connect(port);
  try {
    await c.reply();
    await c.send("EHLO x\r\n");
    await c.reply();
    await c.send("MAIL FROM:<a@example.org>\r\n");
    assert.match(await c.reply(), /^250/);
    await c.send("RCPT TO:<b@example.com>\r\n");
    assert.match(await c.reply(), /^250/);
    await c.send("DATA\r\n");
    const data = await c.reply();
    if (!data.startsWith("354")) return data;
    for (let i = 0; i < CHUNKS; i++) {
      await c.send(CHUNK);
      await new Promise((r) => setTimeout(r, 100)); // slowly: the sessions overlap
    }
    await c.send("\r\nbody\r\n.\r\n");
    const end = await c.reply(30_000);
    await c.send("QUIT\r\n");
    return end;
  } finally {
    c.close();
  }
}

/** A plain message; returns the reply to the end of data. */
async function plain(port: number): Promise<string> {
  const c = await RawClient.connect(port);
  try {
    await c.reply();
    await c.send("HELO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    for (let i = 0; i < 4; i++) await c.reply();
    await c.send("Subject: after\r\n\r\nbody\r\n.\r\nQUIT\r\n");
    return await c.reply();
  } finally {
    c.close();
  }
}

Deno.test({
  name:
    "header bombs past smtpd_memory_budget get 452 4.3.1; the daemon lives, no partial file, later mail is accepted",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      "smtpd_memory_budget = 2000000\nsmtpd_listen_threads = 2\nsmtpd_peername_lookup = false\n" +
        "notify_classes = []",
    );
    try {
      const replies = await Promise.all(Array.from({ length: SESSIONS }, () => bomb(d.port)));
      const refused = replies.filter((r) => r.startsWith("452 4.3.1 Insufficient system storage"));
      const queued = replies.filter((r) => r.startsWith("250 2.0.0 Ok: queued"));
      assert.equal(refused.length + queued.length, SESSIONS, replies.join(""));
      assert.ok(refused.length > 0, `some refused: ${replies.join("")}`);
      assert.ok(queued.length > 0, `some queued: ${replies.join("")}`);
      await d.waitForLog("memory budget exhausted");
      // The budget came back: a normal message goes through.
      assert.match(await plain(d.port), /^250 2\.0\.0 Ok: queued as /);
      // Only whole files: one per 250, each read to its end by postcat.
      const files = await queueFiles(d.queueDir);
      assert.equal(files.length, queued.length + 1);
      assert.deepEqual(await allEntries(d.queueDir), files.map((f) => basename(f)));
      for (const f of files) await postcat(f);
      assert.doesNotMatch(d.log(), /out of memory|fatal|session failed/i);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "header_size_limit inside a long folded line: Message-Id: is a line of its own (postcat)",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      "header_size_limit = 1024\nline_length_limit = 200\nsmtpd_peername_lookup = false",
    );
    try {
      const c = await RawClient.connect(d.port);
      const long = "X-Long: " + "v".repeat(1500);
      try {
        await c.reply();
        await c.send("HELO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
        for (let i = 0; i < 4; i++) await c.reply();
        await c.send(`Subject: cut\r\n${long}\r\n\r\nbody\r\n.\r\n`);
        assert.match(await c.reply(), /^250 /);
        await c.send("QUIT\r\n");
      } finally {
        c.close();
      }
      const [file] = await queueFiles(d.queueDir);
      assert.ok(file);
      const text = await postcat(file);
      const lines = text.slice(text.indexOf("*** MESSAGE CONTENTS")).split("\n");
      const id = lines.findIndex((l) => l.startsWith("Message-Id: <"));
      assert.ok(id > 0, text);
      const held = lines.find((l) => l.startsWith("X-Long: v"));
      assert.ok(held && !held.includes("Message-Id"), text);
      // Headers end after Date:; the rest of the long line is the body's first line.
      const blank = lines.indexOf("", id);
      assert.equal(lines[blank + 1], long.slice(held.length));
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "a recipient list past smtpd_memory_budget gets 452 4.3.1 at RCPT; RSET gives the budget back",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      "smtpd_memory_budget = 300000\nsmtpd_listen_threads = 1\nsmtpd_peername_lookup = false\n" +
        "notify_classes = []\nsmtpd_soft_error_limit = 1000\nsmtpd_hard_error_limit = 1000",
    );
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("EHLO x\r\n");
      await c.reply();
      await c.send("MAIL FROM:<a@example.org>\r\n");
      assert.match(await c.reply(), /^250/);
      // 200 recipients of about 1 KB each: about 400 KB held as strings.
      const count = 200;
      let batch = "";
      for (let i = 0; i < count; i++) {
        batch += `RCPT TO:<${String(i).padStart(1000, "r")}@example.com>\r\n`;
      }
      await c.send(batch);
      const replies: string[] = [];
      for (let i = 0; i < count; i++) replies.push(await c.reply());
      const ok = replies.filter((r) => r.startsWith("250 2.1.5"));
      const refused = replies.filter((r) => r.startsWith("452 4.3.1 Insufficient system storage"));
      assert.equal(ok.length + refused.length, count, replies.join(""));
      assert.ok(
        ok.length > 0 && refused.length > 0,
        `${ok.length} accepted, ${refused.length} refused`,
      );
      await d.waitForLog("memory budget exhausted");
      // RSET drops the list and its reservation: a message goes through.
      await c.send("RSET\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
      assert.match(await c.reply(), /^250/);
      assert.match(await c.reply(), /^250/);
      assert.match(await c.reply(), /^250/);
      assert.match(await c.reply(), /^354/);
      await c.send("Subject: x\r\n\r\nbody\r\n.\r\n");
      assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as /);
    } finally {
      c.close();
      await d.stop();
    }
  },
});
