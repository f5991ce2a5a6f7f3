/**
 * A bare CR in message content (one not right before the LF that ends a
 * line), side by side with a real Postfix 3.7 smtpd: the same DATA and
 * BDAT bytes go to Debian's Postfix (its cleanup holds the message,
 * header_checks static:HOLD, so its queue file can be read) and to our
 * daemon, with smtpd_forbid_bare_newline = normalize and = reject on both
 * sides. The replies (BDAT's byte counts too) and the content records must
 * be the same: Postfix's smtpd keeps a bare CR inside the line, its cleanup
 * (cleanup_replace_stray_cr_lf) writes it as a space, in the header block
 * and the body; only the one CR before a line's LF goes with the line end;
 * a CR that ends the last BDAT chunk is content, counted; a CR that ends a
 * chunk and an LF that starts the next are one line end; a bare CR does
 * not make "reject" refuse the message. Needs root and Postfix.
 */

import assert from "node:assert/strict";
import {
  freePort,
  makeWorkDir,
  postcat,
  queueFiles,
  RawClient,
  startDaemon,
  waitFor,
} from "./_harness.ts";
import { havePostfix, startPostfix } from "./_postfix.ts";

const isRoot = Deno.uid() === 0;
const hasPostfix = await havePostfix();

/**
 * One message: DATA with `data` (then the end of data), or BDAT with each
 * of `chunks` (the last one LAST). The replies from MAIL on.
 */
async function send(port: number, content: { data: string } | { chunks: string[] }) {
  const c = await RawClient.connect(port);
  try {
    await c.reply();
    await c.send("EHLO client.example\r\n");
    assert.match(await c.reply(), /^250[ -]/);
    const replies: string[] = [];
    for (const cmd of ["MAIL FROM:<a@x.example>", "RCPT TO:<u@x.example>"]) {
      await c.send(`${cmd}\r\n`);
      replies.push(await c.reply());
    }
    if ("data" in content) {
      await c.send("DATA\r\n");
      replies.push(await c.reply());
      await c.send(`${content.data}.\r\n`);
      replies.push(await c.reply(20000));
    } else {
      for (const [i, chunk] of content.chunks.entries()) {
        const last = i === content.chunks.length - 1 ? " LAST" : "";
        await c.send(`BDAT ${chunk.length}${last}\r\n${chunk}`);
        replies.push(await c.reply(20000));
      }
    }
    return replies.map((r) => r.trimEnd().replace(/ queued as \S+$/, " queued as ID"));
  } finally {
    c.close();
  }
}

/**
 * The message content of a queue file as postcat shows it, without each
 * server's own Received: (three lines) and the headers added when missing.
 */
async function clientLines(file: string): Promise<string[]> {
  const lines = (await postcat(file)).split("\n");
  const from = lines.findIndex((l) => l.includes("*** MESSAGE CONTENTS"));
  const to = lines.findIndex((l) => l.includes("*** HEADER EXTRACTED"));
  return lines.slice(from + 4, to).filter((l) => !/^(Message-Id|Date|From): /.test(l));
}

// Bare CRs in a header, inside body lines, at a line's start, and one or
// two more before a CRLF.
const DATA = "X-H: p\rq\r\nSubject: s\r\n\r\na\rb\r\nc\r\r\n\rd\r\ne\r\r\r\nf\r\n";
// A CR at a chunk's end: before an LF (one line end), before other content,
// and at the end of the last chunk.
const CHUNKS = ["S: x\ry\r\n\r\na\r", "\nb\r", "c\r\r"];

Deno.test({
  name:
    "a bare CR side by side with Postfix 3.7 (normalize and reject): content written as a space, in DATA and BDAT, the last chunk's CR counted",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("barecr");
    const pfPort = freePort();
    const pfRejectPort = freePort();
    const pf = await startPostfix(dir, {
      name: "barecr",
      smtpdPort: pfPort,
      masterCfExtra: `127.0.0.1:${pfRejectPort} inet n - n - - smtpd` +
        " -o smtpd_forbid_bare_newline=reject\n",
      mainCfExtra: [
        "mynetworks = 127.0.0.0/8",
        "smtpd_peername_lookup = no",
        "smtpd_forbid_bare_newline = normalize",
        // Not $mynetworks: the test's client is on loopback.
        "smtpd_forbid_bare_newline_exclusions =",
        // Held, so its queue file stays for postcat.
        "header_checks = static:HOLD",
        "",
      ].join("\n"),
    });
    const base = ['mynetworks = ["127.0.0.0/8"]', "smtpd_peername_lookup = false"].join("\n");
    const ours = await startDaemon(base);
    // No exclusions, as on Postfix's side (the client is in mynetworks).
    const oursReject = await startDaemon(
      `${base}\nsmtpd_forbid_bare_newline = "reject"\nsmtpd_forbid_bare_newline_exclusions = []`,
    );
    try {
      const pairs = [
        { theirs: pfPort, ours: ours, name: "normalize" },
        { theirs: pfRejectPort, ours: oursReject, name: "reject" },
      ];
      let left: string[] = [];
      for (const { theirs, ours: d, name } of pairs) {
        for (const content of [{ data: DATA }, { chunks: CHUNKS }]) {
          const what = `${name}, ${"data" in content ? "DATA" : "BDAT"}`;
          for (const f of left) await Deno.remove(f);
          const want = await send(theirs, content);
          assert.match(want.at(-1) ?? "", /^250 /, `${what}: ${want.join(" | ")}`);
          assert.deepEqual(await send(d.port, content), want, what);
          await waitFor("Postfix's held queue file", async () => {
            const files = await queueFiles(pf.queueDir, "hold").catch(() => []);
            return files.length === 1;
          });
          const [held] = await queueFiles(pf.queueDir, "hold");
          const [ourFile] = await queueFiles(d.queueDir, "incoming");
          assert.ok(held && ourFile, what);
          const lines = await clientLines(held);
          assert.deepEqual(
            lines,
            "data" in content
              ? ["X-H: p q", "Subject: s", "", "a b", "c ", " d", "e  ", "f"]
              : ["S: x y", "", "a", "b c  "],
            what,
          );
          assert.deepEqual(await clientLines(ourFile), lines, what);
          left = [held, ourFile];
        }
      }
    } finally {
      await ours.stop();
      await oursReject.stop();
      await pf.stop();
    }
  },
});

// Postfix reads at most line_length_limit (2048) bytes a record: a line
// that fills it exactly, then its line end, is two records in its count
// (2052 for 2048 bytes and CRLF); we counted 2050, whatever the chunks.
const X = "x".repeat(2048);
const EXACT: string[][] = [
  [`S: 1\r\n\r\n${X}\r\n`],
  [`S: 1\r\n\r\n${X}\n`],
  [`S: 1\r\n\r\n${X}\r`, "\n"],
  [`S: 1\r\n\r\n${X}`, "\r", "\n", "\r\r"],
  [`S: 1\r\n\r\n${X}${X}\r\n`],
  [`S: 1\r\n\r\n${X}`],
  [`S: 1\r\n\r\n${X}${X}`],
  [`S: 1\r\n\r\n${X.slice(1)}`, `x\r\n${X}y\r\n${X.slice(1)}\r`, "\n"],
];

Deno.test({
  name:
    "BDAT: 'N bytes queued' side by side with Postfix 3.7 for lines of exactly line_length_limit bytes",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("barecr-exact");
    const pfPort = freePort();
    const pf = await startPostfix(dir, {
      name: "barecrx",
      smtpdPort: pfPort,
      mainCfExtra: [
        "mynetworks = 127.0.0.0/8",
        "smtpd_peername_lookup = no",
        "header_checks = static:HOLD",
        "",
      ].join("\n"),
    });
    const ours = await startDaemon(
      ['mynetworks = ["127.0.0.0/8"]', "smtpd_peername_lookup = false"].join("\n"),
    );
    try {
      for (const chunks of EXACT) {
        const what = JSON.stringify(chunks.map((c) => c.length));
        const want = await send(pfPort, { chunks });
        assert.match(want.at(-1) ?? "", /^250 2\.0\.0 Ok: \d+ bytes queued as ID$/, what);
        assert.deepEqual(await send(ours.port, { chunks }), want, what);
      }
    } finally {
      await ours.stop();
      await pf.stop();
    }
  },
});
