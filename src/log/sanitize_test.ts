import assert from "node:assert/strict";
import { rawByteChar } from "../io/wire_text.ts";
import { asciiLogText, sanitizeLogText } from "./sanitize.ts";
import { Logger } from "./logger.ts";

const CASES: [name: string, input: string, expected: string][] = [
  [
    "plain ASCII is kept",
    "connect from mail.example[192.0.2.1]",
    "connect from mail.example[192.0.2.1]",
  ],
  ["CR and LF", "a\r\nfake: line", "a??fake: line"],
  ["ESC (terminal escapes)", "id=<\x1b[31mred@x>", "id=<?[31mred@x>"],
  ["NUL, TAB and DEL", "a\x00b\tc\x7fd", "a?b?c?d"],
  ["C1 controls, NEL U+0085 among them", "a\u0085b\u0080c\u009fd", "a?b?c?d"],
  ["bidi overrides and isolates", "a\u202eb\u202ac\u2066d\u2069e", "a?b?c?d?e"],
  ["LRM, RLM, ALM", "a\u200eb\u200fc\u061cd", "a?b?c?d"],
  ["line and paragraph separators", "a\u2028b\u2029c", "a?b?c"],
  ["a lone high surrogate", "a\ud800b", "a?b"],
  ["a lone low surrogate", "a\udc00b", "a?b"],
  ["a surrogate pair is kept", "a\u{1f600}b", "a\u{1f600}b"],
  ["non-ASCII letters are kept", "Grüße ñ 日本", "Grüße ñ 日本"],
  ["NBSP is kept", "a\u00a0b", "a\u00a0b"],
  [
    "zero-width space, non-joiner, joiner, word joiner",
    "a\u200bd\u200cm\u200di\u2060n",
    "a?d?m?i?n",
  ],
  ["byte order mark and soft hyphen", "\ufeffad\u00admin", "?ad?min"],
  ["tag characters and variation selectors", "a\u{e0041}\u{e007f}b\ufe0fc", "a??b?c"],
  ["Hangul filler (shown as nothing)", "a\u3164b", "a?b"],
  ["noncharacters", "a\ufffeb\uffffc\u{10fffe}d\ufdd0e", "a?b?c?d?e"],
  ["a lone surrogate before a pair", "\ud800\ud83d\ude00", "?\u{1f600}"],
];

for (const [name, input, expected] of CASES) {
  Deno.test(`sanitizeLogText(): ${name}`, () => {
    assert.equal(sanitizeLogText(input), expected);
  });
}

Deno.test("sanitizeLogText() gives the same answer twice (no regex state left behind)", () => {
  assert.equal(sanitizeLogText("a\nb"), "a?b");
  assert.equal(sanitizeLogText("a\nb"), "a?b");
  assert.equal(sanitizeLogText("ok"), "ok");
});

Deno.test("Logger: every line reaches its sinks sanitized, one line each", () => {
  const lines: string[] = [];
  const logger = new Logger({
    tag: "postfix/smtpd",
    host: "mx.example",
    verbosity: 1,
    sinks: [(line) => lines.push(line)],
  });
  logger.info("helo=<a\u202eb\u0085c>");
  logger.warning("txt\r\nfake: line");
  logger.error("esc\x1b[2J");
  logger.debug("nul\x00");
  assert.equal(lines.length, 4);
  for (const line of lines) {
    assert.ok(line.endsWith("\n"));
    assert.doesNotMatch(
      line.slice(0, -1),
      // deno-lint-ignore no-control-regex
      /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]/,
    );
  }
  assert.match(lines[0] as string, /: helo=<a\?b\?c>\n$/);
  assert.match(lines[1] as string, /: warning: txt\?\?fake: line\n$/);
});

Deno.test("asciiLogText() (smtputf8_enable off): a '?' for each byte outside printable ASCII, as Postfix's printable()", () => {
  assert.equal(asciiLogText("ok [1.2.3.4] <a@b>"), "ok [1.2.3.4] <a@b>");
  assert.equal(asciiLogText("j\u00f6@x.example"), "j??@x.example");
  assert.equal(asciiLogText("\u65e5 \u{1f600}"), "??? ????");
  assert.equal(asciiLogText("a\tb\r\n\x7f\u0085"), "a?b?????");
  // A raw-byte character stands for one byte that was not UTF-8; a U+FFFD
  // the client sent is three bytes, as in Postfix's log.
  assert.equal(asciiLogText(`j${rawByteChar(0xff)}${rawByteChar(0x80)}x`), "j??x");
  assert.equal(asciiLogText("j\ufffdx"), "j???x");
  assert.equal(asciiLogText("j\u00f6"), "j??");
});

Deno.test("Logger with utf8 false: the line holds printable ASCII only", () => {
  const lines: string[] = [];
  const log = new Logger({ tag: "t", host: "h", sinks: [(l) => lines.push(l)], utf8: false });
  log.warning(`in VRFY command: <j\u00f6@x${rawByteChar(0xff)}.example>`);
  assert.match(lines[0] as string, /: warning: in VRFY command: <j\?\?@x\?\.example>\n$/);
});
