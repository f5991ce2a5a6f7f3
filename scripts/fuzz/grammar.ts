/**
 * Input generators built from small grammars: SMTP command lines (verbs,
 * paths, ESMTP parameters), envelope addresses, DATA streams, TOML
 * configuration lines, and access/cidr table text. Each output is often
 * passed through the byte mutator afterwards.
 *
 * @module
 */

import { concat, longRun, mutate, utf8 } from "./bytes.ts";
import type { Rng } from "./prng.ts";

const VERBS = [
  "HELO",
  "EHLO",
  "MAIL",
  "RCPT",
  "DATA",
  "BDAT",
  "RSET",
  "NOOP",
  "QUIT",
  "VRFY",
  "EXPN",
  "ETRN",
  "HELP",
  "STARTTLS",
  "AUTH",
  "XCLIENT",
  "XFORWARD",
];

const LOCALS = [
  "user",
  "a",
  "first.last",
  "x+tag",
  "o'hara",
  "#!$%&'*+-/=?^_`{|}~",
  "postmaster",
  "Postmaster",
  "u@v",
  "j\u00fcrgen",
  "a..b",
  ".a",
  "a.",
];
const DOMAINS = [
  "example.org",
  "EXAMPLE.ORG",
  "localhost",
  "a",
  "mx-1.example.co.uk",
  "example.org.",
  "-bad.example",
  "under_score.example",
  "[192.0.2.1]",
  "[IPv6:2001:db8::1]",
  "[IPv6:::ffff:192.0.2.1]",
  "[300.1.1.1]",
  "[IPv6:zz::1]",
  "[]",
  "b\u00fccher.example",
  "xn--bcher-kva.example",
];

function hostLabel(rng: Rng): string {
  const alpha = "abcdefghijklmnopqrstuvwxyz0123456789-_";
  let s = "";
  const n = rng.range(1, rng.chance(0.05) ? 70 : 10);
  for (let i = 0; i < n; i++) s += alpha[rng.int(alpha.length)];
  return s;
}

/**
 * A domain: a known one, random labels, or an address literal.
 * @param rng the generator
 * @returns the domain text
 */
export function domain(rng: Rng): string {
  switch (rng.int(4)) {
    case 0:
      return rng.pick(DOMAINS);
    case 1: {
      const labels = [];
      const n = rng.range(1, rng.chance(0.05) ? 80 : 4);
      for (let i = 0; i < n; i++) labels.push(hostLabel(rng));
      return labels.join(".");
    }
    case 2:
      return `[${rng.range(0, 300)}.${rng.range(0, 255)}.${rng.range(0, 255)}.${
        rng.range(0, 999)
      }]`;
    default: {
      const groups = [];
      const n = rng.range(1, 9);
      for (let i = 0; i < n; i++) groups.push(rng.int(0x10000).toString(16));
      const text = rng.chance(0.3) ? groups.join("::") : groups.join(":");
      return `[${rng.pick(["IPv6:", "ipv6:", ""])}${text}]`;
    }
  }
}

function quotedLocal(rng: Rng): string {
  let s = '"';
  const n = rng.range(0, 12);
  for (let i = 0; i < n; i++) {
    const r = rng.int(10);
    if (r < 5) s += String.fromCharCode(rng.range(32, 126)).replace(/["\\]/, "x");
    else if (r < 7) s += "\\" + String.fromCharCode(rng.range(32, 126));
    else if (r < 8) s += rng.pick([" ", "@", "<", ">", ",", ":", "\\\\", '\\"']);
    else if (r < 9) s += "\\" + String.fromCharCode(rng.pick([0, 9, 10, 13, 127, 0xe9]));
    else s += String.fromCharCode(rng.int(256));
  }
  return s + (rng.chance(0.95) ? '"' : "");
}

/**
 * The inside of a path: `[@route,...:]local[@domain]`, or "".
 * @param rng the generator
 * @returns the mailbox text
 */
export function mailbox(rng: Rng): string {
  if (rng.chance(0.08)) return "";
  let route = "";
  if (rng.chance(0.1)) {
    const hops = [];
    const n = rng.range(1, 3);
    for (let i = 0; i < n; i++) hops.push(`${rng.pick(["@", "@", " @", ""])}${domain(rng)}`);
    route = hops.join(",") + rng.pick([":", ":", ""]);
  }
  const local = rng.chance(0.2)
    ? quotedLocal(rng)
    : rng.chance(0.7)
    ? rng.pick(LOCALS)
    : hostLabel(rng);
  const dom = rng.chance(0.85) ? `@${domain(rng)}` : rng.chance(0.5) ? "" : "@";
  return route + local + dom;
}

function esmtpParams(rng: Rng): string {
  const out = [];
  const n = rng.chance(0.6) ? 0 : rng.range(1, 4);
  for (let i = 0; i < n; i++) {
    out.push(rng.pick([
      `SIZE=${rng.pick([0, 1, 1000, 10240000, 999999999999999, 1e16])}`,
      `SIZE=${rng.pick(["", "-1", "1e3", "0x10", " 5"])}`,
      "BODY=8BITMIME",
      "BODY=7bit",
      "BODY=BINARYMIME",
      "SMTPUTF8",
      "RET=HDRS",
      "ENVID=abc",
      "NOTIFY=SUCCESS,FAILURE",
      "ORCPT=rfc822;a@b",
      "AUTH=<>",
      "=",
      "SIZE",
      `X${hostLabel(rng)}=${hostLabel(rng)}`,
    ]));
  }
  return out.map((p) => rng.pick([" ", " ", "\t", "  "]) + p).join("");
}

/**
 * A path as it follows `FROM:` or `TO:`: `<mailbox>`, a bare mailbox, or
 * `Name <mailbox>`, then parameters.
 * @param rng the generator
 * @returns the argument text
 */
export function pathArgument(rng: Rng): string {
  const mb = mailbox(rng);
  const lead = rng.pick(["", "", " ", "  ", "\t"]);
  let path: string;
  switch (rng.int(6)) {
    case 0:
      path = mb;
      break;
    case 1:
      path = `${rng.pick(["Name", '"Last, First"', "a b", "<"])} <${mb}>`;
      break;
    case 2:
      path = `<${mb}`;
      break;
    case 3:
      path = `<${rfc822Noise(rng, mb)}>`;
      break;
    default:
      path = `<${mb}>`;
  }
  return lead + path + esmtpParams(rng);
}

/** What RFC 822 allows between the tokens of an address, and some it does not. */
const RFC822_NOISE = [
  "",
  "",
  " ",
  "\t",
  "(c)",
  "(a (b) c)",
  "(\\))",
  "(\\(",
  "(",
  ")",
  '"',
  "(\u00e9)",
  "((((",
  "( ))",
];

/**
 * A mailbox with comments and blanks between its tokens (at "@" and "."),
 * for the RFC 822 forms the address parser compacts.
 * @param rng the generator
 * @param mb the mailbox
 * @returns the decorated text
 */
function rfc822Noise(rng: Rng, mb: string): string {
  const noise = () => rng.chance(0.5) ? rng.pick(RFC822_NOISE) : "";
  return noise() + mb.replace(/[@.]/g, (c) => noise() + c + noise()) + noise();
}

/**
 * An SMTP command line (without CRLF) from the grammar, sometimes mutated,
 * at most {@linkcode MAX_COMMAND} bytes.
 * @param rng the generator
 * @returns the line bytes
 */
export function commandLine(rng: Rng): Uint8Array {
  let verb = rng.chance(0.9) ? rng.pick(VERBS) : hostLabel(rng);
  if (rng.chance(0.2)) verb = verb.toLowerCase();
  const sep = rng.pick([" ", " ", " ", "", "\t", "  "]);
  let arg = "";
  switch (verb.toUpperCase()) {
    case "MAIL":
      arg = `${rng.pick(["FROM:", "from:", "FROM: ", "FROM :", "FROM"])}${pathArgument(rng)}`;
      break;
    case "RCPT":
      arg = `${rng.pick(["TO:", "to:", "TO: ", "TO :", "TO"])}${pathArgument(rng)}`;
      break;
    case "HELO":
    case "EHLO":
    case "ETRN":
      arg = domain(rng);
      break;
    case "VRFY":
      arg = mailbox(rng);
      break;
    default:
      arg = rng.chance(0.7) ? "" : hostLabel(rng);
  }
  const trail = rng.pick(["", "", "", " ", "\t", " \t "]);
  const line = utf8(`${rng.pick(["", "", " "])}${verb}${sep}${arg}${trail}`);
  const out = rng.chance(0.5) ? mutate(rng, line) : line;
  // The session hands parseCommand at most line_length_limit bytes (2048 by
  // default, raised by some sites); giant lines stay rare (see longRun).
  return out.length > MAX_COMMAND ? out.subarray(0, MAX_COMMAND) : out;
}

/** The longest command line generated. */
export const MAX_COMMAND = 262_144;

/**
 * Text for the address parser (what follows `FROM:`), sometimes mutated.
 * @param rng the generator
 * @returns the argument bytes
 */
export function addressInput(rng: Rng): Uint8Array {
  const text = utf8(pathArgument(rng));
  return rng.chance(0.5) ? mutate(rng, text, 4) : text;
}

const BODY_LINES = [
  "",
  ".",
  "..",
  "...",
  ". ",
  ".x",
  "..x",
  "Subject: test",
  "From: a@example.org",
  "Received: from x by y",
  " folded",
  "QUIT",
  "RCPT TO:<evil@example.org>",
  "MAIL FROM:<>",
  "DATA",
  "body text \u00e9",
];

/**
 * A random body line's content (no terminator): grammar lines, random
 * bytes, long runs near the line-length limits.
 * @param rng the generator
 * @param raw whether CR/LF may appear inside
 * @returns the content
 */
export function bodyLine(rng: Rng, raw: boolean): Uint8Array {
  const r = rng.int(10);
  let b: Uint8Array;
  if (r < 5) b = utf8(rng.pick(BODY_LINES));
  else if (r < 8) b = rng.bytes(rng.size(120));
  else if (r < 9) b = longRun(rng, 0.01);
  else b = concat([utf8(rng.pick([".", "..", ""])), longRun(rng, 0.01)]);
  if (!raw) b = b.map((c) => (c === 0x0d || c === 0x0a ? 0x20 : c));
  return b;
}

/**
 * A raw DATA stream: lines with mixed terminators (mostly CRLF, some bare
 * LF / bare CR / none), dot lines, sometimes an end-of-data line and more
 * commands after it, then mutations.
 * @param rng the generator
 * @returns the stream bytes
 */
export function dataStream(rng: Rng): Uint8Array {
  const parts: Uint8Array[] = [];
  const n = rng.size(40);
  for (let i = 0; i < n; i++) {
    parts.push(bodyLine(rng, rng.chance(0.2)));
    const t = rng.int(20);
    parts.push(utf8(t < 14 ? "\r\n" : t < 17 ? "\n" : t < 19 ? "\r" : ""));
    if (rng.chance(0.03)) {
      parts.push(utf8(rng.pick([".\r\n", ".\n", ".\r", "\r\n.\r\n", "\n.\r\n"])));
    }
  }
  if (rng.chance(0.7)) {
    parts.push(utf8(rng.pick([".\r\n", ".\r\n", "\r\n.\r\n", ".\n", "\n.\n", "\r\n.\n"])));
    const m = rng.size(6);
    for (let i = 0; i < m; i++) {
      parts.push(
        rng.chance(0.5)
          ? bodyLine(rng, true)
          : utf8(rng.pick(["QUIT", "RSET", ".", "MAIL FROM:<a@b>", "DATA"])),
      );
      parts.push(utf8(rng.pick(["\r\n", "\r\n", "\n", ".\r\n", ""])));
    }
  }
  const stream = concat(parts);
  return rng.chance(0.4) ? mutate(rng, stream) : stream;
}

/**
 * Content lines for the round-trip target: LF-separated lines without CR
 * (the target dot-stuffs them and adds CRLF itself).
 * @param rng the generator
 * @returns the lines joined by LF
 */
export function roundTripLines(rng: Rng): Uint8Array {
  const parts: Uint8Array[] = [];
  const n = rng.size(30);
  for (let i = 0; i < n; i++) {
    if (i > 0) parts.push(Uint8Array.of(0x0a));
    parts.push(bodyLine(rng, false));
  }
  return concat(parts);
}

const TOML_STRINGS = [
  "",
  "$myhostname",
  "${myhostname}",
  "$mydomain.example",
  "$nosuchparam",
  "${nosuch}",
  "$",
  "${",
  "$1",
  "localhost",
  "inline:{ a=b, { c = d, e } }",
  "cidr:/nonexistent",
  "texthash:/dev/null",
  "reject_unauth_destination",
  "permit_mynetworks, reject",
  "5m",
  "300s",
  "1w",
  "-1",
  "yes",
  "no",
  "reject",
  "normalize",
  "127.0.0.0/8 [::1]/128",
  "a\u0000b",
];

/**
 * A TOML value: strings (basic, literal, multi-line, with $name
 * references), integers in every base, floats, booleans, dates, arrays,
 * inline tables.
 * @param rng the generator
 * @param depth nesting so far
 * @returns the TOML value text
 */
export function tomlValue(rng: Rng, depth = 0): string {
  const s = rng.pick(TOML_STRINGS);
  switch (rng.int(depth > 2 ? 9 : 11)) {
    case 0:
      return JSON.stringify(s);
    case 1:
      return `'${s.replace(/'/g, "")}'`;
    case 2:
      return rng.pick([
        `"""\n${s}\n"""`,
        `'''${s}'''`,
        `"\\u00e9\\t\\n\\r\\\\"`,
        `"\\x"`,
        `"\\uD800"`,
      ]);
    case 3:
      return String(
        rng.pick([
          0,
          1,
          -1,
          79,
          80,
          2048,
          10240000,
          2 ** 31,
          2 ** 53,
          2 ** 53 + 2,
          rng.int(100000),
        ]),
      );
    case 4:
      return rng.pick([
        "0x1F",
        "0o17",
        "0b101",
        "1_000",
        "+5",
        "-0",
        "00",
        "1__0",
        "0xFFFFFFFFFFFFFFFF",
      ]);
    case 5:
      return rng.pick(["1.5", "1e3", "-0.0", "inf", "-inf", "nan", "1e400", "6.02e23"]);
    case 6:
      return rng.pick(["true", "false", "TRUE", "yes"]);
    case 7:
      return rng.pick([
        "1979-05-27",
        "1979-05-27T07:32:00Z",
        "07:32:00",
        "1979-05-27 07:32:00.999999-07:00",
      ]);
    case 8:
      return JSON.stringify(
        `${rng.pick(["$", "${", ""])}${hostLabel(rng)}${rng.pick(["", "}", " "])}`,
      );
    case 9: {
      const items = [];
      const n = rng.size(6);
      for (let i = 0; i < n; i++) items.push(tomlValue(rng, depth + 1));
      return `[${items.join(rng.pick([", ", ",", ",\n"]))}${rng.pick(["", ","])}]`;
    }
    default: {
      const items = [];
      const n = rng.size(4);
      for (let i = 0; i < n; i++) items.push(`${hostLabel(rng)} = ${tomlValue(rng, depth + 1)}`);
      return `{ ${items.join(", ")} }`;
    }
  }
}

/**
 * One TOML line: `key = value` with a known or made-up key, a table
 * header, a comment, or noise.
 * @param rng the generator
 * @param names the known parameter names
 * @returns the line (without newline)
 */
export function tomlLine(rng: Rng, names: readonly string[]): string {
  const key = rng.chance(0.8) ? rng.pick(names) : rng.pick([
    hostLabel(rng),
    `"${hostLabel(rng)}"`,
    "a.b",
    '"a.b"',
    "__proto__",
    "constructor",
    "toString",
    "restriction_classes",
  ]);
  switch (rng.int(12)) {
    case 0:
      return `[${key}]`;
    case 1:
      return `[[${key}]]`;
    case 2:
      return `# ${key} = ${tomlValue(rng)}`;
    case 3:
      return `${key}${rng.pick(["", " =", "=="])}`;
    default:
      return `${rng.pick(["", " ", "\t"])}${key}${rng.pick([" = ", "=", " =  "])}${tomlValue(rng)}`;
  }
}

/**
 * A configuration text: the sample file with lines uncommented, changed,
 * dropped or added, sometimes byte-mutated.
 * @param rng the generator
 * @param base the sample configuration
 * @param names the known parameter names
 * @returns the TOML text bytes
 */
export function configText(rng: Rng, base: string, names: readonly string[]): Uint8Array {
  let lines = rng.chance(0.8) ? base.split("\n") : [];
  const edits = rng.size(12) + 1;
  for (let i = 0; i < edits; i++) {
    const at = rng.int(lines.length + 1);
    switch (rng.int(6)) {
      case 0: { // uncomment a setting
        const commented = lines.flatMap((l, j) => (/^#[a-z_]+ =/.test(l) ? [j] : []));
        if (commented.length) {
          const j = rng.pick(commented);
          lines[j] = (lines[j] as string).slice(1);
        }
        break;
      }
      case 1: { // change a value
        const set = lines.flatMap((l, j) => (/^#?[a-z_]+ =/.test(l) ? [j] : []));
        if (set.length) {
          const j = rng.pick(set);
          const key = (lines[j] as string).replace(/^#/, "").split(" =")[0] as string;
          lines[j] = `${key} = ${tomlValue(rng)}`;
        }
        break;
      }
      case 2:
        lines.splice(at, 1);
        break;
      case 3:
        lines.splice(at, 0, lines[rng.int(Math.max(1, lines.length))] ?? "");
        break;
      default:
        lines.splice(at, 0, tomlLine(rng, names));
    }
  }
  if (rng.chance(0.05)) lines = lines.map((l) => l + "\r");
  const text = utf8(lines.join("\n"));
  return rng.chance(0.3) ? mutate(rng, text, 3) : text;
}

const TABLE_VALUES = [
  "OK",
  "REJECT",
  "REJECT go away",
  "554 5.7.1 no",
  "450 4.7.1 later",
  "DUNNO",
  "DEFER_IF_PERMIT x",
  "restriction_class_name",
  "PERMIT",
  "5.7.1 text",
  "{ a, b }",
];

/**
 * A network for cidr tables, well-formed or not.
 * @param rng the generator
 * @returns the network text
 */
export function network(rng: Rng): string {
  const v4 = `${rng.range(0, 300)}.${rng.range(0, 255)}.${rng.range(0, 255)}.${rng.range(0, 255)}`;
  const v6 = rng.pick([
    "::",
    "::1",
    "2001:db8::",
    "fe80::1%eth0",
    "::ffff:192.0.2.1",
    "1:2:3:4:5:6:7:8",
    "1::2::3",
    "1:2:3:4:5:6:7:8:9",
    ":::",
    "::ffff:1.2.3",
  ]);
  const addr = rng.pick([v4, v6, `[${v6}]`, `[${v4}]`, hostLabel(rng), ""]);
  const len = rng.pick([
    "",
    `/${rng.range(0, 33)}`,
    `/${rng.range(0, 130)}`,
    "/",
    "/-1",
    "/1e1",
    "/08",
    "/ 8",
    "/0x10",
  ]);
  return addr + len;
}

/**
 * Table text: "key value" lines (addresses, domains, networks), comments,
 * continuation lines, blank lines, CRLF endings; or an inline-table body.
 * @param rng the generator
 * @returns the text bytes
 */
export function tableText(rng: Rng): Uint8Array {
  const lines: string[] = [];
  const n = rng.size(20);
  const inline = rng.chance(0.25);
  for (let i = 0; i < n; i++) {
    const key = rng.pick([
      mailbox(rng),
      domain(rng),
      network(rng),
      network(rng),
      hostLabel(rng),
      "",
      "#",
    ]);
    const value = rng.pick(TABLE_VALUES);
    if (inline) {
      lines.push(
        rng.pick([
          `${key}=${value}`,
          `{ ${key} = ${value}, more }`,
          `${key}`,
          `=${value}`,
          "{",
          "}",
          "",
        ]),
      );
    } else {
      switch (rng.int(8)) {
        case 0:
          lines.push(`# ${key} ${value}`);
          break;
        case 1:
          lines.push(`${rng.pick([" ", "\t"])}${value}`);
          break;
        case 2:
          lines.push(rng.pick(["", " ", "\t", "\r"]));
          break;
        case 3:
          lines.push(key);
          break;
        default:
          lines.push(
            `${rng.pick(["", " "])}${key}${rng.pick([" ", "\t", "  "])}${value}${
              rng.pick(["", " ", "\r"])
            }`,
          );
      }
    }
  }
  const text = utf8(lines.join(inline ? rng.pick([",", ", ", " "]) : "\n"));
  return rng.chance(0.4) ? mutate(rng, text, 4) : text;
}
