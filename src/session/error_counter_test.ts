import assert from "node:assert/strict";
import { REPLY } from "../protocol/reply.ts";
import { ErrorCounter } from "./error_counter.ts";
import type { SessionLimits } from "./limits.ts";

const LIMITS: SessionLimits = {
  timeoutMs: 1000,
  starttlsTimeoutMs: 1000,
  hardErrorLimit: 4,
  junkCommandLimit: 2,
  stressed: false,
};

Deno.test("ErrorCounter: error replies count, 421 and success replies do not; the hard limit ends it", () => {
  const c = new ErrorCounter(LIMITS, { smtpd_soft_error_limit: 100, smtpd_error_sleep_time: 0 });
  assert.equal(c.reply(REPLY.noopOk), undefined);
  assert.equal(c.reply(REPLY.lineTooLong), undefined);
  c.reply({ code: 421, detail: "4.2", text: "x" });
  assert.equal(c.atHardLimit, false);
  c.reply(REPLY.needMail);
  c.reply(REPLY.needMail);
  assert.equal(c.atHardLimit, false);
  c.reply(REPLY.needMail);
  assert.equal(c.atHardLimit, true);
  c.reset();
  assert.equal(c.atHardLimit, false);
});

Deno.test("ErrorCounter: error sleep up to the soft limit, one second per error past it (as the 1999 Postfix)", () => {
  const c = new ErrorCounter(LIMITS, { smtpd_soft_error_limit: 2, smtpd_error_sleep_time: 1 });
  assert.equal(c.reply(REPLY.noopOk), undefined);
  assert.equal(c.reply(REPLY.needMail), 1000);
  assert.equal(c.reply(REPLY.needMail), 1000, "2 errors: at the limit, not past it");
  assert.equal(c.reply(REPLY.noopOk), undefined);
  assert.equal(c.reply(REPLY.needMail), 3000, "3 errors: past the limit");
  assert.equal(c.reply(REPLY.noopOk), 3000); // the tarpit holds every reply
});

Deno.test("ErrorCounter: past smtpd_junk_command_limit each junk command is an error", () => {
  const c = new ErrorCounter(LIMITS, { smtpd_soft_error_limit: 100, smtpd_error_sleep_time: 0 });
  for (let i = 0; i < 10; i++) c.command("MAIL");
  assert.equal(c.atHardLimit, false);
  for (let i = 0; i < 3; i++) c.command("NOOP"); // up to the limit, and one more, are free
  assert.equal(c.atHardLimit, false);
  for (let i = 0; i < 4; i++) c.command("HELP");
  assert.equal(c.atHardLimit, true);
});
