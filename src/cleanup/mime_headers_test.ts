import assert from "node:assert/strict";
import { MimeHeaderScan } from "./mime_headers.ts";

const U = "été";
const H = "Subject: t\nMIME-Version: 1.0\n";

/**
 * Messages and whether Postfix 3.7's cleanup set the SMTPUTF8 header bit
 * for them beyond their (ASCII) primary headers, found side by side with
 * its smtpd (sendopts of the queue file, postcat).
 */
const CASES: [string, string, boolean][] = [
  [
    "a part's header",
    `${H}Content-Type: multipart/mixed; boundary=BB\n\n--BB\nX-A: ${U}\n\n--BB--\n`,
    true,
  ],
  [
    "after the closing boundary",
    `${H}Content-Type: multipart/mixed; boundary=BB\n\n--BB\n\nx\n--BB--\nX-A: ${U}\n\n`,
    false,
  ],
  [
    "the preamble",
    `${H}Content-Type: multipart/mixed; boundary=BB\n\nX-A: ${U}\n--BB\n\nx\n--BB--\n`,
    false,
  ],
  [
    "a part's body",
    `${H}Content-Type: multipart/mixed; boundary=BB\n\n--BB\nContent-Type: text/plain\n\n${U}\n--BB--\n`,
    false,
  ],
  [
    "a boundary with more after it",
    `${H}Content-Type: multipart/mixed; boundary=BB\n\n--BBxyz\nX-A: ${U}\n\n--BB--\n`,
    true,
  ],
  [
    "a quoted boundary after a comment",
    `${H}Content-Type: multipart/mixed (c; x) ; boundary="B B;q"\n\n--B B;q\nX-A: ${U}\n\n--B B;q--\n`,
    true,
  ],
  [
    "a folded Content-Type",
    `${H}Content-Type: multipart/mixed;\n\tboundary="BB"\n\n--BB\nX-A: ${U}\n\n--BB--\n`,
    true,
  ],
  [
    "a folded part header",
    `${H}Content-Type: multipart/mixed; boundary=BB\n\n--BB\nX-A: ascii\n  ${U}\n\n--BB--\n`,
    true,
  ],
  [
    "a digest part (message/rfc822)",
    `${H}Content-Type: multipart/digest; boundary=BB\n\n--BB\n\nSubject: ${U}\n\nx\n--BB--\n`,
    true,
  ],
  [
    "a mixed part's text",
    `${H}Content-Type: multipart/mixed; boundary=BB\n\n--BB\n\nSubject: ${U}\n\nx\n--BB--\n`,
    false,
  ],
  ["a message/global", `${H}Content-Type: message/global\n\nSubject: ${U}\n\nx\n`, true],
  ["a message/partial", `${H}Content-Type: message/partial; id=1\n\nSubject: ${U}\n\nx\n`, false],
  [
    "a message in a nested multipart",
    `${H}Content-Type: multipart/mixed; boundary=AA\n\n--AA\nContent-Type: multipart/alternative; boundary=BB\n\n--BB\n\nx\n--BB--\n--AA\nContent-Type: message/rfc822\n\nFrom: a@b\nSubject: ${U}\n\nbody\n--AA--\n`,
    true,
  ],
  [
    "an outer boundary closing an inner one",
    `${H}Content-Type: multipart/mixed; boundary=AA\n\n--AA\nContent-Type: multipart/alternative; boundary=BB\n\n--BB\n\nx\n--AA\nX-B: ${U}\n\n--AA--\n`,
    true,
  ],
  [
    "a multipart without boundary",
    `${H}Content-Type: multipart/mixed\n\n--BB\nX-A: ${U}\n\n`,
    false,
  ],
  [
    "a part's headers ended by text",
    `${H}Content-Type: multipart/mixed; boundary=BB\n\n--BB\nnot a header\nX-A: ${U}\n--BB--\n`,
    false,
  ],
  [
    "primary headers ended by text",
    `${H}Content-Type: multipart/mixed; boundary=BB\nnot a header\n--BB\nX-A: ${U}\n\n--BB--\n`,
    true,
  ],
  [
    "a message/rfc822 whose headers end in text",
    `${H}Content-Type: message/rfc822\nno header\nSubject: ${U}\n`,
    false,
  ],
  [
    "upper case",
    `${H}CONTENT-TYPE: MULTIPART/MIXED; BOUNDARY=BB\n\n--BB\nX-A: ${U}\n\n--BB--\n`,
    true,
  ],
  [
    "space before the colon",
    `${H}Content-Type : multipart/mixed; boundary=BB\n\n--BB\nX-A : ${U}\n\n--BB--\n`,
    true,
  ],
  [
    "a text/plain after the multipart",
    `${H}Content-Type: multipart/mixed; boundary=BB\nContent-Type: text/plain\n\n--BB\nX-A: ${U}\n\n--BB--\n`,
    true,
  ],
  [
    "a header name that is not ASCII",
    `${H}Content-Type: multipart/mixed; boundary=BB\n\n--BB\nX-${U}: a\n\n--BB--\n`,
    false,
  ],
  [
    "an attached message's body",
    `${H}Content-Type: multipart/mixed; boundary=BB\n\n--BB\nContent-Type: message/rfc822\n\nSubject: x\n\n${U}\n--BB--\n`,
    false,
  ],
];

function scan(message: string): MimeHeaderScan {
  const s = new MimeHeaderScan();
  for (const line of message.split("\n").slice(0, -1)) {
    const bytes = new TextEncoder().encode(line);
    s.line(bytes, 0, bytes.length, false);
  }
  return s;
}

for (const [what, message, found] of CASES) {
  Deno.test(`MimeHeaderScan.found is ${found} for UTF-8 in ${what}, as Postfix's cleanup`, () => {
    assert.equal(scan(message).found, found);
  });
}

Deno.test("MimeHeaderScan.done holds for a message without MIME parts once its headers end", () => {
  const s = scan("Subject: t\n\nbody\n");
  assert.equal(s.done, true);
  assert.equal(s.found, false);
});

Deno.test("MimeHeaderScan.line() joins the pieces of a long header line", () => {
  const s = new MimeHeaderScan();
  const enc = new TextEncoder();
  for (
    const [text, partial] of [
      ["Content-Type: multipart/mixed; boundary=BB", false],
      ["", false],
      ["--BB", false],
      ["X-Long: aaaa", true],
      [U, false],
      ["", false],
    ] as const
  ) {
    const b = enc.encode(text);
    s.line(b, 0, b.length, partial);
  }
  assert.equal(s.found, true);
});

Deno.test("MimeHeaderScan: a hostile body's '--' lines cost a few passes over their bytes, not one per open boundary", () => {
  // 100 nested multiparts (mime_nesting_limit), each boundary 2,048 bytes
  // (mime_boundary_length_limit) that differ from the others and from the
  // body's lines only at their end: compared byte by byte, each line of the
  // body would be read once per boundary.
  const enc = new TextEncoder();
  const scan = new MimeHeaderScan();
  const feed = (text: string) => {
    const b = enc.encode(text);
    scan.line(b, 0, b.length, false);
  };
  const common = "b".repeat(2040);
  feed("Subject: t");
  for (let i = 0; i < 100; i++) {
    const boundary = common + String(i).padStart(8, "0");
    feed(`Content-Type: multipart/mixed; boundary="${boundary}"`);
    feed("");
    feed(`--${boundary}`);
  }
  feed("Content-Type: text/plain");
  feed("");
  const before = scan.work;
  const line = enc.encode(`--${common}zzzzzzzz`);
  const lines = 2000;
  for (let i = 0; i < lines; i++) scan.line(line, 0, line.length, false);
  assert.equal(scan.done, false);
  const perByte = (scan.work - before) / (lines * line.length);
  assert.ok(perByte < 4, `${perByte.toFixed(1)} bytes looked at per byte of body`);
  // Still a boundary when one comes: the innermost part closes.
  feed(`--${common}00000099--`);
  feed(`X-A: ${U}`);
  assert.equal(scan.found, false, "after a closing boundary, body text");
  feed(`--${common}00000098`);
  feed(`X-A: ${U}`);
  feed("");
  assert.equal(scan.found, true);
});

Deno.test("MimeHeaderScan: a Content-Type with a quoted string folded at every byte costs a few passes over its bytes", () => {
  // An unclosed quoted string folded 40,000 times, up to header_size_limit:
  // each fold drops the white space before it, which read the whole string
  // again at every fold (about 4 s of the listener thread for one header).
  const enc = new TextEncoder();
  const scan = new MimeHeaderScan();
  let bytes = 0;
  const feed = (text: string) => {
    const b = enc.encode(text);
    scan.line(b, 0, b.length, false);
    bytes += b.length + 2;
  };
  feed('Content-Type: multipart/mixed; boundary="a');
  for (let i = 0; i < 40_000; i++) feed(" a");
  feed("");
  assert.ok(scan.work / bytes < 4, `${(scan.work / bytes).toFixed(1)} bytes looked at per byte`);
  // The boundary: the quoted string unfolded, cut at mime_boundary_length_limit.
  const boundary = ("a" + " a".repeat(1024)).slice(0, 2048);
  feed(`--${boundary}`);
  feed(`X-A: ${U}`);
  feed("");
  assert.equal(scan.found, true);
});

Deno.test("MimeHeaderScan: a boundary with bytes above 127 matches the same bytes in the body", () => {
  // mime_state.c keeps the boundary as the header's bytes and compares
  // them with the body line's.
  const s = scan(
    `${H}Content-Type: multipart/mixed; boundary="${U}"\n\n--${U}\nX-A: ${U}\n\n--${U}--\n`,
  );
  assert.equal(s.found, true);
});

Deno.test("MimeHeaderScan: a long Content-Type's buffer is not held for the rest of the message", () => {
  // A part's header is body to the cleanup (not in its header block, not
  // against smtpd_memory_budget): a client that sends a 100 KB
  // Content-Type and then trickles the part's body held 100 KB for it.
  const s = new MimeHeaderScan();
  const enc = new TextEncoder();
  for (
    const text of [
      "Content-Type: multipart/mixed; boundary=BB",
      "",
      "--BB",
      `Content-Type: text/plain; x="${"a".repeat(100_000)}"`,
    ]
  ) {
    const b = enc.encode(text);
    s.line(b, 0, b.length, false);
  }
  assert.ok(s.heldBytes > 100_000, "the value is held while its header is read");
  s.line(new Uint8Array(0), 0, 0, false);
  assert.ok(s.heldBytes <= 4096, `${s.heldBytes} bytes held after the header`);
  assert.equal(s.done, false);
});

/**
 * Messages and whether Postfix 3.7's cleanup wrote encoding=8bit into the
 * extracted segment for them after BODY=7BIT (detect_8bit_encoding_header;
 * found side by side with its smtpd, postcat).
 */
const ENCODING_CASES: [string, string, boolean][] = [
  ["the message's own header", `${H}Content-Transfer-Encoding: 8bit\n\nx\n`, true],
  ["binary, in any case", `${H}Content-Transfer-Encoding: Binary\n\nx\n`, true],
  ["white space after the value", `${H}Content-Transfer-Encoding: 8bit \n\nx\n`, false],
  ["a comment after the value", `${H}Content-Transfer-Encoding: 8bit (c)\n\nx\n`, false],
  ["quoted-printable", `${H}Content-Transfer-Encoding: quoted-printable\n\nx\n`, false],
  // Postfix finds the header by its name with the blanks before the colon
  // trimmed (header_opts_find), then compares the text after the name's
  // length plus one: ":8bit", never a match.
  ["white space before the colon", `${H}Content-Transfer-Encoding : 8bit\n\nx\n`, false],
  ["a tab before the colon", `${H}Content-Transfer-Encoding\t:8bit\n\nx\n`, false],
  [
    "a part's header, folded",
    `${H}Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Transfer-Encoding:\n 8BIT\n\nx\n--B--\n`,
    true,
  ],
  [
    "an attached message's header",
    `${H}Content-Type: message/rfc822\n\nSubject: in\nContent-Transfer-Encoding: 8bit\n\nx\n`,
    true,
  ],
  [
    "after the closing boundary",
    `${H}Content-Type: multipart/mixed; boundary=B\n\n--B\n\nx\n--B--\nContent-Transfer-Encoding: 8bit\n\nx\n`,
    false,
  ],
  [
    "a part after one with a non-ASCII header",
    `${H}Content-Type: multipart/mixed; boundary=B\n\n--B\nX-A: ${U}\n\nx\n--B\nContent-Transfer-Encoding: 8bit\n\nx\n--B--\n`,
    true,
  ],
];

for (const [what, message, want] of ENCODING_CASES) {
  Deno.test(`MimeHeaderScan.eightBitEncoding: ${what}: ${want}`, () => {
    assert.equal(scan(message).eightBitEncoding, want);
  });
}
