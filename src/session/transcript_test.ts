import assert from "node:assert/strict";
import { Transcript } from "./transcript.ts";

Deno.test("Transcript: commands and reply lines are counted and formatted as mailed", () => {
  const t = new Transcript();
  t.sent("220 mx.example ESMTP\r\n");
  t.received("EHLO client.example");
  t.sent("250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
  t.received("BOGUS");
  t.sent("500 5.5.2 Error: command not recognized\r\n");
  assert.equal(t.lineCount, 7);
  assert.deepEqual(t.lines(), [
    " Out: 220 mx.example ESMTP",
    " In:  EHLO client.example",
    " Out: 250-mx.example",
    " Out: 250-PIPELINING",
    " Out: 250 8BITMIME",
    " In:  BOGUS",
    " Out: 500 5.5.2 Error: command not recognized",
  ]);
  t.clear();
  assert.equal(t.lineCount, 0);
  assert.deepEqual(t.lines(), []);
});

Deno.test("Transcript: stops recording at 1000 lines", () => {
  const t = new Transcript();
  for (let i = 0; i < 1500; i++) t.received(`NOOP ${i}`);
  assert.equal(t.lineCount, 1000);
  assert.equal(t.lines().at(-1), " In:  NOOP 999");
});

Deno.test("Transcript: control, bidi and separator characters are replaced in mailed lines", () => {
  const t = new Transcript();
  t.received("HELO a\u202eb\u0085c");
  t.received("MAIL FROM:<x\u2028y@example.com>");
  t.sent("501 5.5.4 <a\u2066b>: bad\r\n");
  assert.deepEqual(t.lines(), [
    " In:  HELO a?b?c",
    " In:  MAIL FROM:<x?y@example.com>",
    " Out: 501 5.5.4 <a?b>: bad",
  ]);
});
