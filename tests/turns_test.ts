/**
 * Sessions take turns on the thread they share (src/session/turns.ts): a
 * client that pipelines a long burst of commands does not keep the thread
 * until it has run all of them. A second client doing HELO round trips
 * meanwhile counts how many it gets while the burst is served; without
 * turns it gets one per 64 KiB read of the burst (about ten).
 */

import assert from "node:assert/strict";
import { greeted, startDaemon } from "./_harness.ts";
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
