/**
 * check_policy_service against policy servers that misbehave, with the
 * real daemon: time and descriptors stay bounded.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { makeWorkDir, RawClient, startDaemon } from "./_harness.ts";
import { hostileDns, synSent } from "./_hostile_servers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const has = (cmd: string) =>
  new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" }).outputSync()
    .success;

Deno.test({
  name:
    "check_policy_service: a connect that times out is abandoned, not left in SYN-SENT for the kernel's two minutes",
  ignore: !has("ss"),
  ...opts,
  fn: async () => {
    // Its TCP port never completes a connect (a full backlog, as a host that drops SYNs).
    const black = await hostileDns(60);
    const d = await startDaemon([
      `mynetworks = []`,
      `mydestination = ["example.com"]`,
      `smtpd_peername_lookup = false`,
      `smtpd_recipient_restrictions = ["reject_unauth_destination", "check_policy_service",` +
      ` "{ inet:127.0.0.1:${black.port}, timeout=1s, try_limit=1 }"]`,
    ].join("\n"));
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("HELO client.example.org\r\n");
      await c.reply();
      await c.send("MAIL FROM:<a@client.example.org>\r\n");
      await c.reply();
      for (let i = 0; i < 5; i++) {
        await c.send(`RCPT TO:<b${i}@example.com>\r\n`);
        assert.match(await c.reply(10000), /^451 4\.3\.5 .*Server configuration problem/);
      }
      await d.waitForLog(/problem talking to server .*timeout while connecting/);
      assert.equal(synSent(d.pid), 0, "connects left under way");
    } finally {
      c.close();
      await d.stop();
      await black.stop();
    }
  },
});

Deno.test({
  name:
    "SMTP AUTH: a Dovecot auth server that accepts and never answers costs EHLO Postfix's 10 s, not smtpd_timeout",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("dovecot-silent");
    const path = join(dir, "auth.sock");
    const listener = Deno.listen({ transport: "unix", path });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const c of listener) held.push(c);
    })().catch(() => {});
    const d = await startDaemon(
      [
        `mynetworks = []`,
        `mydestination = ["example.com"]`,
        `smtpd_sasl_auth_enable = true`,
        `smtpd_sasl_path = "${path}"`,
      ].join("\n"),
      { dir },
    );
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      const t0 = Date.now();
      await c.send("EHLO client.example.org\r\n");
      const ehlo = await c.reply(20_000);
      const took = Date.now() - t0;
      assert.match(ehlo, /^250 /m);
      assert.doesNotMatch(ehlo, /AUTH/);
      assert.ok(took >= 9_000 && took < 15_000, `took ${took} ms`);
    } finally {
      c.close();
      await d.stop();
      listener.close();
      await accepting;
      for (const h of held) h.close();
    }
  },
});
