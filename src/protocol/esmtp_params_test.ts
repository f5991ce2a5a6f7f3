import assert from "node:assert/strict";
import { checkRcptParams, type MailParams, parseMailParams } from "./esmtp_params.ts";
import { enhancedStatus, type Reply } from "./reply.ts";

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
