/**
 * A clean stop (SIGTERM) while a client is in the middle of DATA or BDAT
 * and does not finish within the stop's grace period: the session's queue
 * file, already partly written, must be removed, not left in incoming/ for
 * the next start to set aside in corrupt/ as if the daemon had crashed.
 * The same in stand-alone mode, ended by a signal mid-DATA: its file in
 * maildrop/ is removed, as Postfix's postdrop removes its own.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  allEntries,
  makeWorkDir,
  RawClient,
  ROOT,
  sleep,
  smtpdArgs,
  startDaemon,
  waitFor,
  writeConfig,
} from "./_harness.ts";
import { fakePolicyServer } from "./_policy_servers.ts";

const BODY = "Subject: stop\r\n\r\n" + ("y".repeat(1022) + "\r\n").repeat(400);

for (const threads of [1, 2]) {
  for (const verb of ["DATA", "BDAT"]) {
    Deno.test({
      name:
        `SIGTERM with a client stalled in ${verb} (${threads} listener threads): its partly written file is removed`,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const d = await startDaemon(
          `message_size_limit = 10000000\nsmtpd_listen_threads = ${threads}\n`,
        );
        const c = await RawClient.connect(d.port);
        try {
          await c.reply();
          await c.send("EHLO stop.example\r\n");
          await c.reply();
          await c.send("MAIL FROM:<a@example.org>\r\n");
          assert.match(await c.reply(), /^250/);
          await c.send("RCPT TO:<u@example.com>\r\n");
          assert.match(await c.reply(), /^250/);
          if (verb === "DATA") {
            await c.send("DATA\r\n");
            assert.match(await c.reply(), /^354/);
            await c.send(BODY); // no end-of-data: the client stalls here
          } else {
            await c.send(`BDAT ${BODY.length}\r\n${BODY}`);
            assert.match(await c.reply(), /^250/);
          }
          // More than 256 KiB: the file has been created and written to.
          await waitFor(
            "a file with data",
            async () => (await allEntries(d.queueDir)).length === 1,
            5000,
          );
          await d.stop("SIGTERM");
          await sleep(100);
          assert.deepEqual(
            await allEntries(d.queueDir),
            [],
            `left in incoming/ after a clean stop:\n${d.log()}`,
          );
        } finally {
          c.close();
          await d.stop("SIGKILL");
        }
      },
    });
  }
}

for (const threads of [1, 2]) {
  for (const verb of ["DATA", "BDAT"]) {
    Deno.test({
      name:
        `SIGTERM while ${verb}'s end-of-data policy server has not answered (${threads} listener threads): the written file is removed`,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        // The whole message is in; the session waits for the policy server,
        // not for its client, so it does not see its connection close.
        const policy = await fakePolicyServer("silent");
        const d = await startDaemon(
          `message_size_limit = 10000000\nsmtpd_listen_threads = ${threads}\n` +
            `smtpd_end_of_data_restrictions = ["check_policy_service", "inet:127.0.0.1:${policy.port}"]\n` +
            "smtpd_policy_service_timeout = 60\n",
        );
        const c = await RawClient.connect(d.port);
        try {
          await c.reply();
          await c.send("EHLO stop.example\r\n");
          await c.reply();
          await c.send("MAIL FROM:<a@example.org>\r\n");
          assert.match(await c.reply(), /^250/);
          await c.send("RCPT TO:<u@example.com>\r\n");
          assert.match(await c.reply(), /^250/);
          if (verb === "DATA") {
            await c.send("DATA\r\n");
            assert.match(await c.reply(), /^354/);
            await c.send(`${BODY}.\r\n`);
          } else {
            await c.send(`BDAT ${BODY.length} LAST\r\n${BODY}`);
          }
          await waitFor(
            "the end-of-data request",
            () => Promise.resolve(policy.requests().length === 1),
            10000,
          );
          // More than 256 KiB: the file has been created and written to.
          assert.equal((await allEntries(d.queueDir)).length, 1);
          await d.stop("SIGTERM");
          assert.deepEqual(
            await allEntries(d.queueDir),
            [],
            `left in incoming/ after a clean stop:\n${d.log()}`,
          );
        } finally {
          c.close();
          await d.stop("SIGKILL");
          policy.stop();
        }
      },
    });
  }
}

for (const signal of ["SIGTERM", "SIGHUP", "SIGINT"] as const) {
  Deno.test({
    name: `smtpd stdin ended by ${signal} in DATA: its partly written maildrop file is removed`,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const dir = await makeWorkDir("stop-stdin");
      const { configFile, queueDir } = await writeConfig(dir, "message_size_limit = 10000000\n");
      const child = new Deno.Command(Deno.execPath(), {
        args: await smtpdArgs(["stdin", "-c", configFile]),
        cwd: ROOT,
        stdin: "piped",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const log = new Response(child.stderr).text();
      const input = child.stdin.getWriter();
      try {
        const session = "EHLO stop.example\r\nMAIL FROM:<a@example.org>\r\n" +
          "RCPT TO:<u@example.com>\r\nDATA\r\n" + BODY; // no end-of-data
        await input.write(new TextEncoder().encode(session));
        await waitFor(
          "a file with data",
          async () => (await allEntries(queueDir, "maildrop")).length === 1,
          10000,
        );
        child.kill(signal);
        const status = await child.status;
        assert.equal(status.success, false);
        assert.deepEqual(
          await Array.fromAsync(Deno.readDir(join(queueDir, "maildrop")), (e) => e.name),
          [],
          `left in maildrop/ after ${signal}:\n${await log}`,
        );
      } finally {
        await input.close().catch(() => {});
        try {
          child.kill("SIGKILL");
        } catch { /* ended */ }
        await child.status;
        await log;
      }
    },
  });
}

Deno.test({
  name: "a daemon that cannot listen leaves no pre-created queue files behind",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("stop-busy");
    const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const port = (busy.addr as Deno.NetAddr).port;
      const { configFile, queueDir } = await writeConfig(
        dir,
        `smtpd_listen = ["127.0.0.1:${port}"]\n`,
      );
      const r = await new Deno.Command(Deno.execPath(), {
        args: await smtpdArgs(["serve", "-c", configFile]),
        cwd: ROOT,
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
      const log = new TextDecoder().decode(r.stderr);
      assert.equal(r.code, 1, log);
      assert.match(log, /cannot listen on 127\.0\.0\.1:\d+: Address already in use/);
      assert.deepEqual(
        await Array.fromAsync(Deno.readDir(join(queueDir, "incoming")), (e) => e.name),
        [],
      );
    } finally {
      busy.close();
    }
  },
});
