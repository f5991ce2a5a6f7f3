/**
 * Sessions take turns on the thread they share (src/io/turns.ts): a
 * client that pipelines a long burst of commands does not keep the thread
 * until it has run all of them. A second client doing HELO round trips
 * meanwhile counts how many it gets while the burst is served; without
 * turns it gets one per 64 KiB read of the burst (about ten).
 */

import assert from "node:assert/strict";
import { greeted, RawClient, startDaemon } from "./_harness.ts";
import { note } from "./_parity.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const RECIPIENTS = 20_000;

Deno.test({
  name: "a client pipelining 20,000 RCPTs leaves turns to another session on the same thread",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      `smtpd_peername_lookup = false\nsmtpd_recipient_limit = ${RECIPIENTS}\n` +
        "smtpd_listen_threads = 1",
    );
    const hog = await greeted(d.port, "EHLO hog.example");
    const probe = await greeted(d.port, "HELO probe.example");
    try {
      await hog.send("MAIL FROM:<hog@example.com>\r\n");
      assert.match(await hog.reply(), /^250 /);
      let burstDone = false;
      let during = 0;
      let probeError: unknown;
      const probing = (async () => {
        try {
          while (!burstDone) {
            await probe.send("HELO probe.example\r\n");
            assert.match(await probe.reply(), /^250 /);
            during++;
          }
        } catch (e) {
          probeError = e;
        }
      })();
      let burst = "";
      for (let i = 0; i < RECIPIENTS; i++) burst += `RCPT TO:<user${i}@example.com>\r\n`;
      // Sent while its replies are read: the server stops reading when its
      // replies are not taken.
      const sending = hog.send(burst);
      let accepted = 0;
      for (let i = 0; i < RECIPIENTS; i++) {
        if ((await hog.reply(30_000)).startsWith("250 ")) accepted++;
      }
      burstDone = true;
      await sending;
      await probing;
      assert.equal(probeError, undefined);
      assert.equal(accepted, RECIPIENTS);
      // With turns the probe gets about one round trip per pause (hundreds);
      // without them one per read of the burst (about 10).
      assert.ok(during >= 50, `${during} probe round trips while the burst was served`);
      note(`${during} probe round trips while ${RECIPIENTS} RCPTs were served`);
    } finally {
      hog.close();
      probe.close();
      await d.stop();
    }
  },
});

/** Counts reply lines on a raw connection until `want` have come (or the connection ends). */
async function countLines(conn: Deno.TcpConn, want: number): Promise<number> {
  const buf = new Uint8Array(1 << 16);
  let lines = 0;
  while (lines < want) {
    const n = await conn.read(buf);
    if (n === null) break;
    for (let i = 0; i < n; i++) if (buf[i] === 10) lines++;
  }
  return lines;
}

Deno.test({
  name: "a lone client pipelining 300,000 HELO does not keep new clients from their greeting",
  ...opts,
  fn: async () => {
    const d = await startDaemon("smtpd_peername_lookup = false\nsmtpd_listen_threads = 1");
    const HELOS = 300_000;
    const hog = await Deno.connect({ hostname: "127.0.0.1", port: d.port });
    try {
      assert.equal(await countLines(hog, 1), 1); // the greeting
      const burst = new TextEncoder().encode("HELO hog.example\r\n".repeat(HELOS));
      let burstDone = false;
      const answered = countLines(hog, HELOS).then((n) => {
        burstDone = true;
        return n;
      });
      const sending = (async () => {
        let off = 0;
        while (off < burst.length) off += await hog.write(burst.subarray(off));
      })();
      // New clients, one after another, while the burst is served: without
      // turns the first waits for the whole burst (one greeting in all).
      let greeted = 0;
      while (!burstDone && greeted < 20) {
        const c = await RawClient.connect(d.port);
        const reply = await c.reply(60_000);
        c.close();
        if (burstDone) break;
        assert.match(reply, /^220 /);
        greeted++;
      }
      await sending;
      assert.equal(await answered, HELOS);
      assert.ok(greeted >= 5, `${greeted} new clients greeted while the burst was served`);
      note(`${greeted} new clients greeted while ${HELOS} pipelined HELO were served`);
    } finally {
      hog.close();
      await d.stop();
    }
  },
});
