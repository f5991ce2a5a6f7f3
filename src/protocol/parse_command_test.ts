import assert from "node:assert/strict";
import { encodeWireText, isRawByteChar, rawByteChar } from "../io/wire_text.ts";
import { parseCommand } from "./parse_command.ts";
import { formatReply, REPLY } from "./reply.ts";

const enc = new TextEncoder();

function bytes(s: string): Uint8Array {
  return enc.encode(s);
}

const OK_CASES: [string, string, string][] = [
  ["QUIT", "QUIT", ""],
  ["quit", "QUIT", ""],
  ["eHlO client.example", "EHLO", "client.example"],
  ["mail FROM:<a@b> SIZE=10", "MAIL", "FROM:<a@b> SIZE=10"],
  ["RCPT TO:<a@b>   \t ", "RCPT", "TO:<a@b>"],
  ["NOOP   ", "NOOP", ""],
  ["  HELO  x", "HELO", "x"],
  ["NOOP\tx\ty", "NOOP", "x\ty"],
  ["MAIL FROM: <a@b>", "MAIL", "FROM: <a@b>"],
  ["vrfy Se\u00f1or", "VRFY", "Se\u00f1or"],
  // The verb is the first word, whatever it holds (Postfix's first token).
  ["MA-IL x", "MA-IL", "x"],
  [":foo", ":FOO", ""],
  ["Subject: hi there", "SUBJECT:", "hi there"],
  ["  GET / HTTP/1.1", "GET", "/ HTTP/1.1"],
  // Only ASCII letters change case (Postfix's strcasecmp): a dotless i or a
  // long s does not make QUIT or STARTTLS.
  ["qu\u0131t", "QU\u0131T", ""],
  ["\u017ftarttls", "\u017fTARTTLS", ""],
  ["stra\u00dfe x", "STRA\u00dfE", "x"],
  // A leading byte order mark is part of the first word, as Postfix reads
  // it: "\ufeffRCPT" is no RCPT (Postfix's smtpd_forbidden_commands drops it).
  ["\ufeffRCPT TO:<a@b>", "\ufeffRCPT", "TO:<a@b>"],
  ["\ufeffquit", "\ufeffQUIT", ""],
];

for (const [line, verb, arg] of OK_CASES) {
  Deno.test(`parseCommand() splits ${JSON.stringify(line)}`, () => {
    assert.deepEqual(parseCommand(bytes(line)), { verb, arg, text: line });
  });
}

const BAD_SYNTAX: [string, Uint8Array][] = [
  ["an empty line", bytes("")],
  ["white space only", bytes(" \t ")],
  ["NUL in the verb", bytes("MA\x00IL FROM:<a@b>")],
  ["NUL in the argument", bytes("MAIL FROM:<a@b>\x00")],
  ["a bare CR", bytes("NOOP\rRSET")],
  ["a bare LF", bytes("NOOP\nRSET")],
  ["ESC", bytes("HELO \x1b[31m")],
  ["DEL", bytes("HELO x\x7f")],
];

for (const [what, line] of BAD_SYNTAX) {
  Deno.test(`parseCommand() answers 500 5.5.2 for ${what}`, () => {
    const r = parseCommand(line);
    assert.deepEqual(r, { error: REPLY.badSyntax });
    assert.ok("error" in r);
    assert.equal(formatReply(r.error), "500 5.5.2 Error: bad syntax\r\n");
  });
}

const BAD_UTF8: [string, number[]][] = [
  ["a lone 0xff", [0x48, 0x45, 0x4c, 0x4f, 0x20, 0xff]],
  ["a truncated sequence", [0x48, 0x45, 0x4c, 0x4f, 0x20, 0xc3]],
  ["an overlong NUL", [0x48, 0x45, 0x4c, 0x4f, 0x20, 0xc0, 0x80]],
  ["a surrogate", [0x48, 0x45, 0x4c, 0x4f, 0x20, 0xed, 0xa0, 0x80]],
  ["a continuation byte alone", [0x48, 0x45, 0x4c, 0x4f, 0x20, 0x80]],
];

for (const [what, line] of BAD_UTF8) {
  Deno.test(`parseCommand() answers REPLY.badUtf8 for ${what}`, () => {
    assert.deepEqual(parseCommand(new Uint8Array(line)), { error: REPLY.badUtf8 });
  });
}

/** The raw-byte characters of some bytes. */
function raw(...bytes: number[]): string {
  return bytes.map(rawByteChar).join("");
}

Deno.test("parseCommand() with SMTPUTF8 off reads a line that is not UTF-8, each bad byte a raw-byte character", () => {
  for (const [, line] of BAD_UTF8) {
    const r = parseCommand(new Uint8Array(line), false);
    assert.ok(!("error" in r), JSON.stringify(r));
    assert.equal(r.verb, "HELO");
    assert.ok([...r.arg].every(isRawByteChar), JSON.stringify(r.arg));
    assert.deepEqual([...encodeWireText(r.arg)], line.slice(5));
  }
  // The text is the line as sent only when it was read as sent.
  assert.deepEqual(parseCommand(new Uint8Array([0x4e, 0x4f, 0x4f, 0x50, 0x20, 0xff]), false), {
    verb: "NOOP",
    arg: rawByteChar(0xff),
    text: undefined,
  });
  // One character a byte, as Postfix's printable() counts them: a cut-off
  // three-byte sequence is two, an encoded surrogate three, an overlong two.
  const text = "VRFY j\xe2\x82x\xed\xa0\x80\xc0\xaf\xc3\xb6";
  assert.deepEqual(parseCommand(Uint8Array.from(text, (c) => c.charCodeAt(0)), false), {
    verb: "VRFY",
    arg: `j${raw(0xe2, 0x82)}x${raw(0xed, 0xa0, 0x80, 0xc0, 0xaf)}\u00f6`,
    text: undefined,
  });
  // Control bytes are refused either way.
  assert.deepEqual(parseCommand(new Uint8Array([0x48, 0x00, 0xff]), false), {
    error: REPLY.badSyntax,
  });
});

Deno.test("parseCommand() checks control bytes before UTF-8", () => {
  assert.deepEqual(parseCommand(new Uint8Array([0x48, 0x00, 0xff])), { error: REPLY.badSyntax });
});

Deno.test("parseCommand() reads short and long ASCII lines alike", () => {
  for (const size of [255, 256, 257, 3000]) {
    const arg = `TO:<${"a".repeat(size - 13)}@b>`;
    const line = `RCPT ${arg}\t`;
    assert.deepEqual(parseCommand(bytes(line)), { verb: "RCPT", arg, text: line });
  }
});
