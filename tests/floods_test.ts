/**
 * Floods that cost the client nothing: ETRN (trigger writes to Postfix's
 * queue manager, coalesced to one a second) and junk commands (NOOP, VRFY,
 * ETRN, RSET, HELP past smtpd_junk_command_limit count as errors, so a flood
 * ends in 421). The triggers are counted by a real UNIX-domain socket
 * server on public/qmgr.
 */

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { join } from "node:path";
import { RawClient, startDaemon } from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Sends `count` ETRNs in one pipelined burst and reads every reply. */
async function etrnBurst(port: number, count: number): Promise<string[]> {
  const c = await RawClient.connect(port);
  try {
    await c.reply();
    await c.send("EHLO flood.example\r\n");
    await c.reply();
    await c.send("ETRN example.com\r\n".repeat(count));
    const replies: string[] = [];
    for (let i = 0; i < count; i++) replies.push(await c.reply());
    await c.send("QUIT\r\n");
    await c.reply();
    return replies;
  } finally {
    c.close();
  }
}

Deno.test({
  name: "ETRN flood: 2 x 100 pipelined ETRNs on two threads make at most one qmgr trigger a second",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      "smtpd_peername_lookup = false\nsmtpd_listen_threads = 2\nsmtpd_junk_command_limit = 1000",
    );
    const arrivals: number[] = [];
    let bytes = "";
    const server = createServer((sock) => {
      arrivals.push(Date.now());
      sock.on("data", (b) => (bytes += b.toString()));
      sock.on("error", () => {});
    });
    try {
      await new Promise<void>((r) => server.listen(join(d.queueDir, "public", "qmgr"), () => r()));
      const t0 = Date.now();
      const replies = (await Promise.all([etrnBurst(d.port, 100), etrnBurst(d.port, 100)])).flat();
      const burstMs = Date.now() - t0;
      assert.equal(replies.length, 200);
      for (const r of replies) assert.equal(r, "250 2.0.0 Queuing started\r\n");
      // The request made during the quiet second goes out once at its end:
      // wait for it and for 1.5 s with no trigger after the last (bounded),
      // rather than a fixed time after the burst that a loaded host can outrun.
      const quietBy = Date.now() + 10_000;
      while (
        Date.now() < quietBy &&
        (arrivals.length < 2 || Date.now() - (arrivals.at(-1) as number) < 1500)
      ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const allowed = 2 + Math.floor(burstMs / 1000);
      assert.ok(
        arrivals.length >= 2 && arrivals.length <= allowed,
        `${arrivals.length} triggers for 200 ETRNs in ${burstMs} ms (allowed 2..${allowed})`,
      );
      // The server keeps 1 s between its writes; the arrivals are stamped
      // here, when this process gets to them: the first during the burst,
      // when it is busiest, so a gap can look a few hundred ms short. Writes
      // not held apart (one gate per thread) would come almost together.
      for (let i = 1; i < arrivals.length; i++) {
        const gap = (arrivals[i] as number) - (arrivals[i - 1] as number);
        assert.ok(gap >= 600, `triggers ${gap} ms apart: ${arrivals.map((a) => a - t0).join()}`);
      }
      assert.equal(bytes, "FADI".repeat(arrivals.length));
    } finally {
      server.close();
      await d.stop();
    }
  },
});

Deno.test({
  name: "NOOP flood: past smtpd_junk_command_limit each NOOP is an error; 421 at the hard limit",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      "smtpd_peername_lookup = false\nsmtpd_junk_command_limit = 5\nsmtpd_hard_error_limit = 3\nsmtpd_soft_error_limit = 100",
    );
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("EHLO flood.example\r\n");
      await c.reply();
      const replies: string[] = [];
      for (let i = 0; i < 30; i++) {
        await c.send("NOOP\r\n").catch(() => {});
        const r = await c.reply();
        if (r === "") break; // closed
        replies.push(r);
        if (r.startsWith("421")) break;
      }
      // As Postfix counts (junk_cmds++ > limit): NOOPs 7, 8 and 9 are errors 1-3.
      assert.equal(replies.filter((r) => r === "250 2.0.0 Ok\r\n").length, 9, replies.join(""));
      assert.equal(replies.at(-1), "421 4.7.0 mx.test.example Error: too many errors\r\n");
      assert.equal(await c.reply(), "", "the server closed the connection");
      await d.waitForLog(/too many errors after NOOP from unknown\[127\.0\.0\.1\]/);
    } finally {
      c.close();
      await d.stop();
    }
  },
});

Deno.test({
  name: "HELP flood: HELP is a junk command too; 421 at the hard limit",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      "smtpd_peername_lookup = false\nsmtpd_junk_command_limit = 5\nsmtpd_hard_error_limit = 3\nsmtpd_soft_error_limit = 100",
    );
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("EHLO flood.example\r\n");
      await c.reply();
      const replies: string[] = [];
      for (let i = 0; i < 30; i++) {
        await c.send("HELP\r\n").catch(() => {});
        const r = await c.reply();
        if (r === "") break; // closed
        replies.push(r);
        if (r.startsWith("421")) break;
      }
      // As for NOOP: HELPs 7, 8 and 9 are errors 1-3, then 421.
      assert.equal(replies.filter((r) => r.startsWith("214 ")).length, 9, replies.join(""));
      assert.equal(replies.at(-1), "421 4.7.0 mx.test.example Error: too many errors\r\n");
      await d.waitForLog(/too many errors after HELP from unknown\[127\.0\.0\.1\]/);
    } finally {
      c.close();
      await d.stop();
    }
  },
});

Deno.test({
  name: "Junk commands: VRFY and RSET count too; a delivered message starts the count anew",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      "smtpd_peername_lookup = false\nsmtpd_junk_command_limit = 2\nsmtpd_hard_error_limit = 2\nsmtpd_soft_error_limit = 100",
    );
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("EHLO flood.example\r\n");
      await c.reply();
      // Junk 1-3 are free (the 3rd has 2 before it, not more than the limit).
      for (const cmd of ["RSET", "VRFY u@example.com", "NOOP"]) {
        await c.send(`${cmd}\r\n`);
        assert.match(await c.reply(), /^2/);
      }
      // A message resets both counters, as in Postfix.
      await c.send(
        "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
      );
      for (let i = 0; i < 3; i++) await c.reply();
      await c.send("Subject: x\r\n\r\nbody\r\n.\r\n");
      assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as/);
      for (const cmd of ["RSET", "NOOP", "RSET"]) {
        await c.send(`${cmd}\r\n`);
        assert.match(await c.reply(), /^250 /, `${cmd} after the message`);
      }
      // Now the 4th and 5th junk commands are errors 1 and 2: 421.
      await c.send("VRFY u@example.com\r\n");
      assert.match(await c.reply(), /^252 /);
      await c.send("NOOP\r\n");
      assert.equal(await c.reply(), "250 2.0.0 Ok\r\n");
      assert.equal(await c.reply(), "421 4.7.0 mx.test.example Error: too many errors\r\n");
    } finally {
      c.close();
      await d.stop();
    }
  },
});
