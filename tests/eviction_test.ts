/**
 * At the connection limit, or out of descriptors, a session that has long
 * waited for its client gives its place to a new client: a flood of idle
 * connections cannot lock everyone else out.
 *
 * @module
 */

import assert from "node:assert/strict";
import { RawClient, startDaemon } from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "at default_process_limit a new client takes the place of the longest-idle session",
  ...opts,
  fn: async () => {
    const d = await startDaemon(`smtpd_peername_lookup = false\ndefault_process_limit = 3`);
    const clients: RawClient[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const c = await RawClient.connect(d.port);
        assert.match(await c.reply(), /^220 /);
        clients.push(c);
        await new Promise((r) => setTimeout(r, 100));
      }
      // The three are silent for longer than the idle threshold (1 s).
      await new Promise((r) => setTimeout(r, 2500));
      const fresh = await RawClient.connect(d.port);
      clients.push(fresh);
      assert.match(await fresh.reply(), /^220 /);
      // The oldest idle session was told why and closed.
      assert.match(
        await clients[0]!.reply(),
        /^421 4\.3\.2 mx\.test\.example Error: idle session closed to make room for others/,
      );
      // The newcomer is served normally.
      await fresh.send("HELO fresh.example\r\n");
      assert.match(await fresh.reply(), /^250 /);
      await d.waitForLog(/closed the idle session of \[127\.0\.0\.1\] \(silent \d+ ms\)/);
    } finally {
      for (const c of clients) c.close();
      await d.stop();
    }
  },
});

Deno.test({
  name: "at default_process_limit a busy session is not closed: the new client is refused",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      `smtpd_peername_lookup = false\ndefault_process_limit = 2\nsmtpd_stress_threshold = 0`,
    );
    const clients: RawClient[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const c = await RawClient.connect(d.port);
        assert.match(await c.reply(), /^220 /);
        clients.push(c);
      }
      // They keep talking: none is idle for 1 s.
      for (let round = 0; round < 6; round++) {
        for (const c of clients) {
          await c.send("NOOP\r\n");
          assert.match(await c.reply(), /^250 /);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      const late = await RawClient.connect(d.port);
      clients.push(late);
      assert.match(await late.reply(), /^421 4\.3\.2 .*too many connections/);
      await clients[0]!.send("NOOP\r\n");
      assert.match(await clients[0]!.reply(), /^250 /);
    } finally {
      for (const c of clients) c.close();
      await d.stop();
    }
  },
});

Deno.test({
  name: "at default_process_limit a slow client (a line a half second) gives way, in DATA or not",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      `smtpd_peername_lookup = false\ndefault_process_limit = 2\nsmtpd_stress_threshold = 0\n` +
        `mydestination = ["mx.test.example"]`,
    );
    const clients: RawClient[] = [];
    try {
      // One drips a message body, one repeats EHLO: neither is ever silent
      // for the idle threshold, and the first is in a mail transaction.
      const inData = await RawClient.connect(d.port);
      clients.push(inData);
      assert.match(await inData.reply(), /^220 /);
      for (
        const [cmd, want] of [["EHLO a.example", /^250/], ["MAIL FROM:<a@a.example>", /^250/], [
          "RCPT TO:<postmaster@mx.test.example>",
          /^250/,
        ], ["DATA", /^354/]] as const
      ) {
        await inData.send(`${cmd}\r\n`);
        assert.match(await inData.reply(), want);
      }
      const chatty = await RawClient.connect(d.port);
      clients.push(chatty);
      assert.match(await chatty.reply(), /^220 /);
      const refused = await RawClient.connect(d.port);
      assert.match(await refused.reply(), /^421 4\.3\.2 .*too many connections/);
      refused.close();
      // 10 s of waiting for them at a few bytes a second makes them slow.
      const until = Date.now() + 11_000;
      while (Date.now() < until) {
        await inData.send("x\r\n");
        await chatty.send("EHLO b.example\r\n");
        assert.match(await chatty.reply(), /^250/);
        await new Promise((r) => setTimeout(r, 500));
      }
      const fresh = await RawClient.connect(d.port);
      clients.push(fresh);
      assert.match(await fresh.reply(), /^220 /);
      await fresh.send("HELO fresh.example\r\n");
      assert.match(await fresh.reply(), /^250 /);
      await d.waitForLog(
        /closed the slow session of \[127\.0\.0\.1\] \(\d+ bytes in \d+ ms of waiting\) to make room/,
      );
    } finally {
      for (const c of clients) c.close();
      await d.stop();
    }
  },
});
