/**
 * CHUNKING (RFC 3030) end to end: the real daemon, Debian's Exim sending
 * with BDAT, a Python raw-socket client pipelining chunks, queue files read
 * back with Postfix's postcat.
 */

import assert from "node:assert/strict";
import { basename } from "node:path";
import { eximSend, prepareExim } from "./_exim.ts";
import { allEntries, postcat, queueFiles, run, startDaemon, waitFor } from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Exim, or why it cannot run here (its test is then ignored, with the reason in its name). */
const EXIM = await prepareExim();

Deno.test({
  name: "Exim sends with BDAT when CHUNKING is offered; postcat shows the message intact" +
    (typeof EXIM === "string" ? ` (skipped: ${EXIM})` : ""),
  ...opts,
  ignore: typeof EXIM === "string",
  fn: async () => {
    const exim = EXIM;
    if (typeof exim === "string") throw new Error(exim);
    const d = await startDaemon();
    try {
      const lines = Array.from({ length: 400 }, (_, i) => `line ${i} ${"x".repeat(60)}`);
      const message = [
        "Subject: chunked by Exim",
        "From: sender@exim.test.example",
        "",
        ".a leading dot stays one dot",
        "QUIT",
        ...lines,
        "the end",
        "",
      ].join("\n");
      const r = await eximSend(exim, d.port, "rcpt@example.com", message);
      assert.equal(r.code, 0, r.transcript);
      assert.match(r.transcript, /CHUNKING/);
      // Exim sends the headers and the body as two chunks, the second LAST.
      assert.match(r.transcript, /SMTP\+> BDAT \d+\n[\s\S]*250 2\.0\.0 Ok: \d+ bytes\n/);
      assert.match(r.transcript, /SMTP\+> BDAT \d+ LAST\n/);
      const m = /250 2\.0\.0 Ok: (\d+) bytes queued as (\w+)/.exec(r.transcript);
      assert.ok(m, r.transcript);
      const files = await queueFiles(d.queueDir);
      assert.deepEqual(files.map((f) => basename(f)), [m[2]]);
      const pc = await postcat(files[0] as string);
      assert.match(pc, /^recipient: rcpt@example\.com$/m);
      assert.match(pc, /^Subject: chunked by Exim$/m);
      assert.match(pc, /^\.a leading dot stays one dot$/m);
      assert.match(pc, /^QUIT$/m);
      for (const l of lines) assert.ok(pc.includes(`\n${l}\n`), `missing: ${l}`);
      assert.match(pc, /^the end$/m);
      await d.waitForLog(`${m[2]}: from=<`);
    } finally {
      await d.stop();
    }
  },
});

/** Chunks pipelined in one write each, a line cut between chunks, a refused chunk kept in step. */
const PIPELINED = `
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = s.makefile("rb")
def reply():
    lines = []
    while True:
        l = f.readline().decode()
        lines.append(l.strip())
        if l[3:4] == " ":
            return lines
print(reply()[-1])
s.sendall(b"EHLO py.example\\r\\n")
print("ehlo:", " ".join(reply()))
c1 = b"Subject: pipelined\\r\\n\\r\\nfirst QUI"
c2 = b"T\\r\\nRSET\\r\\n.\\r\\nlast line without CRLF"
# Everything in one write: MAIL, RCPT, both chunks and their BDAT lines.
s.sendall(b"MAIL FROM:<py@example.org>\\r\\nRCPT TO:<r@example.com>\\r\\n"
          + b"BDAT %d\\r\\n" % len(c1) + c1 + b"BDAT %d LAST\\r\\n" % len(c2) + c2)
for _ in range(4):
    print(reply()[-1])
# A chunk without a transaction is read and dropped: the NOOP after it runs.
junk = b"MAIL FROM:<evil@example.org>\\r\\n" * 10
s.sendall(b"BDAT %d LAST\\r\\n" % len(junk) + junk + b"NOOP\\r\\n")
print(reply()[-1])
print(reply()[-1])
s.sendall(b"QUIT\\r\\n")
print(reply()[-1])
`;

Deno.test({
  name: "python raw socket: pipelined BDAT chunks, a line cut between chunks, no unstuffing",
  ...opts,
  fn: async () => {
    const d = await startDaemon();
    try {
      const r = await run("python3", ["-c", PIPELINED, String(d.port)]);
      assert.equal(r.code, 0, r.stderr);
      const out = r.stdout.split("\n");
      assert.match(out[1] ?? "", / 250 CHUNKING$/);
      assert.doesNotMatch(out[1] ?? "", /BINARYMIME/);
      assert.deepEqual(out.slice(2, 5), [
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        "250 2.0.0 Ok: 31 bytes",
      ]);
      const m = /^250 2\.0\.0 Ok: 67 bytes queued as (\w+)$/.exec(out[5] ?? "");
      assert.ok(m, r.stdout);
      assert.deepEqual(out.slice(6, 9), [
        "503 5.5.1 Error: need RCPT command",
        "250 2.0.0 Ok",
        "221 2.0.0 Bye",
      ]);
      const files = await queueFiles(d.queueDir);
      assert.equal(files.length, 1);
      const pc = await postcat(files[0] as string);
      const body = pc.slice(pc.indexOf("Subject: pipelined"));
      assert.match(body, /\nfirst QUIT\nRSET\n\.\nlast line without CRLF\n/);
    } finally {
      await d.stop();
    }
  },
});

/** A Python client's start: it connects to argv[1], says EHLO and reads past the reply. */
const AFTER_EHLO = `
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = s.makefile("rb")
f.readline()
s.sendall(b"EHLO py.example\\r\\n")
while f.readline()[3:4] != b" ":
    pass
`;

/**
 * Runs a Python client: AFTER_EHLO, then `rest`.
 * @returns the lines it printed
 */
async function pythonAfterEhlo(port: number, rest: string, timeoutMs?: number): Promise<string[]> {
  const r = await run("python3", ["-c", AFTER_EHLO + rest, String(port)], { timeoutMs });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split("\n");
}

/** The attacker's view: a huge announced chunk, then the connection. */
const HUGE = `
s.sendall(b"MAIL FROM:<a@example.org>\\r\\nRCPT TO:<b@example.com>\\r\\nBDAT 4000000000 LAST\\r\\n")
for _ in range(3):
    print(f.readline().decode().strip())
# The server hung up instead of waiting for 4 GB.
print("eof" if f.readline() == b"" else "open")
`;

Deno.test({
  name: "BDAT 4000000000: refused at once, nothing allocated, the connection closed",
  ...opts,
  fn: async () => {
    const d = await startDaemon("message_size_limit = 1048576");
    try {
      assert.deepEqual(await pythonAfterEhlo(d.port, HUGE, 20000), [
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        "552 5.3.4 Chunk exceeds message size limit",
        "eof",
      ]);
      await d.waitForLog("too much BDAT content -- disabling further input");
      assert.deepEqual(await queueFiles(d.queueDir), []);
    } finally {
      await d.stop();
    }
  },
});

/** A message refused part-way: a chunk past the limit, then one past the cut-off. */
const PART_WAY = `
s.sendall(b"MAIL FROM:<a@example.org>\\r\\nRCPT TO:<b@example.com>\\r\\n")
s.sendall(b"BDAT 100\\r\\n" + b"x" * 100)
s.sendall(b"BDAT 1048576\\r\\n" + b"y" * 1048576)
s.sendall(b"BDAT 600000\\r\\n")
for _ in range(5):
    print(f.readline().decode().strip())
print("eof" if f.readline() == b"" else "open")
`;

Deno.test({
  name: "BDAT past the cut-off after a refused chunk: the warning names the message's queue ID",
  ...opts,
  fn: async () => {
    const d = await startDaemon("message_size_limit = 1048576");
    try {
      assert.deepEqual(await pythonAfterEhlo(d.port, PART_WAY, 20000), [
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        "250 2.0.0 Ok: 100 bytes",
        "552 5.3.4 Chunk exceeds message size limit",
        "551 5.0.0 Discarded 600000 bytes after earlier error",
        "eof",
      ]);
      await d.waitForLog("too much BDAT content");
      // As Postfix's skip_bdat: the ID the message had when its chunk was refused.
      const id = /(\w+): BDAT request from \S+ exceeds message size limit/.exec(d.log())?.[1];
      assert.ok(id && id !== "NOQUEUE", d.log());
      assert.match(d.log(), new RegExp(`${id}: too much BDAT content -- disabling further input`));
      assert.deepEqual(await queueFiles(d.queueDir), []);
    } finally {
      await d.stop();
    }
  },
});

/**
 * A chunk that is not the last, within message_size_limit in octets but
 * past it as stored (each bare LF is stored as a line end, 2 bytes).
 */
const STORED_TOO_BIG = `
chunk = (b"x" * 9 + b"\\n") * 104857
s.sendall(b"MAIL FROM:<a@example.org>\\r\\nRCPT TO:<b@example.com>\\r\\n")
s.sendall(b"BDAT %d\\r\\n" % len(chunk) + chunk)
s.sendall(b"BDAT 100\\r\\n" + b"y" * 100 + b"RSET\\r\\nQUIT\\r\\n")
for _ in range(6):
    print(f.readline().decode().strip())
`;

Deno.test({
  name:
    "a chunk (not the last) that leaves the message too big as stored gets 552 at once, as Postfix's; nothing stays queued",
  ...opts,
  fn: async () => {
    const d = await startDaemon("message_size_limit = 1048576");
    try {
      assert.deepEqual(await pythonAfterEhlo(d.port, STORED_TOO_BIG, 20000), [
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        // Was "250 2.0.0 Ok: 1048570 bytes", a chunk taken for a message
        // that could no longer be queued.
        "552 5.3.4 Error: message file too big",
        "551 5.0.0 Discarded 100 bytes after earlier error",
        "250 2.0.0 Ok",
        "221 2.0.0 Bye",
      ]);
      await d.waitForLog(/reject: BDAT from .*: 552 5\.3\.4 Error: message file too big/);
      await d.waitForLog("disconnect from");
      await waitFor(
        "the queue file removed",
        async () => (await allEntries(d.queueDir)).length === 0,
      ).catch(() => {});
      assert.deepEqual(await allEntries(d.queueDir), []);
    } finally {
      await d.stop();
    }
  },
});

/**
 * A BDAT line we cannot read as a command, its chunk holding a command.
 * @param tail what follows "BDAT 31" on the line (Python bytes syntax)
 */
const unreadableBdat = (tail: string) => `
chunk = b"MAIL FROM:<chunk@example.org>\\r\\n"
s.sendall(b"BDAT %d" % len(chunk) + ${tail} + b"\\r\\n" + chunk)
# Without the refusal the server would wait for the next command.
s.settimeout(5)
while True:
    try:
        l = f.readline()
    except socket.timeout:
        print("no reply in 5 s")
        break
    except ConnectionResetError:
        l = b""  # closed with our bytes unread: a reset, not a FIN
    if not l:
        print("eof")
        break
    print(l.decode().strip())
`;

Deno.test({
  name:
    "a BDAT line with a control character, or too long, gets 521 and the connection closed: its chunk is never read as commands",
  ...opts,
  fn: async () => {
    const d = await startDaemon();
    try {
      // Was "500 5.5.2 Error: bad syntax" and "500 5.5.0 Error: line too
      // long", then "250 2.1.0 Ok": the chunk's MAIL FROM run as a command.
      for (const tail of [`b" \\x1bLAST"`, `b" LAST" + b" " * 3000`]) {
        assert.deepEqual(await pythonAfterEhlo(d.port, unreadableBdat(tail), 20000), [
          "521 5.5.4 Syntax: BDAT count [LAST]",
          "eof",
        ], tail);
      }
      await d.waitForLog(
        "malformed BDAT command syntax from unknown[127.0.0.1]: BDAT 31 ?LAST",
      );
      await d.waitForLog(
        /malformed BDAT command syntax from unknown\[127\.0\.0\.1\]: BDAT 31 LAST {10}/,
      );
    } finally {
      await d.stop();
    }
  },
});

/**
 * A BDAT line whose words a vertical tab, form feed or CR separates: white
 * space to Postfix's tokenizer, which reads the chunk (Postfix 3.7 queues
 * each of these).
 * @param line the BDAT line (Python bytes syntax)
 */
const spacedBdat = (line: string) => `
s.settimeout(10)
chunk = b"MAIL FROM:<chunk@example.org>\\r\\n"
s.sendall(b"MAIL FROM:<a@example.org>\\r\\nRCPT TO:<b@example.com>\\r\\n" + ${line} + b"\\r\\n" + chunk)
for _ in range(3):
    print(f.readline().decode().strip())
s.sendall(b"QUIT\\r\\n")
print(f.readline().decode().strip())
`;

Deno.test({
  name:
    "a BDAT line whose words a vertical tab, form feed or CR separates has its chunk read as the message, never as commands",
  ...opts,
  fn: async () => {
    const d = await startDaemon();
    try {
      // Was "500 5.5.2 Error: bad syntax", then the chunk's MAIL FROM run as
      // a command ("503 5.5.1 Error: nested MAIL command").
      const lines = [`b"BDAT\\x0b31 LAST"`, `b"\\x0cBDAT 31\\x0cLAST"`, `b"BDAT\\r31 LAST\\x0b"`];
      for (const line of lines) {
        const got = await pythonAfterEhlo(d.port, spacedBdat(line), 20000);
        assert.equal(got.length, 4, got.join("\n"));
        assert.deepEqual(got.slice(0, 2), ["250 2.1.0 Ok", "250 2.1.5 Ok"], line);
        assert.match(got[2] as string, /^250 2\.0\.0 Ok: 31 bytes queued as \w+$/, line);
        assert.equal(got[3], "221 2.0.0 Bye", line);
      }
      const files = await queueFiles(d.queueDir);
      assert.equal(files.length, lines.length);
      for (const file of files) {
        assert.match(await postcat(file), /^MAIL FROM:<chunk@example\.org>$/m);
      }
    } finally {
      await d.stop();
    }
  },
});

/** A client that leaves mid-chunk, after a first chunk was accepted. */
const LEAVES = `
# Large enough that the queue file has content on disk.
chunk = b"Subject: x\\r\\n\\r\\n" + b"%s\\r\\n" % (b"y" * 78) * 4000
s.sendall(b"MAIL FROM:<a@example.org>\\r\\nRCPT TO:<b@example.com>\\r\\nBDAT %d\\r\\n" % len(chunk) + chunk)
for _ in range(3):
    print(f.readline().decode().strip())
s.sendall(b"BDAT 100 LAST\\r\\nonly ten b")
s.close()
`;

Deno.test({
  name: "a client that leaves mid-chunk leaves no queue file behind",
  ...opts,
  fn: async () => {
    const d = await startDaemon();
    try {
      const printed = await pythonAfterEhlo(d.port, LEAVES);
      assert.match(printed.join("\n"), /250 2\.0\.0 Ok: 320014 bytes/);
      await d.waitForLog("lost connection after BDAT");
      await d.waitForLog("disconnect from");
      // The session starts the file's removal (setBdat's abort, after the
      // writes still in flight) without waiting for it: it may end, and log
      // its disconnect, before the file is gone.
      await waitFor(
        "the queue file removed",
        async () => (await allEntries(d.queueDir)).length === 0,
      ).catch(() => {});
      assert.deepEqual(await allEntries(d.queueDir), []);
    } finally {
      await d.stop();
    }
  },
});

/** A client that resets the connection (RST, not FIN) mid-chunk. */
const RESETS = `
import struct, time
s.sendall(b"MAIL FROM:<a@example.org>\\r\\nRCPT TO:<b@example.com>\\r\\n")
print(f.readline().decode().strip())
print(f.readline().decode().strip())
s.sendall(b"BDAT 100\\r\\nabc\\r\\nhalf")
# No reply comes for a partial chunk: give the server a moment to read it first.
time.sleep(0.5)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
`;

Deno.test({
  name:
    "a client that resets the connection mid-chunk: 'lost connection after BDAT (9 bytes)' as Postfix logs it, no queue file",
  ...opts,
  fn: async () => {
    const d = await startDaemon();
    try {
      assert.deepEqual(await pythonAfterEhlo(d.port, RESETS), ["250 2.1.0 Ok", "250 2.1.5 Ok"]);
      // Was "lost connection after BDAT from ...", without the octets.
      await d.waitForLog("lost connection after BDAT (9 bytes) from unknown[127.0.0.1]");
      await waitFor(
        "the queue file removed",
        async () => (await allEntries(d.queueDir)).length === 0,
      ).catch(() => {});
      assert.deepEqual(await allEntries(d.queueDir), []);
    } finally {
      await d.stop();
    }
  },
});

/**
 * One large chunk sent line by line over a slow link, as Postfix's smtp
 * client sends a whole message as one BDAT LAST: the chunk takes longer
 * than smtpd_timeout in all, each line much less.
 */
const SLOW_CHUNK = `
import time
s.sendall(b"MAIL FROM:<a@example.org>\\r\\nRCPT TO:<b@example.com>\\r\\n")
lines = [b"Subject: slow link\\r\\n", b"\\r\\n"] + [b"line %d %s\\r\\n" % (i, b"z" * 70) for i in range(8)]
s.sendall(b"BDAT %d LAST\\r\\n" % sum(len(l) for l in lines))
for l in lines:
    s.sendall(l)
    time.sleep(0.5)
for _ in range(3):
    print(f.readline().decode().strip())
`;

Deno.test({
  name:
    "a chunk that takes longer than smtpd_timeout in all, each line in time, is taken as DATA takes it",
  ...opts,
  fn: async () => {
    const d = await startDaemon("smtpd_timeout = 2");
    try {
      const printed = await pythonAfterEhlo(d.port, SLOW_CHUNK, 20000);
      assert.deepEqual(printed.slice(0, 2), ["250 2.1.0 Ok", "250 2.1.5 Ok"]);
      const id = /^250 2\.0\.0 Ok: \d+ bytes queued as (\w+)$/.exec(printed[2] ?? "")?.[1];
      assert.ok(id, `${printed.join("\n")}\n${d.log()}`);
      const files = await queueFiles(d.queueDir);
      assert.deepEqual(files.map((f) => basename(f)), [id]);
      const pc = await postcat(files[0] as string);
      assert.match(pc, /^Subject: slow link$/m);
      assert.match(pc, /^line 7 z{70}$/m);
    } finally {
      await d.stop();
    }
  },
});
