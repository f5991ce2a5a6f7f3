import assert from "node:assert/strict";
import { bdatArguments, escaped, pipelinedForLog, printable } from "./_wire.ts";

const enc = new TextEncoder();

Deno.test("escaped() writes a line as Postfix's escape(): C escapes, octal for 8-bit, \\\\ doubled", () => {
  assert.equal(escaped(enc.encode("GET / HTTP/1.1")), "GET / HTTP/1.1");
  assert.equal(escaped(enc.encode("GET\t/")), "GET\\t/");
  assert.equal(escaped(enc.encode("\u00fcber")), "\\303\\274ber");
  assert.equal(escaped(enc.encode("a\\b")), "a\\\\b");
  assert.equal(
    escaped(new Uint8Array([7, 8, 10, 11, 12, 13, 0, 0x1b, 0x7f])),
    "\\a\\b\\n\\v\\f\\r\\000\\033\\177",
  );
});

const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

Deno.test("pipelinedForLog() cuts at the first AUTH line and hides its response", () => {
  assert.equal(
    pipelinedForLog(bytes("MAIL FROM:<a@b>\r\nauth PLAIN AGFsaWNl\r\ndXNlcg==\r\n")),
    "MAIL FROM:<a@b>\\r\\nAUTH PLAIN ****",
  );
  assert.equal(pipelinedForLog(bytes("AUTH LOGIN\r\ndXNlcg==\r\n")), "AUTH LOGIN");
  assert.equal(pipelinedForLog(bytes("AUTHOR x\r\n")), "AUTHOR x\\r\\n");
});

Deno.test("pipelinedForLog() hides an AUTH line cut by the peek between its CR and LF", () => {
  // 100 bytes peeked, the last one the AUTH line's CR: its response stays hidden.
  const line = `AUTH PLAIN ${"A".repeat(100 - "NOOP\r\nAUTH PLAIN \r".length)}\r`;
  const peek = bytes(`NOOP\r\n${line}`);
  assert.equal(peek.length, 100);
  assert.equal(pipelinedForLog(peek), "NOOP\\r\\nAUTH PLAIN ****");
  assert.equal(pipelinedForLog(bytes("AUTH PLAIN AGFsaWNl")), "AUTH PLAIN ****");
  assert.equal(pipelinedForLog(bytes("AUTH\r")), "AUTH");
});

Deno.test("pipelinedForLog() shows nothing of what came early after AUTH (its responses)", () => {
  assert.equal(pipelinedForLog(bytes("YWxpY2U=\r\nc2VjcmV0\r\n"), "AUTH"), "****");
  assert.equal(pipelinedForLog(bytes("YWxpY2U=\r\n"), "CONNECT"), "YWxpY2U=\\r\\n");
});

Deno.test("printable() keeps a leading byte order mark, as the command holds it", () => {
  const line = enc.encode("\ufeffRCPT TO:<a@b>\u0085");
  assert.equal(printable(line), "\ufeffRCPT TO:<a@b>?");
});

Deno.test("bdatArguments() finds BDAT as Postfix's tokenizer cuts the first word", () => {
  const cases: [string, string][] = [
    ["BDAT", ""],
    ["bdat 5", "5"],
    ["BdAt\t5 LAST", "5 LAST"],
    ["BDAT 5 \x1bLAST", "5 ?LAST"],
    ["BDAT 5\x00", "5?"],
    // Postfix's ISSPACE: vertical tab, form feed and CR separate words too.
    ["BDAT\v31 LAST", "31 LAST"],
    ["BDAT\f31\rLAST\v", "31 LAST "],
    [" \vBDAT 31", "31"],
  ];
  for (const [line, args] of cases) {
    assert.equal(bdatArguments(bytes(line)), args, JSON.stringify(line));
  }
  for (const line of ["BDA", "BDATX 5", "BDAT\x01 5", "\x02DAT 5", "\x01BDAT 5", "DATA"]) {
    assert.equal(bdatArguments(bytes(line)), undefined, JSON.stringify(line));
  }
});
