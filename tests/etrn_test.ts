/**
 * ETRN end to end (the flush trigger observed by a real FIFO reader and a
 * UNIX socket server), notify_classes transcripts, debug_peer_list, and
 * smtpd queue list/cat.
 */

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { join } from "node:path";
import {
  makeWorkDir,
  postcat,
  queueFiles,
  RawClient,
  run,
  runStdin,
  smtpdArgs,
  startDaemon,
  writeConfig,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function etrnSession(
  port: number,
  domain = "example.com",
): Promise<{ reply: string; ms: number }> {
  const c = await RawClient.connect(port);
  try {
    await c.reply();
    await c.send("EHLO client.example\r\n");
    const ehlo = await c.reply();
    assert.match(ehlo, /^250-ETRN\r$/m);
    const t0 = Date.now();
    await c.send(`ETRN ${domain}\r\n`);
    const reply = await c.reply();
    return { reply, ms: Date.now() - t0 };
  } finally {
    c.close();
  }
}

Deno.test({
  name: "ETRN writes FADI to a public/qmgr FIFO read by the test; 458 at once without a reader",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("etrn");
    const d = await startDaemon("smtpd_peername_lookup = false", { dir });
    try {
      const fifo = join(d.queueDir, "public", "qmgr");
      const mk = await run("mkfifo", [fifo]);
      assert.equal(mk.code, 0, mk.stderr);
      // No reader: the open fails at once, the client gets 458.
      const none = await etrnSession(d.port);
      assert.equal(none.reply, "458 4.0.0 Unable to queue messages for node example.com\r\n");
      // A blocking open would never return (no reader ever comes); this first
      // ETRN also loads node:fs in the server, which a loaded host makes slow.
      assert.ok(none.ms < 5000, `took ${none.ms} ms`);
      // A reader: it receives the request bytes, the client gets 250. Until
      // head has the FIFO open the server finds no reader (458, as above):
      // ask again rather than guess how long head takes to start.
      const reader = new Deno.Command("timeout", {
        args: ["10", "head", "-c", "4", fifo],
        stdout: "piped",
      }).spawn();
      let ok = await etrnSession(d.port, "@example.com");
      for (let i = 0; i < 50 && ok.reply.startsWith("458 "); i++) {
        await new Promise((r) => setTimeout(r, 100));
        ok = await etrnSession(d.port, "@example.com");
      }
      const got = new TextDecoder().decode((await reader.output()).stdout);
      assert.equal(ok.reply, "250 2.0.0 Queuing started\r\n");
      assert.equal(got, "FADI");
      // Missing endpoint: 458 as well.
      await Deno.remove(fifo);
      assert.match((await etrnSession(d.port)).reply, /^458 /);
      await d.waitForLog("ETRN example.com from unknown[127.0.0.1]: queuing started");
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "ETRN over a UNIX-domain socket endpoint (Postfix's qmgr unix service)",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("etrn");
    const d = await startDaemon("smtpd_peername_lookup = false", { dir });
    const received: string[] = [];
    const server = createServer((sock) => sock.on("data", (b) => received.push(b.toString())));
    try {
      await new Promise<void>((r) => server.listen(join(d.queueDir, "public", "qmgr"), () => r()));
      assert.equal((await etrnSession(d.port)).reply, "250 2.0.0 Queuing started\r\n");
      const end = Date.now() + 2000;
      while (received.join("") !== "FADI" && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(received.join(""), "FADI");
    } finally {
      server.close();
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "ETRN replies: 503 before HELO (smtpd_helo_required) and in a transaction, 501 syntax, 459 queue names, restrictions",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      'smtpd_peername_lookup = false\nsmtpd_helo_required = true\nsmtpd_etrn_restrictions = ["check_etrn_access", "inline:{ forbidden.example=REJECT not for you }"]',
    );
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("ETRN example.com\r\n");
      assert.equal(await c.reply(), "503 5.5.1 Error: send HELO/EHLO first\r\n");
      await c.send("EHLO x\r\n");
      await c.reply();
      await c.send("ETRN\r\n");
      assert.equal(await c.reply(), "501 5.5.4 Syntax: ETRN domain\r\n");
      await c.send("ETRN bad..domain\r\n");
      assert.equal(await c.reply(), "501 5.5.4 Error: invalid parameter syntax\r\n");
      await c.send("ETRN #queue1\r\n");
      assert.match(await c.reply(), /^459 4\.7\.1 <#queue1>/);
      await c.send("ETRN forbidden.example\r\n");
      assert.equal(
        await c.reply(),
        "554 5.7.1 <forbidden.example>: Etrn command rejected: not for you\r\n",
      );
      await c.send("MAIL FROM:<a@example.org>\r\nETRN example.com\r\n");
      await c.reply();
      assert.equal(await c.reply(), "503 5.5.1 Error: MAIL transaction in progress\r\n");
    } finally {
      c.close();
      await d.stop();
    }
  },
});

Deno.test({
  name: "ETRN is refused in stand-alone mode without a network peer",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("etrn");
    const { configFile } = await writeConfig(work);
    const r = await runStdin(configFile, "EHLO me\r\nETRN example.com\r\nQUIT\r\n");
    assert.match(r.stdout, /458 4\.7\.1 Unable to queue messages: ETRN needs a network client\r\n/);
  },
});

Deno.test({
  name: "notify_classes = protocol: a protocol violation queues a transcript for postmaster",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      'smtpd_peername_lookup = false\nnotify_classes = ["protocol"]\nmyorigin = "test.example"',
    );
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send(
        "EHLO x\r\nRCPT TO:<a@b.example>\r\nBOGUS\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n",
      );
      for (let i = 0; i < 6; i++) await c.reply();
      await c.send("Subject: secret\r\n\r\nsecret body text\r\n.\r\nQUIT\r\n");
      await c.reply();
      await c.reply();
      await d.waitForLog(/notice of protocol problems sent to postmaster/);
      const files = await queueFiles(d.queueDir);
      assert.equal(files.length, 2, "the message and the transcript");
      const texts = await Promise.all(files.map(postcat));
      const notice = texts.find((t) => t.includes("Transcript of session follows"));
      assert.ok(notice, texts.join("\n---\n"));
      assert.match(notice, /^recipient: postmaster@test\.example$/m);
      assert.match(notice, /^sender: $/m);
      assert.match(
        notice,
        /^Subject: deno-smtpd SMTP server: errors from unknown\[127\.0\.0\.1\]$/m,
      );
      assert.match(notice, /^ In: {2}RCPT TO:<a@b\.example>$/m);
      assert.match(notice, /^ Out: 503 5\.5\.1 Error: need MAIL command$/m);
      assert.match(notice, /^ Out: 500 5\.5\.2 Error: command not recognized$/m);
      assert.doesNotMatch(notice, /secret body text/, "message bodies are left out");
    } finally {
      c.close();
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "smtpd_history_flush_threshold: a long transcript is mailed and started anew before the next command",
  ...opts,
  fn: async () => {
    const d = await startDaemon(
      'smtpd_peername_lookup = false\nnotify_classes = ["protocol"]\nsmtpd_history_flush_threshold = 5',
    );
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      // EHLO and its reply pass 5 lines with no problem: dropped, not mailed.
      for (const cmd of ["EHLO x", "BOGUS", "NOOP", "NOOP", "SECOND", "QUIT"]) {
        await c.send(`${cmd}\r\n`);
        await c.reply();
      }
      await d.waitForLog(/disconnect from/);
      await d.waitForLog(/notice of protocol problems[^]*notice of protocol problems/);
      const texts = await Promise.all((await queueFiles(d.queueDir)).map(postcat));
      assert.equal(texts.length, 2, texts.join("\n---\n"));
      const first = texts.find((t) => /^ In: {2}BOGUS$/m.test(t));
      const second = texts.find((t) => /^ In: {2}SECOND$/m.test(t));
      assert.ok(first && second && first !== second, texts.join("\n---\n"));
      // The first was mailed before SECOND was read; the second holds only what followed.
      assert.doesNotMatch(first, /SECOND|EHLO x/);
      assert.match(first, /^ Out: 500 5\.5\.2 Error: command not recognized$/m);
      assert.doesNotMatch(second, /^ In: {2}(BOGUS|NOOP)$/m);
      assert.match(second, /^ In: {2}QUIT$/m);
    } finally {
      c.close();
      await d.stop();
    }
  },
});

const SMTPLIB_NOOP = `
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), source_address=(sys.argv[2], 0))
s.ehlo("debug.example"); s.noop(); s.quit()
`;

Deno.test({
  name: "debug_peer_list: that client's commands and replies appear in the log, others' do not",
  ...opts,
  fn: async () => {
    const d = await startDaemon('smtpd_peername_lookup = false\ndebug_peer_list = ["127.0.0.1"]');
    try {
      assert.equal(
        (await run("python3", ["-c", SMTPLIB_NOOP, String(d.port), "127.0.0.1"])).code,
        0,
      );
      assert.equal(
        (await run("python3", ["-c", SMTPLIB_NOOP, String(d.port), "127.0.0.5"])).code,
        0,
      );
      await d.waitForLog("disconnect from unknown[127.0.0.5]");
      assert.match(d.log(), /< unknown\[127\.0\.0\.1\]: ehlo debug\.example/);
      assert.match(d.log(), /> unknown\[127\.0\.0\.1\]: 250 2\.0\.0 Ok/);
      assert.doesNotMatch(d.log(), /[<>] unknown\[127\.0\.0\.5\]/);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "debug_peer_level: at 2 that client's restriction steps are logged; at 1 only its dialog",
  ...opts,
  fn: async () => {
    for (const level of [2, 1]) {
      const d = await startDaemon(
        `smtpd_peername_lookup = false\ndebug_peer_list = ["127.0.0.1"]\ndebug_peer_level = ${level}`,
      );
      try {
        const c = await RawClient.connect(d.port);
        assert.match(await c.reply(), /^220 /);
        for (
          const line of ["HELO t.example", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.com>"]
        ) {
          await c.send(`${line}\r\n`);
          assert.match(await c.reply(), /^250 /);
        }
        await c.send("QUIT\r\n");
        await c.reply();
        c.close();
        await d.waitForLog("disconnect from unknown[127.0.0.1]");
        const steps = /RCPT from unknown\[127\.0\.0\.1\]: try permit_mynetworks/;
        if (level === 2) {
          assert.match(d.log(), steps);
          assert.match(d.log(), /RCPT from unknown\[127\.0\.0\.1\]: permit_mynetworks => permit/);
        } else {
          assert.doesNotMatch(d.log(), steps);
        }
        // Level 1 and up: the dialog.
        assert.match(d.log(), /< unknown\[127\.0\.0\.1\]: RCPT TO:<b@example\.com>/);
      } finally {
        await d.stop();
      }
    }
  },
});

Deno.test({
  name: "smtpd queue list and queue cat show envelope and content, with --json",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("queue");
    const { configFile } = await writeConfig(work);
    const r = await runStdin(
      configFile,
      "HELO me\r\nMAIL FROM:<q@example.org>\r\nRCPT TO:<r@example.com>\r\nDATA\r\nSubject: q\r\n\r\nqueued body\r\n.\r\nQUIT\r\n",
    );
    const id = /queued as (\w+)/.exec(r.stdout)?.[1] as string;
    assert.ok(id);
    const list = await run(
      Deno.execPath(),
      await smtpdArgs(["queue", "list", "-c", configFile, "--json"]),
    );
    const entries = JSON.parse(list.stdout);
    assert.equal(entries.length, 1);
    assert.equal(entries[0].id, id);
    assert.equal(entries[0].queue, "maildrop");
    assert.equal(entries[0].sender, "q@example.org");
    assert.deepEqual(entries[0].recipients, ["r@example.com"]);
    assert.equal(entries[0].complete, true);
    const text = await run(Deno.execPath(), await smtpdArgs(["queue", "list", "-c", configFile]));
    assert.match(text.stdout, new RegExp(`^${id} .* maildrop  q@example\\.org$`, "m"));
    const cat = await run(Deno.execPath(), await smtpdArgs(["queue", "cat", id, "-c", configFile]));
    assert.equal(cat.code, 0);
    assert.match(cat.stdout, /^sender: q@example\.org$/m);
    assert.match(cat.stdout, /^queued body$/m);
    const catJson = JSON.parse(
      (await run(
        Deno.execPath(),
        await smtpdArgs(["queue", "cat", id, "--json", "-c", configFile]),
      ))
        .stdout,
    );
    assert.match(catJson.content, /Subject: q\nMessage-Id: /);
    const missing = await run(
      Deno.execPath(),
      await smtpdArgs(["queue", "cat", "NOSUCHID", "-c", configFile]),
    );
    assert.equal(missing.code, 1);
  },
});
