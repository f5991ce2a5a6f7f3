/**
 * The encoding attribute as Postfix's smtp client uses it when it relays
 * our message onward. Postfix's cleanup (detect_8bit_encoding_header, on
 * by default) writes `encoding=8bit` into the queue file's extracted
 * segment when any header block of the message, a MIME part's included,
 * says `Content-Transfer-Encoding: 8bit` (or `binary`), whatever the
 * client's BODY= said; Postfix's qmgr goes by that last encoding record.
 * So a message sent with BODY=7BIT (or without BODY=) that carries 8-bit
 * text is converted to quoted-printable for a next hop without 8BITMIME,
 * and announced with BODY=8BITMIME to one with it.
 *
 * Each message goes, in the same dialogue, to our daemon and to the
 * private Postfix's own smtpd (the reference); their shared queue's qmgr
 * relays both through Postfix's smtp client to two smtp-sinks: one that
 * does not announce 8BITMIME (dumping each message to a file) and one that
 * does (logging the MAIL FROM command). Needs root, Postfix and smtp-sink.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  freePort,
  greeted,
  makeWorkDir,
  queuedThenQuit,
  run,
  sh,
  spawnLogged,
  startDaemon,
  waitFor,
} from "./_harness.ts";
import { havePostfix, SMTP_CLIENT_SERVICE, startPostfix } from "./_postfix.ts";

const isRoot = Deno.uid() === 0;
const hasPostfix = await havePostfix();
const hasSink = (await run("sh", ["-c", "command -v smtp-sink"])).code === 0;

/** One message: its MAIL FROM parameters, recipient, and content (CRLF lines). */
interface Case {
  readonly mail: string;
  readonly rcpt: string;
  readonly content: string;
  /** Send the content as BDAT chunks of this many bytes; else DATA. */
  readonly chunk?: number;
}

/** Sends one message, returns its queue ID. */
async function send(port: number, c: Case): Promise<string> {
  const cl = await greeted(port);
  try {
    await cl.send(`MAIL FROM:<s@s.example>${c.mail}\r\n`);
    assert.equal(await cl.reply(), "250 2.1.0 Ok\r\n");
    await cl.send(`RCPT TO:<${c.rcpt}>\r\n`);
    assert.match(await cl.reply(), /^250 2\.1\.5 /);
    const bytes = new TextEncoder().encode(c.content);
    let last = "";
    if (c.chunk) {
      for (let at = 0; at < bytes.length; at += c.chunk) {
        const piece = bytes.subarray(at, at + c.chunk);
        const isLast = at + c.chunk >= bytes.length;
        await cl.send(`BDAT ${piece.length}${isLast ? " LAST" : ""}\r\n`);
        await cl.send(piece);
        last = await cl.reply();
        assert.match(last, /^250 /);
      }
    } else {
      await cl.send("DATA\r\n");
      assert.match(await cl.reply(), /^354 /);
      await cl.send(bytes);
      await cl.send(".\r\n");
      last = await cl.reply();
    }
    return await queuedThenQuit(cl, last);
  } finally {
    cl.close();
  }
}

const TEXT_8BIT = [
  "From: <s@s.example>",
  "MIME-Version: 1.0",
  "Content-Type: text/plain; charset=utf-8",
  "Content-Transfer-Encoding: 8bit",
  "",
  "Gr\u00fc\u00dfe aus K\u00f6ln",
  "",
].join("\r\n");

const PART_8BIT = [
  "From: <s@s.example>",
  "MIME-Version: 1.0",
  'Content-Type: multipart/mixed; boundary="b1"',
  "",
  "--b1",
  "Content-Type: text/plain; charset=utf-8",
  "Content-Transfer-Encoding:",
  " 8BIT",
  "",
  "Gr\u00fc\u00dfe aus K\u00f6ln",
  "--b1--",
  "",
].join("\r\n");

Deno.test({
  name:
    "BODY=7BIT or none with Content-Transfer-Encoding: 8bit: Postfix's smtp client converts our message for a 7-bit next hop and says BODY=8BITMIME to an 8-bit one, as for its own smtpd's",
  ignore: !isRoot || !hasPostfix || !hasSink,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("encoding-relay");
    const sevenPort = freePort();
    const eightPort = freePort();
    const pfPort = freePort();
    await sh(`mkdir -p ${dir}/sink && chown nobody ${dir}/sink`);
    // -8: no 8BITMIME in its EHLO reply; -d: each message to a file of its own.
    const seven = spawnLogged("smtp-sink", [
      "-8",
      "-u",
      "nobody",
      "-d",
      join(dir, "sink", "%M."),
      `127.0.0.1:${sevenPort}`,
      "10",
    ]);
    // -v: the commands it gets, in its log.
    const eight = spawnLogged("smtp-sink", ["-v", "-u", "nobody", `127.0.0.1:${eightPort}`, "10"]);
    let pf;
    let daemon;
    try {
      pf = await startPostfix(dir, {
        name: "encrelay",
        smtpdPort: pfPort,
        mainCfExtra: [
          `transport_maps = inline:{ seven.example=smtp:[127.0.0.1]:${sevenPort}, ` +
          `eight.example=smtp:[127.0.0.1]:${eightPort} }`,
          "smtp_tls_security_level = none",
          "",
        ].join("\n"),
        masterCfExtra: SMTP_CLIENT_SERVICE,
      });
      daemon = await startDaemon(pf.smtpdConfig, { dir });
      const cases: [string, Case][] = [
        ["7bit, BDAT", {
          mail: " BODY=7BIT",
          rcpt: "a@seven.example",
          content: TEXT_8BIT.replace("From:", "Subject: seven-a\r\nFrom:"),
          chunk: 17,
        }],
        ["none, part", {
          mail: "",
          rcpt: "b@seven.example",
          content: PART_8BIT.replace("From:", "Subject: seven-b\r\nFrom:"),
        }],
        ["7bit, to 8", { mail: " BODY=7BIT", rcpt: "c@eight.example", content: TEXT_8BIT }],
        ["none, to 8", { mail: "", rcpt: "d@eight.example", content: PART_8BIT, chunk: 40 }],
      ];
      const ids = new Map<string, [string, string]>();
      for (const [what, c] of cases) {
        ids.set(what, [await send(pfPort, c), await send(daemon.port, c)]);
      }
      for (const [theirs, ours] of ids.values()) {
        for (const id of [theirs, ours]) {
          await pf.waitForLog(`${id} relayed`, new RegExp(`${id}: to=<.*status=sent`));
        }
      }
      const log = await pf.logText();
      // The 7-bit next hop: both copies of each message converted.
      const dumps: string[] = [];
      for await (const e of Deno.readDir(join(dir, "sink"))) {
        dumps.push(await Deno.readTextFile(join(dir, "sink", e.name)));
      }
      for (const subject of ["seven-a", "seven-b"]) {
        const got = dumps.filter((d) => d.includes(`Subject: ${subject}`));
        assert.equal(got.length, 2, `${subject}: ${got.length} copies\n${log}`);
        for (const d of got) {
          assert.match(d, /^Content-Transfer-Encoding: quoted-printable$/mi, d);
          assert.match(d, /^Gr=C3=BC=C3=9Fe aus K=C3=B6ln$/m, d);
          assert.doesNotMatch(d, /Grüße/, d);
        }
      }
      // The 8-bit next hop: BODY=8BITMIME for both copies of each.
      await waitFor("the 8-bit sink's log", () => {
        const n = eight.log().match(/MAIL FROM:<s@s\.example>.*BODY=8BITMIME/g)?.length ?? 0;
        return Promise.resolve(n >= 4);
      }, 5000).catch(() => {});
      const mails = eight.log().split("\n").filter((l) => l.includes("MAIL FROM:"));
      assert.equal(mails.length, 4, eight.log());
      for (const m of mails) assert.match(m, /BODY=8BITMIME/, eight.log());
    } finally {
      await daemon?.stop();
      await pf?.stop();
      await seven.stop();
      await eight.stop();
    }
  },
});
