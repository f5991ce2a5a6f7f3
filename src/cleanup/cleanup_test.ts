import assert from "node:assert/strict";
import { join } from "node:path";
import { formatReply, REPLY } from "../protocol/reply.ts";
import { decodeRecords, type QueueRecord, QueueStore, REC } from "../queue/mod.ts";
import {
  Cleanup,
  type CleanupConfig,
  type CleanupResult,
  type MessageEnvelope,
  type MessageOrigin,
  type MessageRouting,
} from "./cleanup.ts";
import { formatRfc5322Date } from "./rfc5322_date.ts";

const enc = new TextEncoder();
/** A whole line as the sink arguments buf, start, end. */
const whole = (text: string): [Uint8Array, number, number] => {
  const b = enc.encode(text);
  return [b, 0, b.length];
};
const dec = new TextDecoder();
const ARRIVAL = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
const WHEN = formatRfc5322Date(ARRIVAL);

const CONFIG: CleanupConfig = {
  myhostname: "mx.example.com",
  "mail_name": "deno-smtpd",
  "hopcount_limit": 50,
  "header_size_limit": 102400,
  "always_bcc": "",
  myorigin: "mx.example.com",
  "smtpd_sasl_authenticated_header": false,
  "smtpd_tls_received_header": false,
};

const REMOTE: MessageOrigin = {
  clientName: "client.example",
  clientAddress: "192.0.2.1",
  clientPort: "4321",
  helo: "helo.example",
  protocol: "ESMTP",
  local: false,
};

const LOCAL: MessageOrigin = {
  clientName: "localhost",
  clientAddress: "127.0.0.1",
  clientPort: "0",
  helo: undefined,
  protocol: "SMTP",
  local: true,
};

interface Stored {
  result: CleanupResult;
  /** Content lines (L pieces joined). */
  lines: string[];
  records: QueueRecord[];
  /** Files left in incoming/ and maildrop/. */
  files: string[];
}

interface SendOptions {
  config?: Partial<CleanupConfig>;
  envelope?: Partial<MessageEnvelope>;
  routing?: MessageRouting;
}

async function send(
  body: (string | [string, boolean])[],
  options: SendOptions = {},
): Promise<Stored> {
  const dir = await Deno.makeTempDir({ prefix: "cleanup_test_" });
  try {
    const store = new QueueStore(dir);
    await store.prepare();
    const cleanup = new Cleanup(store, { ...CONFIG, ...options.config });
    const draft = await cleanup.begin({
      queue: "incoming",
      sender: "sender@example.org",
      recipients: ["rcpt@example.net"],
      arrival: ARRIVAL,
      origin: REMOTE,
      body: undefined,
      ...options.envelope,
    });
    for (const item of body) {
      const [text, partial] = typeof item === "string" ? [item, false] : item;
      const bytes = enc.encode(text);
      const r = draft.line(bytes, 0, bytes.length, partial);
      if (r) await r;
    }
    const result = await draft.finish(options.routing);
    const files: string[] = [];
    for (const q of ["incoming", "maildrop"]) {
      for await (const e of Deno.readDir(join(dir, q))) files.push(e.name);
    }
    if (result.kind !== "queued") return { result, lines: [], records: [], files };
    assert.equal(result.id, draft.id);
    const records = decodeRecords(await Deno.readFile(join(dir, "incoming", result.id)));
    const lines: string[] = [];
    let cur = "";
    const m = records.findIndex((r) => r.type === REC.mesg);
    const x = records.findIndex((r) => r.type === REC.xtra);
    for (const r of records.slice(m + 1, x)) {
      cur += dec.decode(r.data);
      if (r.type === REC.norm) {
        lines.push(cur);
        cur = "";
      }
    }
    assert.equal(cur, "");
    return { result, lines, records, files };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function queued(s: Stored): Extract<CleanupResult, { kind: "queued" }> {
  assert.equal(s.result.kind, "queued", JSON.stringify(s.result));
  return s.result as Extract<CleanupResult, { kind: "queued" }>;
}

function recordTexts(s: Stored, type: number): string[] {
  return s.records.filter((r) => r.type === type).map((r) => dec.decode(r.data));
}

/** Header field names, lower-cased, in order, up to the first empty line. */
function headerNames(lines: string[]): string[] {
  const out: string[] = [];
  for (const l of lines) {
    if (l === "") break;
    const m = /^([^\s:]+):/.exec(l);
    if (m) out.push(m[1]!.toLowerCase());
  }
  return out;
}

Deno.test("MessageDraft.finish() puts Received: first with the queue ID and the one recipient", async () => {
  const s = await send(["Subject: hi", "", "body"]);
  const r = queued(s);
  assert.deepEqual(s.lines.slice(0, 4), [
    "Received: from helo.example (client.example [192.0.2.1])",
    `\tby mx.example.com (deno-smtpd) with ESMTP id ${r.id}`,
    "\tfor <rcpt@example.net>; " + WHEN,
    "Subject: hi",
  ]);
  assert.equal(r.recipients, 1);
  // The size Postfix's qmgr logs: the size record's, Received: included
  // (the client sent 21 bytes).
  const sizeRecord = Number(recordTexts(s, REC.size)[0]?.trim().split(/ +/)[0]);
  assert.equal(r.size, sizeRecord);
  assert.ok(r.size > 21 + 100, String(r.size));
  assert.deepEqual(s.files, [r.id]);
});

Deno.test("MessageDraft.finish(): an IPv6 client's address in Received: is an address literal, [IPv6:...], as Postfix writes it", async () => {
  const s = await send(["Subject: hi", "", "body"], {
    envelope: { origin: { ...REMOTE, clientName: "unknown", clientAddress: "2001:db8::1" } },
  });
  assert.equal(s.lines[0], "Received: from helo.example (unknown [IPv6:2001:db8::1])");
});

Deno.test("MessageDraft.finish() leaves out 'for' with several recipients", async () => {
  const s = await send(["Subject: hi", "", "body"], {
    envelope: { recipients: ["a@example.net", "b@example.net"] },
  });
  const r = queued(s);
  assert.equal(s.lines[1], `\tby mx.example.com (deno-smtpd) with ESMTP id ${r.id}; ${WHEN}`);
  assert.ok(!s.lines.some((l) => l.includes("for <")));
  assert.equal(r.recipients, 2);
});

Deno.test("MessageDraft.finish() writes a local Received: without a client", async () => {
  const s = await send(["Subject: hi", "", "body"], { envelope: { origin: LOCAL } });
  const r = queued(s);
  assert.deepEqual(s.lines.slice(0, 3), [
    "Received: by mx.example.com (deno-smtpd, from userid local)",
    `\tid ${r.id}`,
    `\tfor <rcpt@example.net>; ${WHEN}`,
  ]);
});

Deno.test("MessageDraft.finish() quotes the recipient's local part in Received: and the sender's in From:, as Postfix", async () => {
  // Unquoted, the "; " would end the address and start the date there, and
  // ", " would make From: two addresses.
  const s = await send(["Subject: hi", "", "body"], {
    envelope: {
      origin: LOCAL,
      sender: "a>, b@example.org",
      recipients: ['x>; "y\u2028@example.net'],
    },
  });
  const r = queued(s);
  assert.deepEqual(s.lines.slice(0, 3), [
    "Received: by mx.example.com (deno-smtpd, from userid local)",
    `\tid ${r.id}`,
    `\tfor <"x>; \\"y\u2028"@example.net>; ${WHEN}`,
  ]);
  assert.ok(s.lines.includes('From: "a>, b"@example.org'), s.lines.join("\n"));
  const remote = await send(["Subject: hi", "", "body"], {
    envelope: { recipients: ["a b@x.example"] },
  });
  assert.equal(remote.lines[2], `\tfor <"a b"@x.example>; ${WHEN}`);
});

Deno.test("MessageDraft.finish() adds Message-Id and Date when missing", async () => {
  const s = await send(["Subject: hi", "", "body"]);
  const r = queued(s);
  const messageId = `<20260102030405.${r.id}@mx.example.com>`;
  assert.equal(r.messageId, messageId);
  assert.deepEqual(headerNames(s.lines), ["received", "subject", "message-id", "date"]);
  assert.ok(s.lines.includes(`Message-Id: ${messageId}`));
  assert.ok(s.lines.includes(`Date: ${WHEN}`));
  assert.deepEqual(s.lines.slice(-2), ["", "body"]);
});

Deno.test("MessageDraft.finish() keeps Message-ID and Date when present", async () => {
  const s = await send([
    "Message-ID: <abc@client.example>",
    "DATE: Thu, 1 Jan 2026 00:00:00 +0000",
    "",
    "body",
  ]);
  const r = queued(s);
  assert.equal(r.messageId, "<abc@client.example>");
  assert.deepEqual(headerNames(s.lines), ["received", "message-id", "date"]);
  assert.equal(s.lines.filter((l) => /^message-id:/i.test(l)).length, 1);
  assert.equal(s.lines.filter((l) => /^date:/i.test(l)).length, 1);
});

Deno.test("MessageDraft.finish() reports a UTF-8 Message-ID as UTF-8 (RFC 6532), folded or in pieces", async () => {
  // Not windows-1252, which TextDecoder("latin1") is: "<j\u00c3\u00b6rg...>" in the log.
  const pieces = await send([["Message-ID: <j\u00f6rg", true], "\u045d\u20ac@x.example>", "", "b"]);
  assert.equal(queued(pieces).messageId, "<j\u00f6rg\u045d\u20ac@x.example>");
  const folded = await send(["Message-ID:", " <\u00e9l\u00e8ve@\u00e9cole.example>", "", "b"]);
  assert.equal(queued(folded).messageId, "<\u00e9l\u00e8ve@\u00e9cole.example>");
});

Deno.test("MessageDraft.finish() adds From: only for local submissions", async () => {
  const remote = await send(["Subject: hi", "", "body"]);
  assert.ok(!headerNames(remote.lines).includes("from"));

  const local = await send(["Subject: hi", "", "body"], { envelope: { origin: LOCAL } });
  assert.ok(local.lines.includes("From: sender@example.org"));

  const bounce = await send(["Subject: hi"], { envelope: { origin: LOCAL, sender: "" } });
  assert.ok(bounce.lines.includes("From: MAILER-DAEMON@mx.example.com"));

  const has = await send(["from: me@example.org", "", "x"], { envelope: { origin: LOCAL } });
  assert.equal(has.lines.filter((l) => /^from:/i.test(l)).length, 1);
});

Deno.test("MessageDraft.finish() refuses 49 Received: headers with hopcount_limit 50 and removes the file", async () => {
  const hops = Array.from({ length: 49 }, (_, i) => `Received: from hop${i}.example by x`);
  const s = await send([...hops, "", "body"]);
  assert.equal(s.result.kind, "refused");
  assert.ok(s.result.kind === "refused");
  assert.deepEqual(s.result.reply, REPLY.tooManyHops);
  assert.equal(formatReply(s.result.reply), "554 5.4.6 Too many hops\r\n");
  assert.match(s.result.reason, /49 Received: headers/);
  assert.deepEqual(s.files, []);
});

Deno.test("MessageDraft.finish() accepts 48 Received: headers with hopcount_limit 50", async () => {
  const hops = Array.from({ length: 48 }, (_, i) => `Received: from hop${i}.example by x`);
  const s = await send([...hops, "", "body"]);
  queued(s);
  assert.equal(s.lines.filter((l) => l.startsWith("Received:")).length, 49);
});

Deno.test("MessageDraft.finish() counts folded Received: headers once each", async () => {
  const hops = Array.from({ length: 4 }, (_, i) => [`Received: from hop${i}`, "\tby x; date"])
    .flat();
  const refused = await send([...hops, "", "body"], { config: { "hopcount_limit": 5 } });
  assert.equal(refused.result.kind, "refused");
  const ok = await send([...hops, "", "body"], { config: { "hopcount_limit": 6 } });
  queued(ok);
});

// Regression: a header with white space before its colon (RFC 822's
// obsolete "Subject : x", which Postfix's is_header_buf() takes) was not
// seen as a header, so the header block ended before it and the client's
// whole header block went into the body, after an added blank line.
// Postfix's cleanup keeps such a line as a header, written "Subject: x",
// and counts a "Received :" towards hopcount_limit (shown side by side
// with Debian's Postfix 3.7 over SMTP: tests/header_syntax_postfix_test.ts).
Deno.test("MessageDraft keeps 'Name :' lines as headers, written 'Name:', as Postfix's cleanup", async () => {
  const s = await send([
    "Subject : hi",
    "X-A\t \t: b",
    "\tfolded",
    "Message-ID : <m@x.example>",
    "",
    "body",
  ]);
  queued(s);
  assert.deepEqual(s.lines.slice(3), [
    "Subject: hi",
    "X-A: b",
    "\tfolded",
    "Message-ID: <m@x.example>",
    `Date: ${WHEN}`,
    "",
    "body",
  ]);
  assert.equal(queued(s).messageId, "<m@x.example>");
  // Not a header: white space inside the name, or before it.
  const not = await send(["Sub ject: x", "", "body"]);
  assert.equal(not.lines[not.lines.indexOf("") + 1], "Sub ject: x");
  const hops = Array.from({ length: 4 }, (_, i) => `Received : from hop${i}.example by x`);
  const refused = await send([...hops, "", "body"], { config: { "hopcount_limit": 5 } });
  assert.equal(refused.result.kind, "refused");
  assert.deepEqual(refused.files, []);
});

// Regression: with a Resent- field in the header block, Postfix's cleanup
// adds the missing Resent-Message-Id:, Resent-Date: (and, for a local
// submission, Resent-From:), not Message-Id:/Date:/From:; we added the
// latter, a new Date: on a message being resent. Shown side by side with
// Debian's Postfix 3.7 (tests/header_syntax_postfix_test.ts).
Deno.test("MessageDraft adds Resent-Message-Id:/Resent-Date:/Resent-From: to a resent message, as Postfix's cleanup", async () => {
  const s = await send(["Resent-From: r@x.example", "Subject: s", "", "body"]);
  const r = queued(s);
  assert.deepEqual(s.lines.slice(3), [
    "Resent-From: r@x.example",
    "Subject: s",
    `Resent-Message-Id: <20260102030405.${r.id}@mx.example.com>`,
    `Resent-Date: ${WHEN}`,
    "",
    "body",
  ]);
  // Its log line has no message ID to give (Postfix: message-id=<>).
  assert.equal(r.messageId, "<>");
  // A local submission: Resent-From: too; what is there is not added again.
  const local = await send(["RESENT-DATE: d", "Message-ID: <m@x>", "", "b"], {
    envelope: { origin: LOCAL },
  });
  assert.deepEqual(local.lines.slice(3), [
    "RESENT-DATE: d",
    "Message-ID: <m@x>",
    `Resent-Message-Id: <20260102030405.${queued(local).id}@mx.example.com>`,
    "Resent-From: sender@example.org",
    "",
    "b",
  ]);
  assert.equal(queued(local).messageId, "<m@x>");
  // Not a Resent- field of Postfix's list: the usual headers.
  const other = await send(["Resent-Foo: x", "", "b"]);
  assert.deepEqual(headerNames(other.lines), ["received", "resent-foo", "message-id", "date"]);
});

// Regression: Postfix's cleanup drops Bcc:, Resent-Bcc:, Content-Length:
// and Return-Path: (message_drop_headers), and keeps a mailbox "From " line
// on top as X-Mailbox-Line:; we delivered the Bcc: list to every recipient,
// and made such a message's headers body. Side by side with Debian's
// Postfix 3.7 in tests/header_syntax_postfix_test.ts.
Deno.test("MessageDraft drops Bcc:/Resent-Bcc:/Content-Length:/Return-Path: and keeps a mailbox From line as X-Mailbox-Line:, as Postfix's cleanup", async () => {
  const s = await send([
    "From someone Mon Jan  1 00:00:00 2024",
    ">From again",
    "bcc: a@x.example,",
    "\tb@x.example",
    "Subject: s",
    "Content-Length: 5",
    "Return-Path: <z@x.example>",
    "Resent-Bcc: r@x.example",
    "From other",
    "",
    "From body",
  ]);
  const r = queued(s);
  assert.deepEqual(s.lines.slice(3), [
    "X-Mailbox-Line: From someone Mon Jan  1 00:00:00 2024",
    "X-Mailbox-Line: >From again",
    "Subject: s",
    `Resent-Message-Id: <20260102030405.${r.id}@mx.example.com>`,
    `Resent-Date: ${WHEN}`,
    "",
    "From other",
    "",
    "From body",
  ]);
  // A folded line right after the mailbox lines starts the body, as there.
  const folded = await send(["From x", "\tcont", "Subject: s", "", "b"]);
  assert.deepEqual(folded.lines.slice(3, 5), [
    "X-Mailbox-Line: From x",
    `Message-Id: <20260102030405.${queued(folded).id}@mx.example.com>`,
  ]);
  assert.deepEqual(folded.lines.slice(6), ["", "\tcont", "Subject: s", "", "b"]);
  // By BDAT, Postfix's smtpd leaves a "From " line as it is: body.
  const chunked = await send(["From x", "Subject: s", "", "b"], { envelope: { chunked: true } });
  assert.deepEqual(chunked.lines.slice(5), ["", "From x", "Subject: s", "", "b"]);
});

Deno.test("MessageDraft.finish() adds the always_bcc recipient", async () => {
  const s = await send(["Subject: hi", "", "body"], {
    config: { "always_bcc": "archive@example.com" },
  });
  const r = queued(s);
  assert.equal(r.recipients, 2);
  assert.deepEqual(recordTexts(s, REC.rcpt), ["rcpt@example.net", "archive@example.com"]);
  const sizeFields = recordTexts(s, REC.size)[0]?.trim().split(/ +/).map(Number);
  assert.equal(sizeFields?.[2], 2);
  assert.ok(!s.lines.some((l) => l.includes("archive@example.com")), "bcc stays hidden");
});

Deno.test("MessageDraft.finish() writes FILTER and REDIRECT, and each BCC address once with NOTIFY=NEVER, after the content", async () => {
  const s = await send(["Subject: hi", "", "body"], {
    routing: {
      filter: "smtp:[127.0.0.1]:10025",
      redirect: "quarantine@example.net",
      bcc: ["copy@example.net", "audit@example.net", "copy@example.net"],
    },
  });
  const r = queued(s);
  assert.equal(r.recipients, 3);
  const x = s.records.findIndex((rec) => rec.type === REC.xtra);
  const tail = s.records.slice(x).map((rec) =>
    `${String.fromCharCode(rec.type)} ${dec.decode(rec.data)}`.trim()
  );
  assert.deepEqual(tail, [
    "X",
    "L smtp:[127.0.0.1]:10025",
    "> quarantine@example.net",
    "A notify_flags=1",
    "A dsn_orig_rcpt=rfc822;copy@example.net",
    "O copy@example.net",
    "R copy@example.net",
    "A notify_flags=1",
    "A dsn_orig_rcpt=rfc822;audit@example.net",
    "O audit@example.net",
    "R audit@example.net",
    "E",
  ]);
  assert.ok(!s.lines.some((l) => /copy@|audit@|quarantine@/.test(l)), "the actions stay hidden");
});

Deno.test("MessageDraft.finish() does not add always_bcc twice", async () => {
  const s = await send(["Subject: hi"], {
    config: { "always_bcc": "rcpt@example.net" },
  });
  assert.deepEqual(recordTexts(s, REC.rcpt), ["rcpt@example.net"]);
});

Deno.test("MessageDraft writes a recipient given twice once, as Postfix's cleanup does", async () => {
  const s = await send(["Subject: hi", "", "body"], {
    envelope: {
      recipients: ["a@example.net", "b@example.net", "a@example.net", "A@example.net"],
    },
    config: { "always_bcc": "b@example.net" },
  });
  const r = queued(s);
  // Case folded, as Postfix's duplicate filter compares (BH_FLAG_FOLD): the
  // same address in other case is the same recipient (its smtpd's queue file
  // for this dialogue, side by side, keeps the first spelling only).
  assert.deepEqual(recordTexts(s, REC.rcpt), ["a@example.net", "b@example.net"]);
  assert.equal(r.recipients, 2);
  const sizeFields = recordTexts(s, REC.size)[0]?.trim().split(/ +/).map(Number);
  assert.equal(sizeFields?.[2], 2);
});

// Regression (found by these tests, fixed): Postfix's smtpd writes "for <rcpt>" when the client gave one
// recipient; always_bcc is added later by cleanup. Here the bcc recipient
// counts, so the "for" clause disappears. See the report.
Deno.test({
  name: "MessageDraft.finish() keeps 'for <rcpt>' when always_bcc adds a recipient",
  fn: async () => {
    const s = await send(["Subject: hi", "", "body"], {
      config: { "always_bcc": "archive@example.com" },
    });
    queued(s);
    assert.equal(s.lines[2], `\tfor <rcpt@example.net>; ${WHEN}`);
  },
});

Deno.test("MessageDraft.finish() keeps folded headers intact and in order", async () => {
  const headers = [
    "Subject: a long",
    "\tsubject line",
    "  continued",
    "To: x@example.net,",
    " y@example.net",
    "X-Empty:",
  ];
  const s = await send([...headers, "", "body", " indented body"]);
  queued(s);
  assert.deepEqual(s.lines.slice(3, 3 + headers.length), headers);
  assert.deepEqual(s.lines.slice(-3), ["", "body", " indented body"]);
});

Deno.test("MessageDraft.finish() keeps a header split into partial pieces", async () => {
  const long = "X-Long: " + "v".repeat(50);
  const s = await send([[long.slice(0, 20), true], [long.slice(20, 40), true], long.slice(40), ""]);
  queued(s);
  assert.equal(s.lines[3], long);
  assert.deepEqual(headerNames(s.lines), ["received", "x-long", "message-id", "date"]);
});

Deno.test("MessageDraft.finish() handles a header block without a blank line or body", async () => {
  const s = await send(["Subject: only headers", "X-Test: 1"]);
  const r = queued(s);
  assert.deepEqual(s.lines.slice(3), [
    "Subject: only headers",
    "X-Test: 1",
    `Message-Id: <20260102030405.${r.id}@mx.example.com>`,
    `Date: ${WHEN}`,
  ]);
});

Deno.test("MessageDraft.finish() handles an empty message", async () => {
  const s = await send([]);
  queued(s);
  assert.deepEqual(headerNames(s.lines), ["received", "message-id", "date"]);
  assert.equal(s.lines.length, 5);
});

Deno.test("MessageDraft.finish() keeps body text that follows the headers without a blank line", async () => {
  const s = await send(["Subject: hi", "Hello world", "second line"]);
  queued(s);
  assert.ok(s.lines.includes("Subject: hi"));
  assert.deepEqual(s.lines.slice(-2), ["Hello world", "second line"]);
});

// Regression (found by these tests, fixed): when the header block ends at a line that is neither a header nor
// empty, Postfix (mime_state.c) inserts the missing blank line so the body
// does not become part of the header block. Here "Hello world" follows the
// added Date: header directly. See the report.
Deno.test({
  name: "MessageDraft.finish() inserts a blank line before a body that has no header block",
  fn: async () => {
    const s = await send(["Hello world", "", "more"]);
    queued(s);
    const date = s.lines.indexOf(`Date: ${WHEN}`);
    assert.ok(date > 0);
    assert.deepEqual(s.lines.slice(date + 1), ["", "Hello world", "", "more"]);
  },
});

Deno.test("MessageDraft.finish() records the BODY= type in the extracted segment", async () => {
  const s = await send(["Subject: hi"], { envelope: { body: "8BITMIME" } });
  queued(s);
  const x = s.records.findIndex((r) => r.type === REC.xtra);
  const extracted = s.records.slice(x).filter((r) => r.type === REC.attr).map((r) =>
    dec.decode(r.data)
  );
  assert.deepEqual(extracted, ["encoding=8bit"]);
});

Deno.test("MessageDraft writes the BODY= type after the sender record too, as Postfix's smtpd", async () => {
  for (const [body, value] of [["8BITMIME", "8bit"], ["7BIT", "7bit"]] as const) {
    const s = await send(["Subject: hi"], { envelope: { body } });
    queued(s);
    const from = s.records.findIndex((r) => r.type === REC.from);
    const next = s.records[from + 1];
    assert.ok(next);
    assert.equal(next.type, REC.attr);
    assert.equal(dec.decode(next.data), `encoding=${value}`);
  }
  const plain = await send(["Subject: hi"]);
  assert.ok(!recordTexts(plain, REC.attr).some((a) => a.startsWith("encoding=")));
});

Deno.test("MessageDraft.finish() writes the client attributes for remote mail", async () => {
  const s = await send(["Subject: hi"]);
  const attrs = recordTexts(s, REC.attr);
  for (
    const a of [
      "rewrite_context=remote",
      "log_client_name=client.example",
      "log_client_address=192.0.2.1",
      "log_client_port=4321",
      "log_helo_name=helo.example",
      "log_protocol_name=ESMTP",
    ]
  ) {
    assert.ok(attrs.includes(a), a);
  }
  assert.deepEqual(recordTexts(s, REC.from), ["sender@example.org"]);
});

Deno.test("MessageDraft.abort() removes the queue file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cleanup_test_" });
  try {
    const store = new QueueStore(dir);
    await store.prepare();
    const draft = await new Cleanup(store, CONFIG).begin({
      queue: "incoming",
      sender: "a@b",
      recipients: ["c@d"],
      arrival: ARRIVAL,
      origin: REMOTE,
      body: undefined,
    });
    await draft.line(...whole("Subject: x"), false);
    await draft.line(...whole("x".repeat(300 * 1024)), false); // past the in-memory part
    await Deno.stat(join(dir, "incoming", draft.id));
    await draft.abort();
    await assert.rejects(Deno.stat(join(dir, "incoming", draft.id)), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A reservation that records the most it was asked for, with an optional cap. */
class CountingReservation {
  peak = 0;
  reserved = 0;
  constructor(readonly cap = Infinity) {}
  ensure(total: number): boolean {
    if (total <= this.reserved) return true;
    if (total > this.cap) return false;
    this.reserved = total;
    this.peak = Math.max(this.peak, total);
    return true;
  }
  trim(total: number): void {
    this.reserved = Math.min(this.reserved, Math.max(0, total));
  }
}

/** Opens a draft in a fresh queue directory. */
async function openDraft(
  dir: string,
  memory?: CountingReservation,
  config: Partial<CleanupConfig> = {},
) {
  const store = new QueueStore(dir);
  await store.prepare();
  return await new Cleanup(store, { ...CONFIG, ...config }).begin({
    queue: "incoming",
    sender: "a@example.org",
    recipients: ["b@example.net"],
    arrival: ARRIVAL,
    origin: REMOTE,
    body: undefined,
  }, memory);
}

Deno.test("MessageDraft holds 100 KB of 'a:' header lines in about the bytes received", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cleanup_test_" });
  const line = enc.encode("a:");
  const received = 25_600 * 4; // "a:\r\n" up to header_size_limit (102400)
  const drafts = [];
  try {
    const before = Deno.memoryUsage();
    for (let d = 0; d < 8; d++) {
      const memory = new CountingReservation();
      const draft = await openDraft(dir, memory);
      for (let i = 0; i < 25_600; i++) await draft.line(line, 0, line.length, false);
      // The cleanup's own accounting: the header block and what it reserved.
      assert.ok(draft.headerMemory > 25_600 * 2, `holds the lines: ${draft.headerMemory}`);
      assert.ok(draft.headerMemory <= 2 * received, `header block: ${draft.headerMemory}`);
      assert.ok(memory.peak <= 2 * received + 64 * 1024, `reserved: ${memory.peak}`);
      drafts.push(draft);
    }
    // And the process's: an object and a view per line cost about 11.6 MB per message.
    const after = Deno.memoryUsage();
    const perDraft = (after.heapUsed + after.external - before.heapUsed - before.external) / 8;
    assert.ok(perDraft < 1024 * 1024, `${perDraft} bytes per message`);
    const last = drafts.at(-1)!;
    await last.line(...whole(""), false);
    const result = await last.finish();
    assert.equal(result.kind, "queued");
  } finally {
    for (const d of drafts) await d.abort();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("MessageDraft refuses with 452 4.3.1 when its reservation fails, reads on and leaves no file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cleanup_test_" });
  try {
    const memory = new CountingReservation(40 * 1024);
    const draft = await openDraft(dir, memory);
    const line = enc.encode("X-Filler: " + "x".repeat(60));
    for (let i = 0; i < 1000; i++) await draft.line(line, 0, line.length, false);
    await draft.line(...whole(""), false);
    await draft.line(...whole("body"), false);
    const result = await draft.finish();
    assert.equal(result.kind, "refused");
    assert.ok(result.kind === "refused");
    assert.equal(formatReply(result.reply), "452 4.3.1 Insufficient system storage\r\n");
    assert.match(result.reason, /memory budget/);
    assert.equal(memory.reserved, 0, "everything given back");
    assert.ok(memory.peak <= 40 * 1024);
    assert.deepEqual([...Deno.readDirSync(join(dir, "incoming"))], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Regression (issue 14, item 11): header_size_limit crossed inside a long
// line cut into pieces left the block ending in a partial (L) record, and
// the Message-Id: written next was glued onto the client's line.
Deno.test("MessageDraft ends the header block with the line header_size_limit cuts", async () => {
  const long = "X-Long: " + "v".repeat(1500);
  const pieces: [string, boolean][] = [];
  for (let i = 0; i < long.length; i += 200) {
    pieces.push([long.slice(i, i + 200), i + 200 < long.length]);
  }
  const s = await send(["Subject: hi", ...pieces, "", "body"], {
    config: { "header_size_limit": 1024 },
  });
  const r = queued(s);
  const m = s.records.findIndex((x) => x.type === REC.mesg);
  const content = s.records.slice(m + 1);
  const idAt = content.findIndex((x) => dec.decode(x.data).startsWith("Message-Id:"));
  assert.ok(idAt > 0);
  assert.equal(content[idAt - 1]?.type, REC.norm, "the line before Message-Id: is complete");
  assert.ok(s.lines.includes(`Message-Id: <20260102030405.${r.id}@mx.example.com>`));
  // The held part of the long line is a header line of its own; the rest is body.
  const held = s.lines.find((l) => l.startsWith("X-Long: "));
  assert.ok(held && held.length < long.length && held.length >= 800, held);
  const blank = s.lines.indexOf("");
  assert.ok(blank > idAt - 4);
  assert.equal(s.lines[blank + 1], long.slice(held.length));
  assert.deepEqual(s.lines.slice(-2), ["", "body"]);
});

Deno.test("MessageDraft after AUTH: sasl_* attributes, ESMTPSA, and (Authenticated sender:) only with the header setting", async () => {
  const origin: MessageOrigin = {
    ...REMOTE,
    protocol: "ESMTP",
    tls: { protocol: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384", bits: 256 },
    sasl: { method: "PLAIN", username: "al(ice)" },
    saslSender: "al+40x.example",
  };
  const quiet = await send(["Subject: hi", "", "body"], { envelope: { origin } });
  const id = queued(quiet).id;
  assert.ok(!quiet.lines.some((l) => l.includes("Authenticated sender")));
  assert.ok(quiet.lines.includes(`\tby mx.example.com (deno-smtpd) with ESMTPSA id ${id}`));
  const attrs = recordTexts(quiet, REC.attr);
  for (const a of ["sasl_method=PLAIN", "sasl_username=al(ice)", "sasl_sender=al+40x.example"]) {
    assert.ok(attrs.includes(a), `${a} in ${attrs.join(" ")}`);
  }
  assert.ok(attrs.includes("protocol_name=ESMTP"));
  const told = await send(["Subject: hi", "", "body"], {
    envelope: { origin },
    config: { "smtpd_sasl_authenticated_header": true, "smtpd_tls_received_header": true },
  });
  assert.equal(told.lines[2], "\t(No client certificate requested)");
  assert.equal(told.lines[3], "\t(Authenticated sender: al?ice?)");
  const plain = await send(["Subject: hi", "", "body"], {
    envelope: { origin: { ...REMOTE, sasl: { method: "LOGIN", username: "bob" } } },
  });
  assert.ok(plain.lines.some((l) => l.includes(" with ESMTPA id ")));
  assert.ok(!recordTexts(plain, REC.attr).some((a) => a.startsWith("sasl_sender=")));
});

Deno.test("MessageDraft: the TLS comment in Received: only with smtpd_tls_received_header (Postfix's default is off); ESMTPS either way", async () => {
  const origin: MessageOrigin = {
    ...REMOTE,
    tls: { protocol: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384", bits: 256 },
  };
  const quiet = await send(["Subject: hi", "", "body"], { envelope: { origin } });
  assert.ok(!quiet.lines.some((l) => l.includes("using TLSv1.3")), quiet.lines.join("\n"));
  assert.ok(quiet.lines.some((l) => / with ESMTPS id /.test(l)));
  const told = await send(["Subject: hi", "", "body"], {
    envelope: { origin },
    config: { "smtpd_tls_received_header": true },
  });
  assert.equal(
    told.lines[1],
    "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))",
  );
  assert.ok(told.lines.some((l) => / with ESMTPS id /.test(l)));
});

Deno.test("MessageDraft stores a line longer than line_length_limit as L records of that size, as Postfix's cleanup", async () => {
  const long = `X-Long: ${"h".repeat(4992)}`; // 5000 bytes
  const s = await send([long, "", "b".repeat(4096), ["c".repeat(3000), true], "d"], {
    config: { line_length_limit: 2048 },
  });
  queued(s);
  const m = s.records.findIndex((r) => r.type === REC.mesg);
  const x = s.records.findIndex((r) => r.type === REC.xtra);
  const content = s.records.slice(m + 1, x);
  assert.ok(content.every((r) => r.data.length <= 2048), "no content record past 2048 bytes");
  assert.ok(s.lines.includes(long));
  assert.ok(s.lines.includes("b".repeat(4096)));
  assert.ok(s.lines.includes(`${"c".repeat(3000)}d`));
  const pieces = content.filter((r) =>
    dec.decode(r.data).startsWith("X-Long:") || r.data[0] === 104
  )
    .map((r) => [String.fromCharCode(r.type), r.data.length]);
  assert.deepEqual(pieces, [["L", 2048], ["L", 2048], ["N", 904]]);
});

Deno.test("MessageDraft refuses with 451 a maildrop envelope record longer than line_length_limit (Postfix's pickup would drop the file)", async () => {
  const rcpt = `${"r".repeat(2026)}@example.com`; // dsn_orig_rcpt=rfc822;... is 2059 bytes
  const envelope: Partial<MessageEnvelope> = {
    queue: "maildrop",
    origin: LOCAL,
    recipients: [rcpt],
    recipientDsn: [{ orcpt: `rfc822;${rcpt}` }],
  };
  const s = await send(["Subject: x", "", "body"], { envelope });
  assert.equal(s.result.kind, "refused");
  assert.equal(
    formatReply((s.result as Extract<CleanupResult, { kind: "refused" }>).reply),
    formatReply(REPLY.queueWriteError),
  );
  assert.deepEqual(s.files, []);
  // incoming/ is read by qmgr, which takes records of any length, as from Postfix's smtpd.
  queued(await send(["Subject: x", "", "body"], { envelope: { ...envelope, queue: "incoming" } }));
});

Deno.test("MessageDraft: a UTF-8 PREPEND header sets the size record's SMTPUTF8 header bit, as any UTF-8 header", async () => {
  const sendopts = (s: Stored) => Number(recordTexts(s, REC.size)[0]?.trim().split(/\s+/)[5]);
  const ascii = await send(["Subject: x", "", "b"], {
    config: { smtputf8_enable: true },
    envelope: { prepend: ["X-Rcpt: a@example.com"] },
  });
  assert.equal(sendopts(ascii), 0);
  const utf8 = await send(["Subject: x", "", "b"], {
    config: { smtputf8_enable: true },
    envelope: { prepend: ["X-Rcpt: \u00fc@example.com"] },
  });
  assert.equal(sendopts(utf8), 2);
  assert.equal(utf8.lines[0], "X-Rcpt: \u00fc@example.com");
});

Deno.test("MessageDraft.finish() skips a BCC address that is a recipient already", async () => {
  const s = await send(["Subject: hi", "", "body"], {
    routing: { bcc: ["rcpt@example.net", "copy@example.net"] },
  });
  const r = queued(s);
  assert.equal(r.recipients, 2);
  const rcpts = s.records.filter((rec) => rec.type === REC.rcpt).map((rec) => dec.decode(rec.data));
  assert.deepEqual(rcpts, ["rcpt@example.net", "copy@example.net"]);
});

Deno.test("MessageDraft.finish() refuses (451) a maildrop file with a BCC address longer than line_length_limit", async () => {
  const long = `${"x".repeat(3000)}@example.net`;
  const s = await send(["Subject: hi", "", "body"], {
    envelope: { queue: "maildrop" },
    routing: { bcc: [long] },
  });
  assert.equal(s.result.kind, "refused");
  if (s.result.kind === "refused") assert.match(s.result.reason, /BCC record of 3033 bytes/);
  assert.deepEqual(s.files, [], "nothing half-written stays");
  // The address fits, its dsn_orig_rcpt record ("dsn_orig_rcpt=rfc822;" before it) does not.
  const near = await send(["Subject: hi", "", "body"], {
    envelope: { queue: "maildrop" },
    routing: { bcc: [`${"x".repeat(2030)}@example.net`] },
  });
  assert.equal(near.result.kind, "refused");
});

Deno.test("MessageDraft.finish() gives a BCC address cleanup's original recipient: utf-8; only with SMTPUTF8", async () => {
  for (const [smtputf8, want] of [[false, "rfc822"], [true, "utf-8"]] as const) {
    const s = await send(["Subject: hi", "", "body"], {
      envelope: { smtputf8 },
      routing: { bcc: ["c\u00f6py@example.net", "copy@example.net"] },
    });
    queued(s);
    assert.deepEqual(
      recordTexts(s, REC.attr).filter((a) => a.startsWith("dsn_orig_rcpt=") && a.includes("py@")),
      [`dsn_orig_rcpt=${want};c\u00f6py@example.net`, "dsn_orig_rcpt=rfc822;copy@example.net"],
    );
  }
});
