import assert from "node:assert/strict";
import { rawByteChar } from "../io/wire_text.ts";
import {
  closing,
  enhancedStatus,
  formatReply,
  heloOk,
  isError,
  REPLY,
  type Reply,
  reply,
  replyForLog,
  unsupportedOption,
} from "./reply.ts";

const FORMAT_CASES: [string, Reply, boolean, string][] = [
  ["one line", REPLY.noopOk, true, "250 2.0.0 Ok\r\n"],
  ["one line without enhanced codes", REPLY.noopOk, false, "250 Ok\r\n"],
  ["a reply without detail", REPLY.startData, true, "354 End data with <CR><LF>.<CR><LF>\r\n"],
  ["two lines without detail", reply(250, undefined, "a\nb"), true, "250-a\r\n250 b\r\n"],
  [
    "three lines with detail",
    reply(250, "0.0", "mx.example\nPIPELINING\n8BITMIME"),
    true,
    "250-2.0.0 mx.example\r\n250-2.0.0 PIPELINING\r\n250 2.0.0 8BITMIME\r\n",
  ],
  ["two lines, enhanced off", reply(550, "1.1", "a\nb"), false, "550-a\r\n550 b\r\n"],
  ["an empty text", reply(250, undefined, ""), true, "250 \r\n"],
];

for (const [what, r, enhanced, wire] of FORMAT_CASES) {
  Deno.test(`formatReply() formats ${what}`, () => {
    assert.equal(formatReply(r, enhanced), wire);
  });
}

Deno.test("formatReply() ends every line with CRLF and marks all but the last with -", () => {
  const wire = formatReply(reply(214, "0.0", "1\n2\n3\n4"));
  const lines = wire.split("\r\n");
  assert.equal(lines.pop(), "");
  assert.deepEqual(lines.map((l) => l.slice(0, 4)), ["214-", "214-", "214-", "214 "]);
  assert.ok(!/[^\r]\n/.test(wire));
});

Deno.test("enhancedStatus() takes the class digit from the basic code", () => {
  const cases: [Reply, string][] = [
    [reply(250, "1.5", "x"), "2.1.5"],
    [reply(452, "5.3", "x"), "4.5.3"],
    [reply(552, "3.4", "x"), "5.3.4"],
    [reply(554, "7.1", "x"), "5.7.1"],
    [reply(421, "4.2", "x"), "4.4.2"],
    [reply(220, undefined, "x"), ""],
  ];
  for (const [r, expected] of cases) assert.equal(enhancedStatus(r), expected);
});

for (const [name, r] of Object.entries(REPLY)) {
  Deno.test(`REPLY.${name} has an enhanced class that matches its code`, () => {
    const r2: Reply = r;
    assert.match(String(r2.code), /^[2-5]\d\d$/);
    if (r2.detail === undefined) {
      assert.equal(enhancedStatus(r2), "");
      return;
    }
    assert.match(r2.detail, /^\d{1,3}\.\d{1,3}$/);
    const status = enhancedStatus(r2);
    assert.equal(status[0], String(r2.code)[0]);
    assert.match(formatReply(r2), new RegExp(`^${r2.code} ${status.replaceAll(".", "\\.")} `));
  });
}

Deno.test("formatReply() renders catalog replies with the derived enhanced code", () => {
  assert.equal(formatReply(REPLY.badSyntax), "500 5.5.2 Error: bad syntax\r\n");
  assert.equal(formatReply(REPLY.tooManyHops), "554 5.4.6 Too many hops\r\n");
  assert.equal(formatReply(REPLY.messageTooBig), "552 5.3.4 Message size exceeds fixed limit\r\n");
  assert.equal(formatReply(REPLY.tooManyRecipients), "452 4.5.3 Error: too many recipients\r\n");
});

Deno.test("isError() is true for 4xx and 5xx only", () => {
  assert.equal(isError(REPLY.noopOk), false);
  assert.equal(isError(REPLY.startData), false);
  assert.equal(isError(REPLY.localError), true);
  assert.equal(isError(REPLY.badSyntax), true);
});

Deno.test("replyForLog() puts a multi-line reply on one line", () => {
  assert.equal(replyForLog(reply(554, "7.1", "a\nb")), "554 5.7.1 a b");
  assert.equal(replyForLog(REPLY.startData), "354 End data with <CR><LF>.<CR><LF>");
});

Deno.test("unsupportedOption() answers 555 5.5.4 naming the parameter", () => {
  assert.equal(formatReply(unsupportedOption("FOO=1")), "555 5.5.4 Unsupported option: FOO=1\r\n");
});

Deno.test("unsupportedOption() keeps a client's byte 0xa0-0xff that is not UTF-8, not 0x80-0x9f", () => {
  const name = `FOO=${rawByteChar(0xe9)}${rawByteChar(0x9b)}\u009b\u202e\u00e9`;
  assert.equal(
    unsupportedOption(name).text,
    `Unsupported option: FOO=${rawByteChar(0xe9)}???\u00e9`,
  );
});

Deno.test("closing() answers 421 with the host name first", () => {
  assert.equal(
    formatReply(closing("mx.example", "7.0", "Error: too many errors")),
    "421 4.7.0 mx.example Error: too many errors\r\n",
  );
});

Deno.test("formatReply() of a catalog reply or HELO's is the text of an equal new reply", () => {
  for (const r of Object.values(REPLY)) {
    assert.equal(formatReply(r), formatReply({ ...r }));
    assert.equal(formatReply(r, false), formatReply({ ...r }, false));
  }
  // HELO's reply is kept for its host name: a new name (a reload) gets its own.
  assert.equal(formatReply(heloOk("a.example")), "250 a.example\r\n");
  assert.equal(formatReply(heloOk("b.example")), "250 b.example\r\n");
  assert.equal(formatReply(heloOk("b.example")), "250 b.example\r\n");
  assert.equal(
    formatReply(heloOk("a.example", ["PIPELINING"])),
    "250-a.example\r\n250 PIPELINING\r\n",
  );
});
