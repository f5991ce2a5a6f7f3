/**
 * Postfix's client rate limits against the real daemon: the (N+1)th
 * connection, MAIL, RCPT or STARTTLS of one client within
 * anvil_rate_time_unit is refused with Postfix's reply and warning, and a
 * client in smtpd_client_event_limit_exceptions is not counted.
 */

import assert from "node:assert/strict";
import {
  greeted as greetedAs,
  makeWorkDir,
  RawClient,
  startDaemon,
  tlsCertConfig,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A session up to its greeting's answer. */
const greeted = (port: number, ehlo = "EHLO rate.example") => greetedAs(port, ehlo);

Deno.test({
  name:
    "smtpd_client_connection_rate_limit = 2: the 3rd connection within the time unit gets 421 4.7.0",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      "smtpd_client_connection_rate_limit = 2\nsmtpd_client_event_limit_exceptions = []",
    );
    const seen: string[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const c = await RawClient.connect(d.port);
        seen.push((await c.reply()).trim());
        c.close();
      }
      assert.match(seen[0] as string, /^220 /);
      assert.match(seen[1] as string, /^220 /);
      assert.equal(
        seen[2],
        "421 4.7.0 mx.test.example Error: too many connections from 127.0.0.1",
      );
      await d.waitForLog("Connection rate limit exceeded: 3 from [127.0.0.1] for service smtp");
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "a connection refused for smtpd_client_connection_count_limit counts toward the connection rate, as Postfix's anvil counts it",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      "smtpd_client_connection_count_limit = 1\nsmtpd_client_connection_rate_limit = 3\n" +
        "smtpd_client_event_limit_exceptions = []",
    );
    const held = await RawClient.connect(d.port);
    try {
      assert.match(await held.reply(), /^220 /);
      // A client at its concurrency limit keeps connecting: refused, and counted.
      for (let i = 0; i < 2; i++) {
        const c = await RawClient.connect(d.port);
        assert.equal(
          await c.reply(),
          "421 4.7.0 mx.test.example Error: too many connections from 127.0.0.1\r\n",
        );
        c.close();
      }
      await d.waitForLog(/(Connection concurrency limit exceeded: 2 from \[127\.0\.0\.1\][^]*){2}/);
      // Its only session ends: the next connection is its 4th within the
      // time unit, over the rate of 3 (Postfix: "Connection rate limit exceeded: 4").
      await held.send("QUIT\r\n");
      assert.match(await held.reply(), /^221 /);
      held.close();
      await d.waitForLog(/disconnect from /);
      const next = await RawClient.connect(d.port);
      assert.equal(
        await next.reply(),
        "421 4.7.0 mx.test.example Error: too many connections from 127.0.0.1\r\n",
      );
      next.close();
      await d.waitForLog("Connection rate limit exceeded: 4 from [127.0.0.1] for service smtp");
      // The refusals for concurrency were not also logged as over the rate.
      assert.doesNotMatch(d.log(), /Connection rate limit exceeded: [23] /);
    } finally {
      held.close();
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "smtpd_client_message_rate_limit and _recipient_rate_limit: 450 4.7.1 past the limit; exceptions are not counted",
  ...opts,
  fn: async () => {
    const limits = "smtpd_client_message_rate_limit = 2\nsmtpd_client_recipient_rate_limit = 3\n" +
      'mydestination = ["example.com"]';
    const d = await startDaemon(`${limits}\nsmtpd_client_event_limit_exceptions = []`);
    try {
      const c = await greeted(d.port);
      const replies: string[] = [];
      for (const line of ["MAIL FROM:<a@x.example>", "RSET", "MAIL FROM:<a@x.example>", "RSET"]) {
        await c.send(`${line}\r\n`);
        replies.push((await c.reply()).trim());
      }
      await c.send("MAIL FROM:<a@x.example>\r\n");
      assert.equal((await c.reply()).trim(), "450 4.7.1 Error: too much mail from 127.0.0.1");
      c.close();
      // A new session of the same client: the count goes on.
      const c2 = await greeted(d.port);
      await c2.send("MAIL FROM:<a@x.example>\r\n");
      assert.match(await c2.reply(), /^450 4\.7\.1 /);
      c2.close();
      assert.deepEqual(replies, ["250 2.1.0 Ok", "250 2.0.0 Ok", "250 2.1.0 Ok", "250 2.0.0 Ok"]);
      await d.waitForLog(
        "Message delivery request rate limit exceeded: 3 from unknown[127.0.0.1] for service smtp",
      );
    } finally {
      await d.stop();
    }
    // Recipients: a higher message limit, 3 recipients.
    const r = await startDaemon(
      'smtpd_client_recipient_rate_limit = 3\nmydestination = ["example.com"]\n' +
        "smtpd_client_event_limit_exceptions = []",
    );
    try {
      const c = await greeted(r.port);
      await c.send("MAIL FROM:<a@x.example>\r\n");
      await c.reply();
      const got: string[] = [];
      for (let i = 0; i < 4; i++) {
        await c.send(`RCPT TO:<u${i}@example.com>\r\n`);
        got.push((await c.reply()).trim());
      }
      assert.deepEqual(got, [
        "250 2.1.5 Ok",
        "250 2.1.5 Ok",
        "250 2.1.5 Ok",
        "450 4.7.1 Error: too many recipients from 127.0.0.1",
      ]);
      c.close();
      await r.waitForLog(
        "Recipient address rate limit exceeded: 4 from unknown[127.0.0.1] for service smtp",
      );
    } finally {
      await r.stop();
    }
    // The default exceptions ($mynetworks, 127.0.0.0/8 here): never counted.
    const x = await startDaemon(limits);
    try {
      const c = await greeted(x.port);
      for (let i = 0; i < 5; i++) {
        await c.send("MAIL FROM:<a@x.example>\r\nRSET\r\n");
        assert.equal((await c.reply()).trim(), "250 2.1.0 Ok");
        await c.reply();
      }
      c.close();
    } finally {
      await x.stop();
    }
  },
});

Deno.test({
  name:
    "rate limits count MAIL and RCPT as Postfix does: not a command refused for want of FROM:/TO: and an argument",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      "smtpd_client_message_rate_limit = 1\nsmtpd_client_recipient_rate_limit = 1\n" +
        'mydestination = ["example.com"]\nsmtpd_client_event_limit_exceptions = []',
    );
    try {
      const c = await greeted(d.port);
      const got: string[] = [];
      for (
        const line of [
          "MAIL TO:<a@x.example>",
          "MAIL FROM:",
          "MAIL FROM:<a@x.example>",
          "RCPT FROM:<u@example.com>",
          "RCPT TO:",
          "RCPT TO:<u@example.com>",
          "RCPT TO:<v@example.com>",
          "RSET",
          "MAIL FROM:<a@x.example>",
        ]
      ) {
        await c.send(`${line}\r\n`);
        got.push((await c.reply()).trim().slice(0, 9));
      }
      c.close();
      // The malformed ones are refused and not counted; the 2nd good RCPT
      // and the 2nd good MAIL are over their limits of 1.
      assert.deepEqual(got, [
        "501 5.5.4",
        got[1],
        "250 2.1.0",
        "501 5.5.4",
        got[4],
        "250 2.1.5",
        "450 4.7.1",
        "250 2.0.0",
        "450 4.7.1",
      ]);
      assert.match(got[1] as string, /^501 /);
      assert.match(got[4] as string, /^501 /);
      await d.waitForLog(
        "Message delivery request rate limit exceeded: 2 from unknown[127.0.0.1] for service smtp",
      );
      await d.waitForLog(
        "Recipient address rate limit exceeded: 2 from unknown[127.0.0.1] for service smtp",
      );
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "smtpd_client_new_tls_session_rate_limit = 1: a 2nd STARTTLS within the time unit gets 454 4.7.0",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("rate-tls");
    const d = await startDaemon(
      `${await tlsCertConfig(dir)}\nsmtpd_client_new_tls_session_rate_limit = 1\n` +
        "smtpd_client_event_limit_exceptions = []",
      { dir },
    );
    try {
      const first = await greeted(d.port);
      await first.send("STARTTLS\r\n");
      assert.match(await first.reply(), /^220 2\.0\.0 /);
      first.close();
      const second = await greeted(d.port);
      await second.send("STARTTLS\r\n");
      assert.equal(
        (await second.reply()).trim(),
        "454 4.7.0 Error: too many new TLS sessions from unknown[127.0.0.1]",
      );
      // The session goes on in plain text.
      await second.send("NOOP\r\n");
      assert.match(await second.reply(), /^250 /);
      second.close();
      await d.waitForLog(
        "New TLS session rate limit exceeded: 2 from unknown[127.0.0.1] for service smtp",
      );
    } finally {
      await d.stop();
    }
  },
});
