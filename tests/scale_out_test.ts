/**
 * The scale-out recipe (README "Several instances behind HAProxy"): two
 * instances that share nothing behind one HAProxy with PROXY v2, a
 * smtp-source load through it, and every message found exactly once across
 * the two queues.
 *
 * @module
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import {
  type Haproxy,
  makeWorkDir,
  ROOT,
  run,
  smtpdArgs,
  startDaemon,
  startHaproxy,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const have = async (cmd: string) => (await run("sh", ["-c", `command -v ${cmd}`])).code === 0;
const ready = await have("haproxy") && await have("smtp-source");

const INSTANCE = [
  'smtpd_upstream_proxy_protocol = "haproxy"',
  'mydestination = ["example.com"]',
  "smtpd_recipient_limit = 1000",
].join("\n");
const SENT = 400;

/** The recipients of every complete queue file of one instance (`smtpd queue list --json`). */
async function recipients(queueDir: string): Promise<string[]> {
  const configFile = join(dirname(queueDir), "smtpd.toml").slice(ROOT.length);
  const r = await run(
    Deno.execPath(),
    await smtpdArgs(["queue", "list", "--json", "-c", configFile]),
  );
  assert.equal(r.code, 0, r.stderr);
  const entries = JSON.parse(r.stdout) as { complete: boolean; recipients: string[] }[];
  return entries.filter((e) => e.complete).flatMap((e) => e.recipients);
}

Deno.test({
  name:
    `two instances behind HAProxy (PROXY v2): smtp-source sends ${SENT}, each found exactly once`,
  ignore: !ready,
  ...opts,
  fn: async () => {
    const a = await startDaemon(INSTANCE);
    const b = await startDaemon(INSTANCE);
    let haproxy: Haproxy | undefined;
    try {
      haproxy = await startHaproxy(await makeWorkDir("scaleout"), {
        servers: [a.port, b.port],
        proxy: "send-proxy-v2",
        maxconn: 200,
        timeout: "60s",
      });
      const front = haproxy.port;
      // -N: each message's recipient starts with its own sequence number, so a
      // message stored twice (or lost) shows in the recipients.
      const sent = await run("smtp-source", [
        "-s",
        "10",
        "-m",
        String(SENT),
        "-N",
        "-f",
        "load@sender.example",
        "-t",
        "user@example.com",
        `127.0.0.1:${front}`,
      ], { timeoutMs: 120000 });
      assert.equal(sent.code, 0, sent.stderr);
      const inA = await recipients(a.queueDir);
      const inB = await recipients(b.queueDir);
      const all = [...inA, ...inB];
      const numbers = all.map((r) => Number(/^(\d+)user@example\.com$/.exec(r)?.[1] ?? NaN));
      const distinct = new Set(numbers);
      // deno-lint-ignore no-console
      console.log(
        `sent ${SENT}, found ${all.length} (${inA.length} + ${inB.length}), ` +
          `distinct ${distinct.size}, duplicates ${all.length - distinct.size}`,
      );
      assert.ok(inA.length > 0 && inB.length > 0, "both instances served");
      assert.equal(all.length, SENT);
      assert.equal(distinct.size, SENT);
      // smtp-source numbers from 1.
      for (let i = 1; i <= SENT; i++) assert.ok(distinct.has(i), `message ${i} missing`);
      // The queue files name the real client (HAProxy's PROXY header), not HAProxy.
      assert.match(a.log() + b.log(), /: client=\S*\[127\.0\.0\.1\]/);
    } finally {
      await haproxy?.stop();
      await a.stop();
      await b.stop();
    }
  },
});
