import assert from "node:assert/strict";
import { Logger, MAX_RECORD_TEXT } from "./logger.ts";

Deno.test("Logger: a record's text is cut at 2000 characters (Postfix's MSG_SYSLOG_RECLEN), then sanitized", () => {
  const lines: string[] = [];
  const log = new Logger({ tag: "postfix/smtpd", host: "mx", sinks: [(l) => lines.push(l)] });
  log.info(`message-id=<${"a".repeat(9000)}<18>Dec  4 01:00:00 mx postfix/smtpd[1]: FORGED>`);
  log.warning(`x\u0085${"b".repeat(3000)}`);
  const [first, second] = lines;
  assert.ok(first && second);
  const text = first.slice(first.indexOf(": ") + 2, -1);
  assert.equal(text.length, MAX_RECORD_TEXT);
  assert.doesNotMatch(first, /FORGED/);
  assert.ok(first.endsWith("a\n"));
  assert.match(second, /: warning: x\?b+\n$/);
  assert.equal(second.slice(second.indexOf(": ") + 2, -1).length, MAX_RECORD_TEXT);
});
