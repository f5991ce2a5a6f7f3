/**
 * Header lines of RFC 822's obsolete form, white space before the colon
 * ("Subject : x", which Postfix's is_header_buf() takes as a header), side
 * by side with a real Postfix 3.7 smtpd: the same DATA goes to Debian's
 * Postfix (its cleanup holds the message, header_checks static:HOLD, so
 * its queue file can be read) and to our daemon, and the content records
 * written for the client's lines must be the same: the header block stays
 * a header block, each such line written "Subject: x". A "Received :" line
 * counts towards hopcount_limit on both sides. And a resent message (a
 * Resent- field in its header block) gets Resent-Message-Id: and
 * Resent-Date: where it lacks them, not Message-Id:/Date:. A mailbox
 * "From " line on top becomes X-Mailbox-Line:, and Bcc:, Resent-Bcc:,
 * Content-Length: and Return-Path: are dropped. Needs root and Postfix.
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

/** One message over SMTP; the reply to its end of data. */
async function sendMessage(port: number, data: string): Promise<string> {
  const c = await RawClient.connect(port);
  try {
    await c.reply();
    for (const cmd of ["EHLO client.example", "MAIL FROM:<a@x.example>", "RCPT TO:<u@x.example>"]) {
      await c.send(`${cmd}\r\n`);
      assert.match(await c.reply(), /^250[ -]/);
    }
    await c.send("DATA\r\n");
    assert.match(await c.reply(), /^354 /);
    await c.send(`${data}.\r\n`);
    return await c.reply(20000);
  } finally {
    c.close();
  }
}

/** One message by BDAT LAST; the reply to it. */
async function sendChunk(port: number, data: string): Promise<string> {
  const c = await RawClient.connect(port);
  try {
    await c.reply();
    for (const cmd of ["EHLO client.example", "MAIL FROM:<a@x.example>", "RCPT TO:<u@x.example>"]) {
      await c.send(`${cmd}\r\n`);
      assert.match(await c.reply(), /^250[ -]/);
    }
    await c.send(`BDAT ${new TextEncoder().encode(data).length} LAST\r\n${data}`);
    return await c.reply(20000);
  } finally {
    c.close();
  }
}

/** Waits until Postfix has held one message; the hold queue's files. */
async function heldFiles(queueDir: string): Promise<string[]> {
  await waitFor("Postfix's held queue file", async () => {
    const files = await queueFiles(queueDir, "hold").catch(() => []);
    return files.length === 1;
  });
  return queueFiles(queueDir, "hold");
}

/**
 * The message content of a queue file as postcat shows it, without the
 * first three lines (each server's own Received:) and the headers cleanup
 * adds when missing (each server's own Message-Id:, Date:, From:).
 */
async function clientLines(file: string): Promise<string[]> {
  const lines = (await postcat(file)).split("\n");
  const from = lines.findIndex((l) => l.includes("*** MESSAGE CONTENTS"));
  const to = lines.findIndex((l) => l.includes("*** HEADER EXTRACTED"));
  return lines.slice(from + 4, to).filter((l) => !/^(Resent-)?(Message-Id|Date|From): /.test(l));
}

const OBSOLETE = "Subject : hi\r\nX-A\t \t: b\r\n\tfolded\r\nReceived : from hop.example\r\n" +
  "X-B: c\r\n\r\nbody\r\n";

Deno.test({
  name:
    "header blocks side by side with Postfix 3.7: 'Name :' lines kept as headers, written 'Name:', counted as hops; a resent message gets Resent-Message-Id:/Resent-Date:; a mailbox From line becomes X-Mailbox-Line:; Bcc:/Resent-Bcc:/Content-Length:/Return-Path: dropped",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("hdrsyntax");
    const pfPort = freePort();
    const pf = await startPostfix(dir, {
      name: "hdrsyntax",
      smtpdPort: pfPort,
      mainCfExtra: [
        "mynetworks = 127.0.0.0/8",
        "smtpd_peername_lookup = no",
        "hopcount_limit = 5",
        // Held, so its queue file stays for postcat.
        "header_checks = static:HOLD",
        "",
      ].join("\n"),
    });
    const d = await startDaemon(
      ['mynetworks = ["127.0.0.0/8"]', "smtpd_peername_lookup = false", "hopcount_limit = 5"]
        .join("\n"),
    );
    try {
      assert.match(await sendMessage(pfPort, OBSOLETE), /^250 /);
      assert.match(await sendMessage(d.port, OBSOLETE), /^250 /);
      const held = await heldFiles(pf.queueDir);
      const [ours] = await queueFiles(d.queueDir, "incoming");
      assert.ok(ours && held[0]);
      const want = await clientLines(held[0]);
      assert.deepEqual(want, [
        "Subject: hi",
        "X-A: b",
        "\tfolded",
        "Received: from hop.example",
        "X-B: c",
        "",
        "body",
      ]);
      assert.deepEqual(await clientLines(ours), want);

      // A resent message: the same headers added, by name (values differ).
      for (const f of [...held, ours]) await Deno.remove(f);
      const resent = "Resent-From: r@x.example\r\nSubject: s\r\n\r\nbody\r\n";
      assert.match(await sendMessage(pfPort, resent), /^250 /);
      assert.match(await sendMessage(d.port, resent), /^250 /);
      const held2 = await heldFiles(pf.queueDir);
      const [ours2] = await queueFiles(d.queueDir, "incoming");
      assert.ok(ours2 && held2[0]);
      const names = async (file: string) =>
        (await postcat(file)).split("\n").filter((l) => /^[\w-]+: /.test(l))
          .map((l) => l.slice(0, l.indexOf(":")))
          .filter((n) =>
            !/^(sender|recipient|original_recipient|named_attribute|message_\w+|create_time)$/.test(
              n,
            )
          );
      const want2 = await names(held2[0]);
      assert.deepEqual(
        want2,
        [
          "Received",
          "Resent-From",
          "Subject",
          "Resent-Message-Id",
          "Resent-Date",
          "body",
        ].filter((n) => n !== "body"),
      );
      assert.deepEqual(await names(ours2), want2);

      // A mailbox "From " line on top stays in the header block as X-Mailbox-Line:
      // (not body, headers and all), and Bcc:, Resent-Bcc:, Content-Length: and
      // Return-Path: are dropped with their folded lines (message_drop_headers).
      for (const f of [...held2, ours2]) await Deno.remove(f);
      const dropped = "From someone Mon Jan  1 00:00:00 2024\r\n>From again\r\n" +
        "Bcc: a@x.example,\r\n\tb@x.example\r\nSubject: s\r\nContent-Length: 5\r\n" +
        "Return-Path: <z@x.example>\r\nResent-Bcc: r@x.example\r\nX-B: c\r\n\r\nbody\r\n";
      assert.match(await sendMessage(pfPort, dropped), /^250 /);
      assert.match(await sendMessage(d.port, dropped), /^250 /);
      const held3 = await heldFiles(pf.queueDir);
      const [ours3] = await queueFiles(d.queueDir, "incoming");
      assert.ok(ours3 && held3[0]);
      const want3 = await clientLines(held3[0]);
      assert.deepEqual(want3, [
        "X-Mailbox-Line: From someone Mon Jan  1 00:00:00 2024",
        "X-Mailbox-Line: >From again",
        "Subject: s",
        "X-B: c",
        "",
        "body",
      ]);
      assert.deepEqual(await clientLines(ours3), want3);

      // A folded line after the mailbox line starts the body; by BDAT, a "From "
      // line is body from the start.
      const pairs: [(port: number, data: string) => Promise<string>, string, string[]][] = [
        [sendMessage, "From x\r\n\tcont\r\nSubject: s\r\n\r\nb\r\n", [
          "X-Mailbox-Line: From x",
          "",
          "\tcont",
          "Subject: s",
          "",
          "b",
        ]],
        [sendChunk, "From x\r\nSubject: s\r\n\r\nb\r\n", ["", "From x", "Subject: s", "", "b"]],
      ];
      let last = [...held3, ours3];
      for (const [send, data, lines] of pairs) {
        for (const f of last) await Deno.remove(f);
        assert.match(await send(pfPort, data), /^250 /);
        assert.match(await send(d.port, data), /^250 /);
        const pfFiles = await heldFiles(pf.queueDir);
        const [ourFile] = await queueFiles(d.queueDir, "incoming");
        assert.ok(ourFile && pfFiles[0]);
        assert.deepEqual(await clientLines(pfFiles[0]), lines);
        assert.deepEqual(await clientLines(ourFile), lines);
        last = [...pfFiles, ourFile];
      }

      // Four "Received :" lines and the server's own make five hops: both refuse.
      const hops = "Received : from h.example\r\n".repeat(4) + "\r\nbody\r\n";
      assert.match(await sendMessage(pfPort, hops), /^554 /);
      assert.match(await sendMessage(d.port, hops), /^554 /);
    } finally {
      await d.stop();
      await pf.stop();
    }
  },
});
