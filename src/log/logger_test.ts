import assert from "node:assert/strict";
import { cutRecordText, Logger, MAX_RECORD_TEXT, StderrTurn } from "./logger.ts";

Deno.test("Logger: a record's text is sanitized and cut at 2000 bytes (Postfix's MSG_SYSLOG_RECLEN)", () => {
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

Deno.test("Logger: the cut counts UTF-8 bytes, as Postfix's, and never splits a character", () => {
  const lines: string[] = [];
  const log = new Logger({ tag: "postfix/smtpd", host: "mx", sinks: [(l) => lines.push(l)] });
  log.info(`message-id=<${"\u20ac".repeat(3000)}<18>Dec  4 01:00:00 mx postfix/smtpd[1]: FORGED>`);
  const [line] = lines;
  assert.ok(line);
  const text = line.slice(line.indexOf(": ") + 2, -1);
  const bytes = new TextEncoder().encode(text).length;
  assert.ok(bytes <= MAX_RECORD_TEXT && bytes > MAX_RECORD_TEXT - 3, `${bytes} bytes`);
  assert.doesNotMatch(line, /FORGED/);
  // Four-byte characters (surrogate pairs) are kept whole.
  const emoji = cutRecordText(`a${"\u{1f600}".repeat(600)}`);
  assert.equal(emoji, `a${"\u{1f600}".repeat(499)}`);
  assert.equal(cutRecordText("\u00e9".repeat(1000)), "\u00e9".repeat(1000));
  assert.equal(cutRecordText("\u00e9".repeat(1001)), "\u00e9".repeat(1000));
});

Deno.test("StderrTurn: one thread's batch at a time; a holder silent for 5 s is taken over", () => {
  const main = new StderrTurn();
  const other = new StderrTurn(main.buffer);
  assert.ok(main.take());
  assert.equal(other.take(), false, "held by a thread alive");
  main.give();
  assert.ok(other.take());
  assert.equal(main.take(), false);
  // The holder's thread ended mid-write: its time in the cell grows old.
  new BigInt64Array(main.buffer)[0] = BigInt(Date.now() - 6000) << 8n;
  assert.ok(main.take(), "taken over");
  // The old holder gives back nothing it no longer holds.
  other.give();
  assert.equal(other.take(), false);
  main.give();
  assert.ok(other.take());
});
