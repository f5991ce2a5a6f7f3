import assert from "node:assert/strict";
import { cEscape, pipelinedForLog } from "./_wire.ts";

const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

Deno.test("cEscape() writes bytes as Postfix's escape() does", () => {
  assert.equal(cEscape(bytes("MAIL FROM:<a@b>\r\n")), "MAIL FROM:<a@b>\\r\\n");
  assert.equal(cEscape(bytes("a\\b\t\x07\x00\x7f\xe9")), "a\\\\b\\t\\a\\000\\177\\351");
});

Deno.test("pipelinedForLog() cuts at the first AUTH line and hides its response", () => {
  assert.equal(
    pipelinedForLog(bytes("MAIL FROM:<a@b>\r\nauth PLAIN AGFsaWNl\r\ndXNlcg==\r\n")),
    "MAIL FROM:<a@b>\\r\\nAUTH PLAIN ****",
  );
  assert.equal(pipelinedForLog(bytes("AUTH LOGIN\r\ndXNlcg==\r\n")), "AUTH LOGIN");
  assert.equal(pipelinedForLog(bytes("AUTHOR x\r\n")), "AUTHOR x\\r\\n");
});
