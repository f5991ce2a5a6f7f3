import assert from "node:assert/strict";
import { checkRcptParams, type MailParams, parseMailParams } from "./esmtp_params.ts";
import { enhancedStatus, formatReply, type Reply } from "./reply.ts";

function isReply(r: MailParams | Reply): r is Reply {
  return "code" in r;
}

const OK_CASES: [string, MailParams][] = [
  ["", { size: undefined, body: undefined }],
  ["   ", { size: undefined, body: undefined }],
  ["SIZE=1000", { size: 1000, body: undefined }],
  ["size=0", { size: 0, body: undefined }],
  ["SIZE=999999999999999", { size: 999999999999999, body: undefined }],
  ["BODY=8BITMIME", { size: undefined, body: "8BITMIME" }],
  ["body=7bit", { size: undefined, body: "7BIT" }],
  ["BODY=8bitmime  SIZE=42", { size: 42, body: "8BITMIME" }],
  ["SIZE=1\tBODY=7BIT", { size: 1, body: "7BIT" }],
];

for (const [text, expected] of OK_CASES) {
  Deno.test(`parseMailParams() parses ${JSON.stringify(text)}`, () => {
    assert.deepEqual(parseMailParams(text), expected);
  });
}

const ERROR_CASES: [string, number, string, RegExp][] = [
  ["FOO=bar", 555, "5.5.4", /Unsupported option: FOO=bar/],
  ["SIZE=10 XYZ", 555, "5.5.4", /Unsupported option: XYZ/],
  ["SMTPUTF8", 555, "5.5.4", /Unsupported option: SMTPUTF8/],
  ["SIZE", 501, "5.5.4", /size syntax/],
  ["SIZE=", 501, "5.5.4", /size syntax/],
  ["SIZE=abc", 501, "5.5.4", /size syntax/],
  ["SIZE=-1", 501, "5.5.4", /size syntax/],
  ["SIZE=1.5", 501, "5.5.4", /size syntax/],
  ["SIZE=1234567890123456", 501, "5.5.4", /size syntax/],
  ["BODY=BINARYMIME", 501, "5.5.4", /BODY/],
  ["BODY", 501, "5.5.4", /BODY/],
];

for (const [text, code, status, textRe] of ERROR_CASES) {
  Deno.test(`parseMailParams() answers ${code} for ${JSON.stringify(text)}`, () => {
    const r = parseMailParams(text);
    assert.ok(isReply(r), "expected a reply");
    assert.equal(r.code, code);
    assert.equal(enhancedStatus(r), status);
    assert.match(r.text, textRe);
  });
}

Deno.test("checkRcptParams() accepts nothing but an empty parameter list", () => {
  assert.equal(checkRcptParams(""), undefined);
  assert.equal(checkRcptParams("  \t"), undefined);
  const r = checkRcptParams(" NOTIFY=NEVER ORCPT=rfc822;a@b");
  assert.ok(r);
  assert.equal(r.code, 555);
  assert.equal(r.text, "Unsupported option: NOTIFY=NEVER");
});

Deno.test("parseMailParams() takes AUTH= only when AUTH is offered, keeps it as sent, refuses a second", () => {
  const off = parseMailParams("AUTH=<>") as Reply;
  assert.equal(formatReply(off), "555 5.5.4 Unsupported option: AUTH=<>\r\n");
  assert.deepEqual(parseMailParams("AUTH=a+40b.example SIZE=10", { auth: true }), {
    size: 10,
    body: undefined,
    auth: "a+40b.example",
  });
  assert.deepEqual(parseMailParams("AUTH=<>", { auth: true }), {
    size: undefined,
    body: undefined,
  });
  const twice = parseMailParams("AUTH=<> AUTH=x", { auth: true }) as Reply;
  assert.equal(twice.code, 503);
  assert.equal(enhancedStatus(twice), "5.5.4");
  assert.deepEqual(parseMailParams("AUTH=a\u00e9b", { auth: true }), {
    size: undefined,
    body: undefined,
    auth: "a?b",
  });
});
