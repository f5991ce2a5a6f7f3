import assert from "node:assert/strict";
import { quoteAddress } from "./quote_address.ts";
import { Logger } from "./logger.ts";
import { MailLog } from "./mail_log.ts";

const CASES: [input: string, expected: string][] = [
  ["", ""],
  ["user@example.com", "user@example.com"],
  ["first.last+tag@example.com", "first.last+tag@example.com"],
  ["postmaster", "postmaster"],
  ["a> to=<x@example.com", '"a> to=<x"@example.com'],
  ["john doe@example.com", '"john doe"@example.com'],
  ["a..b@example.com", '"a..b"@example.com'],
  [".a@example.com", '".a"@example.com'],
  ["a.@example.com", '"a."@example.com'],
  ['q"uote\\d@example.com', '"q\\"uote\\\\d"@example.com'],
  ["a@b@example.com", '"a@b"@example.com'],
  ["@example.com", '""@example.com'],
  ["@relay.example:a b@example.com", '@relay.example:"a b"@example.com'],
  ["grüße@example.com", "grüße@example.com"],
];

for (const [input, expected] of CASES) {
  Deno.test(`quoteAddress(${JSON.stringify(input)}) is ${JSON.stringify(expected)}`, () => {
    assert.equal(quoteAddress(input), expected);
  });
}

Deno.test("MailLog.reject: a quoted local part cannot fake a to= field", () => {
  const lines: string[] = [];
  const log = new MailLog(new Logger({ tag: "t", host: "h", sinks: [(l) => lines.push(l)] }));
  log.reject({
    stage: "RCPT",
    peer: { name: "unknown", address: "192.0.2.1" },
    reply: { code: 554, detail: "7.1", text: "<u@example.com>: Relay access denied" },
    from: "a> to=<x@example.com",
    to: "u@example.com",
    proto: "ESMTP",
    helo: "h",
  });
  log.queued("ID1", "b> to=<y@example.com", 10, 1);
  assert.equal(lines.length, 2);
  assert.match(lines[0] as string, / from=<"a> to=<x"@example\.com> to=<u@example\.com> proto=/);
  assert.equal(
    (lines[0] as string).match(/ to=</g)?.length,
    2,
    "one real to= and one inside quotes",
  );
  assert.match(lines[1] as string, /: ID1: from=<"b> to=<y"@example\.com>, size=10/);
});
