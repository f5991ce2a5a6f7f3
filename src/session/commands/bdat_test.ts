import assert from "node:assert/strict";
import { formatReply, REPLY } from "../../protocol/reply.ts";
import { runSession } from "../session.ts";
import { fakeDeps, scriptedTransport } from "../_test_fakes.ts";
import { parseBdatArg } from "./bdat.ts";

Deno.test("parseBdatArg() reads a size and an optional LAST in any case", () => {
  assert.deepEqual(parseBdatArg("12"), { size: 12, count: 12n, last: false });
  assert.deepEqual(parseBdatArg("0 last"), { size: 0, count: 0n, last: true });
  assert.equal(parseBdatArg("12 MORE"), undefined);
  // Only ASCII letters change case, as Postfix's strcasecmp: a long s is not "S".
  assert.equal(parseBdatArg("3 LA\u017fT"), undefined);
  assert.equal(parseBdatArg("\u00a03 LAST"), undefined);
  assert.deepEqual(parseBdatArg("3\tLAST"), { size: 3, count: 3n, last: true });
  assert.equal(parseBdatArg("-1"), undefined);
  assert.equal(parseBdatArg("+1"), undefined);
  assert.equal(parseBdatArg(""), undefined);
});

/** Plays lines through a session and returns its output. */
async function play(text: string, discard: string[]): Promise<string> {
  const { transport, output } = scriptedTransport(new TextEncoder().encode(text));
  await runSession(transport, fakeDeps({ smtpd_discard_ehlo_keywords: discard }));
  return output();
}

/** A chunk outside a transaction: refused, but read, so QUIT after it is a command. */
const MESSAGE = "EHLO c\r\nBDAT 5\r\nabcde";

Deno.test("handleBdat() reads a chunk and stays in step when CHUNKING is offered", async () => {
  const out = await play(`${MESSAGE}QUIT\r\n`, []);
  assert.ok(out.endsWith(`${formatReply(REPLY.needRcpt)}221 2.0.0 Bye\r\n`), out);
});

Deno.test("handleBdat() answers 521 and hangs up when CHUNKING is discarded, as Postfix's bdat_cmd", async () => {
  const out = await play(`${MESSAGE}QUIT\r\n`, ["chunking"]);
  assert.ok(!out.includes("CHUNKING"), out);
  // The chunk's bytes and the QUIT after it are never read as commands.
  assert.ok(out.endsWith(formatReply(REPLY.bdatNotImplemented)), out);
  assert.ok(!out.includes("221 "), out);
});

Deno.test("handleBdat() refuses a discarded CHUNKING before looking at the syntax", async () => {
  const out = await play("EHLO c\r\nBDAT nonsense\r\nQUIT\r\n", ["CHUNKING"]);
  assert.ok(out.endsWith(formatReply(REPLY.bdatNotImplemented)), out);
});

Deno.test("parseBdatArg() takes any number of leading zeros and sizes up to 2^63 - 1, as Postfix's off_cvt_string", () => {
  // RFC 3030: chunk-size = 1*DIGIT.
  assert.deepEqual(parseBdatArg("00000000000000000003 LAST"), { size: 3, count: 3n, last: true });
  assert.deepEqual(parseBdatArg(`${"0".repeat(500)}7`), { size: 7, count: 7n, last: false });
  const max = parseBdatArg("9223372036854775807");
  assert.equal(max?.count, 9223372036854775807n);
  assert.ok((max?.size ?? 0) > 2 ** 62);
  assert.equal(parseBdatArg("9007199254740993")?.count, 9007199254740993n);
  assert.equal(parseBdatArg("9223372036854775808"), undefined);
  assert.equal(parseBdatArg("99999999999999999999"), undefined);
});
