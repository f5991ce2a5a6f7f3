import assert from "node:assert/strict";
import {
  declaresSmtputf8,
  DSN_NOTIFY,
  type MailParams,
  parseMailParams,
  parseRcptParams,
  type RcptParams,
} from "./esmtp_params.ts";
import { enhancedStatus, type Reply } from "./reply.ts";

function isReply(r: MailParams | RcptParams | Reply): r is Reply {
  return "code" in r;
}

const ON = { smtputf8: true, dsn: true };
const NONE = {
  size: undefined,
  body: undefined,
  smtputf8: false,
  ret: undefined,
  envid: undefined,
};

const OK_CASES: [string, Partial<MailParams>][] = [
  ["", {}],
  ["   ", {}],
  ["SIZE=1000", { size: 1000 }],
  ["size=0", { size: 0 }],
  ["SIZE=999999999999999", { size: 999999999999999 }],
  ["SIZE=0000000000000000000001024", { size: 1024 }],
  ["SIZE=9223372036854775807", { size: 9223372036854775807 }],
  ["BODY=8BITMIME", { body: "8BITMIME" }],
  ["body=7bit", { body: "7BIT" }],
  ["BODY=8bitmime  SIZE=42", { size: 42, body: "8BITMIME" }],
  ["SIZE=1\tBODY=7BIT", { size: 1, body: "7BIT" }],
  ["SMTPUTF8", { smtputf8: true }],
  ["smtputf8 BODY=8BITMIME", { smtputf8: true, body: "8BITMIME" }],
  ["RET=FULL", { ret: "FULL" }],
  ["ret=hdrs", { ret: "HDRS" }],
  ["ENVID=QQ314159", { envid: "QQ314159" }],
  ["ENVID=a+2Bb+3Dc+20d", { envid: "a+b=c d" }],
  [`ENVID=${"e".repeat(100)}`, { envid: "e".repeat(100) }],
  // RFC 3461 §4.4 counts the 100 characters before the xtext encoding.
  [`ENVID=${"a+2Bb+3D".repeat(25)}`, { envid: "a+b=".repeat(25) }],
  ["RET=HDRS ENVID=id1 SMTPUTF8 SIZE=5", { ret: "HDRS", envid: "id1", smtputf8: true, size: 5 }],
];

for (const [text, expected] of OK_CASES) {
  Deno.test(`parseMailParams() parses ${JSON.stringify(text)}`, () => {
    assert.deepEqual(parseMailParams(text, ON), { ...NONE, ...expected });
  });
}

const ERROR_CASES: [string, number, string, RegExp, { smtputf8?: boolean; dsn?: boolean }?][] = [
  ["FOO=bar", 555, "5.5.4", /Unsupported option: FOO=bar/],
  ["SIZE=10 XYZ", 555, "5.5.4", /Unsupported option: XYZ/],
  // Echoed as the log shows it: a C1 CSI, a line separator, a bidi override as "?".
  ["X\u009b31m\u2028\u202e=\u00e9", 555, "5.5.4", /^Unsupported option: X\?31m\?\?=\u00e9$/],
  // As Postfix 3.7: SIZE without "=" is no SIZE= parameter (session_edges_postfix_test).
  ["SIZE", 555, "5.5.4", /^Unsupported option: SIZE$/],
  ["size", 555, "5.5.4", /^Unsupported option: size$/],
  ["SIZE=", 501, "5.5.4", /size syntax/],
  ["SIZE=abc", 501, "5.5.4", /size syntax/],
  ["SIZE=-1", 501, "5.5.4", /size syntax/],
  ["SIZE=1.5", 501, "5.5.4", /size syntax/],
  ["SIZE=+12", 501, "5.5.4", /size syntax/],
  ["SIZE=9223372036854775808", 552, "5.3.4", /^Message size exceeds file system imposed limit$/],
  [`SIZE=${"9".repeat(200)}`, 552, "5.3.4", /file system imposed limit/],
  // As Postfix's smtpd: only BODY=7BIT and BODY=8BITMIME are parameters it knows.
  ["BODY=BINARYMIME", 555, "5.5.4", /^Unsupported option: BODY=BINARYMIME$/],
  ["BODY=x", 555, "5.5.4", /^Unsupported option: BODY=x$/],
  ["BODY", 555, "5.5.4", /^Unsupported option: BODY$/],
  ["SMTPUTF8=yes", 555, "5.5.4", /Unsupported option: SMTPUTF8=yes/],
  ["RET", 555, "5.5.4", /Unsupported option: RET/],
  ["RET=", 501, "5.5.4", /^Bad RET parameter syntax$/],
  ["RET=NONE", 501, "5.5.4", /^Bad RET parameter syntax$/],
  ["RET=FULL RET=FULL", 501, "5.5.4", /^Bad RET parameter syntax$/],
  ["ENVID=", 501, "5.5.4", /^Bad ENVID parameter syntax$/],
  ["ENVID=a+2", 501, "5.5.4", /ENVID/],
  ["ENVID=a+zz", 501, "5.5.4", /ENVID/],
  ["ENVID=a+0Ab", 501, "5.5.4", /ENVID/],
  ["ENVID=a+00", 501, "5.5.4", /ENVID/],
  ["ENVID=\u00e9", 501, "5.5.4", /ENVID/],
  ["ENVID=a ENVID=b", 501, "5.5.4", /ENVID/],
  [`ENVID=${"e".repeat(101)}`, 501, "5.5.4", /ENVID/],
  [`ENVID=${"+3D".repeat(101)}`, 501, "5.5.4", /ENVID/],
  ["ENVID=x+FF", 501, "5.5.4", /ENVID/],
  // RFC 3461 §4.4: printable US-ASCII only; Postfix refuses "\xc3\xa9" as well.
  ["ENVID=x+c3+a9", 501, "5.5.4", /^Bad ENVID parameter syntax$/],
  // A byte order mark is no printable ASCII, at the start too (as Postfix).
  ["ENVID=+EF+BB+BFabc", 501, "5.5.4", /^Bad ENVID parameter syntax$/],
  ["ENVID=\ufeffabc", 501, "5.5.4", /^Bad ENVID parameter syntax$/],
];

for (const [text, code, status, textRe, options] of ERROR_CASES) {
  Deno.test(`parseMailParams() answers ${code} for ${JSON.stringify(text)}`, () => {
    const r = parseMailParams(text, options ?? ON);
    assert.ok(isReply(r), "expected a reply");
    assert.equal(r.code, code);
    assert.equal(enhancedStatus(r), status);
    assert.match(r.text, textRe);
  });
}

Deno.test("parseMailParams() refuses SMTPUTF8 and the DSN parameters when they are off", () => {
  const utf8 = parseMailParams("SMTPUTF8", { smtputf8: false, dsn: true });
  assert.ok(isReply(utf8));
  assert.equal(
    `${utf8.code} ${enhancedStatus(utf8)} ${utf8.text}`,
    "555 5.5.4 Unsupported option: SMTPUTF8",
  );
  for (const p of ["RET=FULL", "ENVID=x"]) {
    const r = parseMailParams(p, { smtputf8: true, dsn: false });
    assert.ok(isReply(r));
    assert.equal(`${r.code} ${enhancedStatus(r)} ${r.text}`, "501 5.7.1 DSN support is disabled");
  }
});

Deno.test("declaresSmtputf8() finds SMTPUTF8 only when it is on", () => {
  assert.equal(declaresSmtputf8("SIZE=1 smtputf8", { smtputf8: true }), true);
  assert.equal(declaresSmtputf8("SIZE=1 smtputf8", { smtputf8: false }), false);
  assert.equal(declaresSmtputf8("SMTPUTF8=1", { smtputf8: true }), false);
});

const RCPT_OK: [string, RcptParams][] = [
  ["", { notify: undefined, orcpt: undefined }],
  ["NOTIFY=NEVER", { notify: DSN_NOTIFY.NEVER, orcpt: undefined }],
  ["notify=success,failure", { notify: 6, orcpt: undefined }],
  ["NOTIFY=DELAY,SUCCESS,FAILURE", { notify: 14, orcpt: undefined }],
  // Empty items are skipped, as Postfix's name_mask_opt skips them.
  ["NOTIFY=FAILURE,,DELAY", { notify: 12, orcpt: undefined }],
  ["NOTIFY=,SUCCESS,", { notify: 2, orcpt: undefined }],
  ["ORCPT=rfc822;a@b.example", {
    notify: undefined,
    orcpt: { type: "rfc822", address: "a@b.example" },
  }],
  [
    "ORCPT=RFC822;x+2By+3D@b.example NOTIFY=SUCCESS",
    { notify: 2, orcpt: { type: "RFC822", address: "x+y=@b.example" } },
  ],
  // An empty address is xtext too, and Postfix's smtpd takes it.
  ["ORCPT=rfc822;", { notify: undefined, orcpt: { type: "rfc822", address: "" } }],
  // Non-ASCII in xtext stands for itself, as in Postfix's xtext_unquote.
  [
    "ORCPT=rfc822;j\u00f6rg@b.example",
    { notify: undefined, orcpt: { type: "rfc822", address: "j\u00f6rg@b.example" } },
  ],
  [
    "ORCPT=utf-8;\\x{E9}l\u00e8ve@b.example",
    { notify: undefined, orcpt: { type: "utf-8", address: "\u00e9l\u00e8ve@b.example" } },
  ],
  // RFC 3461 §4.2: 500 characters of address before the encoding, as a
  // Postfix smtp client encodes an address in UTF-8 (+HH for each byte).
  [`ORCPT=rfc822;${"a".repeat(490)}@b.example`, {
    notify: undefined,
    orcpt: { type: "rfc822", address: `${"a".repeat(490)}@b.example` },
  }],
  [`ORCPT=rfc822;${"+E7+94+A8".repeat(160)}@b.example`, {
    notify: undefined,
    orcpt: { type: "rfc822", address: `${"\u7528".repeat(160)}@b.example` },
  }],
  [`ORCPT=utf-8;${"\\x{1F600}".repeat(300)}@b.example`, {
    notify: undefined,
    orcpt: { type: "utf-8", address: `${"\u{1F600}".repeat(300)}@b.example` },
  }],
];

for (const [text, expected] of RCPT_OK) {
  Deno.test(`parseRcptParams() parses ${JSON.stringify(text)}`, () => {
    assert.deepEqual(parseRcptParams(text, ON), expected);
  });
}

const RCPT_ERRORS: [string, string][] = [
  ["NOTIFY=", "501 5.5.4 Error: Bad NOTIFY parameter syntax"],
  ["NOTIFY=,", "501 5.5.4 Error: Bad NOTIFY parameter syntax"],
  ["NOTIFY=NEVER,,FAILURE", "501 5.5.4 Error: Bad NOTIFY parameter syntax"],
  ["NOTIFY=NEVER,SUCCESS", "501 5.5.4 Error: Bad NOTIFY parameter syntax"],
  ["NOTIFY=SOMETIMES", "501 5.5.4 Error: Bad NOTIFY parameter syntax"],
  ["NOTIFY=toString", "501 5.5.4 Error: Bad NOTIFY parameter syntax"],
  ["NOTIFY=NEVER NOTIFY=NEVER", "501 5.5.4 Error: Bad NOTIFY parameter syntax"],
  ["ORCPT=a@b", "501 5.5.4 Error: Bad ORCPT parameter syntax"],
  ["ORCPT=;a@b", "501 5.5.4 Error: Bad ORCPT parameter syntax"],
  // The address type goes into the queue file as sent: an atom in ASCII only.
  ["ORCPT=\u00e9\u0085;a@b", "501 5.5.4 Error: Bad ORCPT parameter syntax"],
  ["ORCPT=rfc\u0007822;a@b", "501 5.5.4 Error: Bad ORCPT parameter syntax"],
  ["ORCPT=rfc 822;a@b", "501 5.5.4 Error: Bad ORCPT parameter syntax"],
  ["ORCPT=rfc822;a+0Db@c", "501 5.5.4 Error: Bad ORCPT parameter syntax"],
  ["ORCPT=utf-8;a\\x{0}@c", "501 5.5.4 Error: Bad ORCPT parameter syntax"],
  ["ORCPT=utf-8;a\\x{D800}@c", "501 5.5.4 Error: Bad ORCPT parameter syntax"],
  ["ORCPT=rfc822;a@b ORCPT=rfc822;a@b", "501 5.5.4 Error: Bad ORCPT parameter syntax"],
  // RFC 3461 §4.2: at most 500 characters of address, counted before the encoding.
  [`ORCPT=rfc822;${"a".repeat(491)}@b.example`, "501 5.5.4 Error: Bad ORCPT parameter syntax"],
  [
    `ORCPT=utf-8;${"\\x{7528}".repeat(491)}@b.example`,
    "501 5.5.4 Error: Bad ORCPT parameter syntax",
  ],
  ["NOTIFY", "555 5.5.4 Unsupported option: NOTIFY"],
  ["FOO=1", "555 5.5.4 Unsupported option: FOO=1"],
];

for (const [text, expected] of RCPT_ERRORS) {
  Deno.test(`parseRcptParams() answers ${JSON.stringify(expected)} for ${JSON.stringify(text)}`, () => {
    const r = parseRcptParams(text, ON);
    assert.ok(isReply(r), "expected a reply");
    assert.equal(`${r.code} ${enhancedStatus(r)} ${r.text}`, expected);
  });
}

Deno.test("parseRcptParams() refuses NOTIFY and ORCPT when DSN is off", () => {
  for (const p of ["NOTIFY=NEVER", "ORCPT=rfc822;a@b"]) {
    const r = parseRcptParams(p, { dsn: false });
    assert.ok(isReply(r));
    assert.equal(`${r.code} ${enhancedStatus(r)} ${r.text}`, "501 5.7.1 DSN support is disabled");
  }
});

Deno.test("parseMailParams() takes AUTH= whether or not AUTH is offered, keeps it as sent, refuses one after a sender", () => {
  // As Postfix 3.7 with smtpd_sasl_auth_enable = no: taken, not an unsupported option.
  assert.deepEqual(parseMailParams("AUTH=a+40b.example SIZE=10"), {
    size: 10,
    body: undefined,
    smtputf8: false,
    ret: undefined,
    envid: undefined,
    auth: "a+40b.example",
  });
  assert.deepEqual(parseMailParams("AUTH=<>"), {
    size: undefined,
    body: undefined,
    smtputf8: false,
    ret: undefined,
    envid: undefined,
  });
  const twice = parseMailParams("AUTH=x AUTH=<>") as Reply;
  assert.equal(twice.code, 503);
  assert.equal(enhancedStatus(twice), "5.5.4");
  // As Postfix 3.7: <> sets no sender, so an AUTH= after it is still taken.
  assert.deepEqual(parseMailParams("AUTH=<> AUTH=<> AUTH=x"), {
    size: undefined,
    body: undefined,
    smtputf8: false,
    ret: undefined,
    envid: undefined,
    auth: "x",
  });
  assert.deepEqual(parseMailParams("AUTH=a\u00e9b"), {
    size: undefined,
    body: undefined,
    smtputf8: false,
    ret: undefined,
    envid: undefined,
    auth: "a?b",
  });
});

Deno.test("parameter names and values change case in ASCII only, as Postfix's strcasecmp: a long s or a dotless i is no keyword", () => {
  // U+017F LATIN SMALL LETTER LONG S upper-cases to "S", U+0131 DOTLESS I to "I".
  assert.equal(declaresSmtputf8("\u017fMTPUTF8", ON), false);
  for (const text of ["\u017fMTPUTF8", "ENV\u0131D=x", "\u017fIZE=10", "BODY=7B\u0131T"]) {
    const r = parseMailParams(text, ON);
    assert.ok(isReply(r), `${text} was taken`);
  }
  assert.ok(isReply(parseMailParams("RET=HDR\u017f", ON)));
  assert.ok(isReply(parseRcptParams("NOTIFY=\u017fUCCESS", ON)));
  assert.ok(isReply(parseRcptParams("NOT\u0131FY=DELAY", ON)));
  assert.ok(isReply(parseRcptParams("ORCPT=rfc822;a@b \u017fMTPUTF8", ON)));
  // ASCII in any case still is.
  assert.deepEqual(parseRcptParams("notify=success,Delay", ON), {
    notify: DSN_NOTIFY.SUCCESS | DSN_NOTIFY.DELAY,
    orcpt: undefined,
  });
});
