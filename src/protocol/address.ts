/**
 * Parses the reverse-path of MAIL FROM and the forward-path of RCPT TO
 * (RFC 5321 §4.1.2), plus the looser forms the manual's
 * `strict_rfc821_envelopes = no` allows: `MAIL FROM: a@b`,
 * `MAIL FROM: Name <a@b>` and RFC 822 comments after the address or in the
 * phrase: `MAIL FROM: <a@b> (comment)`, `MAIL FROM: (c) Name <a@b>`. Source routes (`@a,@b:u@d`) are kept apart so
 * relay control can see them. Inside the address, as Postfix's RFC 822
 * parser reads it, comments and white space between its tokens go:
 * `<a(c)@b>` and `< u @ b >` are `a@b` and `u@b` ({@linkcode compactPath};
 * with strict_rfc821_envelopes only the white space).
 *
 * With SMTPUTF8 (RFC 6531 §3.3) a local part may hold UTF-8 characters
 * (`atext =/ UTF8-non-ascii`, in quoted strings too) and a domain may hold
 * U-labels, valid when IDNA (UTS #46) maps them to an ASCII host name.
 * Without it both stay ASCII only, except that with smtputf8_enable off for
 * the whole instance the local part may hold any 8-bit text, as Postfix's
 * smtpd takes it then ("historically, Postfix does not forbid 8-bit
 * envelope localparts"; its smtpd_check_addr judges the domain only),
 * bytes that are not UTF-8 included (each a `rawByteChar`, written back as
 * the byte). No Unicode normalization is applied
 * (Postfix applies none either): addresses are kept as sent.
 *
 * @module
 */

import { domainToASCII, domainToUnicode } from "node:url";
import { isValidHostname, isValidIpv4HostAddress } from "./hostname.ts";
import { parseIp } from "./ip.ts";
import { trimBlanks } from "./parse_command.ts";

/** A parsed envelope address. */
export interface Address {
  /** Local part, unquoted (Postfix's internal form). */
  readonly local: string;
  /** Domain part as given (may be "" for a bare local part or the null path). */
  readonly domain: string;
  /** Source-route hosts (`@a,@b:`), empty when none. */
  readonly route: readonly string[];
  /** Whether the local part was quoted in the command. */
  readonly quoted: boolean;
}

/** The parse result of a path plus the parameter text after it. */
export type PathParse =
  | {
    ok: true;
    address: Address;
    params: string;
    /** The text between the angle brackets as sent (undefined without them). */
    sent?: string;
  }
  | { ok: false };

/** Options for {@linkcode parsePath}. */
export interface ParsePathOptions {
  /** Require `<address>` (strict_rfc821_envelopes). */
  strict: boolean;
  /** Allow UTF-8 in the local part and domain (the transaction has SMTPUTF8). */
  utf8?: boolean;
  /**
   * Allow any 8-bit text in the local part, the domain staying ASCII
   * (smtputf8_enable off, as Postfix's smtpd then).
   */
  eightBit?: boolean;
}

/** The null reverse-path `<>`. */
export const NULL_ADDRESS: Address = Object.freeze({
  local: "",
  domain: "",
  route: [],
  quoted: false,
});

/**
 * Renders an address in internal form: `local@domain`, or `local`, or "".
 * @param a the address
 * @returns the internal form
 */
export function addressText(a: Address): string {
  return a.domain ? `${a.local}@${a.domain}` : a.local;
}

// Characters that end an RFC 822 atom, besides controls and space.
const SPECIAL = /[()<>@,;:\\"[\]]/;
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;

function isDotString(local: string): boolean {
  if (local === "" || local.startsWith(".") || local.endsWith(".")) return false;
  if (local.includes("..") || local.includes(" ")) return false;
  return !SPECIAL.test(local) && !CONTROL.test(local);
}

/**
 * A local part in external form, as Postfix's quote_822_local(): quoted
 * when it is not an RFC 822 dot-string (`a..b` → `"a..b"`, "" → `""`, a `"` or `\`
 * inside escaped), as it is otherwise.
 * @param local the local part, unquoted (internal form)
 * @returns the local part as written in an address
 */
export function externalLocal(local: string): string {
  if (isDotString(local)) return local;
  return `"${local.replace(/["\\\r]/g, "\\$&")}"`;
}

/**
 * Whether an address is the null path.
 * @param a the address
 * @returns true for `<>`
 */
export function isNullAddress(a: Address): boolean {
  return a.local === "" && a.domain === "";
}

/**
 * Parses the text after `FROM:` or `TO:`.
 * @param text the argument text, e.g. " <a@b> SIZE=10"
 * @param options strictness
 * @returns the address and the remaining parameter text, or a failure
 */
export function parsePath(text: string, options: ParsePathOptions): PathParse {
  const s = text.replace(/^[ \t]+/, "");
  let inner: string;
  let rest: string;
  let bracketed = true;
  if (s.startsWith("<")) {
    const close = findClose(s, 1);
    if (close < 0) return { ok: false };
    inner = s.slice(1, close);
    rest = s.slice(close + 1);
  } else if (options.strict) {
    return { ok: false };
  } else {
    const lt = findOpen(s);
    if (lt >= 0) {
      const close = findClose(s, lt + 1);
      if (close < 0) return { ok: false };
      inner = s.slice(lt + 1, close);
      rest = s.slice(close + 1);
    } else {
      const end = bareEnd(s);
      if (end === undefined || end === 0) return { ok: false };
      bracketed = false;
      inner = s.slice(0, end);
      rest = s.slice(end);
    }
  }
  if (!options.strict) {
    // RFC 822 comments after the address go, as Sendmail and Postfix allow.
    // An unclosed comment stays as it is: a parameter, refused as the strict
    // mode refuses it (what strict accepts, loose accepts too).
    const after = skipComments(rest);
    if (after !== undefined && after !== rest) rest = after === "" ? "" : ` ${after}`;
  }
  if (rest !== "" && !/^[ \t]/.test(rest)) return { ok: false };
  const utf8 = options.utf8 === true;
  const eightBit = !utf8 && options.eightBit === true;
  const compact = compactRoutedPath(inner, utf8 || eightBit, options.strict);
  if (compact === undefined) return { ok: false };
  const address = parseMailbox(compact, utf8, eightBit);
  if (!address) return { ok: false };
  return { ok: true, address, params: trimBlanks(rest), ...(bracketed ? { sent: inner } : {}) };
}

/**
 * Where an address without brackets ends: at the first space or tab outside
 * a quoted string, as Postfix's command tokenizer keeps `"a b"@x.example`
 * one word; a backslash takes the next character as it is.
 * @param s the text, from the address on
 * @returns the index after the address, or undefined for an unclosed quoted string
 */
function bareEnd(s: string): number | undefined {
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "\\") i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && (c === " " || c === "\t")) return i;
  }
  return quoted ? undefined : s.length;
}

/**
 * compactPath() for a path that may start with a source route: the route
 * ends at the first ":" as Postfix's smtpd cuts it (before its address
 * parser runs), and is left as sent for parseMailbox to judge; only the
 * mailbox after it is compacted. A route that appears only once comments or
 * white space are gone (`< @a:u@b>`) is refused, as Postfix refuses it.
 */
function compactRoutedPath(inner: string, utf8: boolean, strict: boolean): string | undefined {
  // No control character anywhere, the route included: the text as sent
  // becomes the dsn_orig_rcpt record (a tab is white space).
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(inner)) return undefined;
  const colon = inner.startsWith("@") ? inner.indexOf(":") : -1;
  if (colon >= 0) {
    const mailbox = compactPath(inner.slice(colon + 1), utf8, strict);
    return mailbox === undefined ? undefined : inner.slice(0, colon + 1) + mailbox;
  }
  const compact = compactPath(inner, utf8, strict);
  return compact?.startsWith("@") ? undefined : compact;
}

/** RFC 822 specials that stand alone between tokens of an address. */
const SPECIALS = "@.,:;<>";
/** An atom: up to white space, a special, a comment, a quoted string, a literal. */
const ATOM = /[^ \t()"[\]@.,:;<>]+/y;
/** What compactPath() has to read token by token; a text without it is left as it is. */
const NOT_PLAIN = /[ \t()"[\]]/;

/**
 * The inside of a path as Postfix's RFC 822 address parser reads it
 * (tok822_parse, then the internal form): comments, nested or not, and
 * white space between tokens go, so `u(c) . v @ x . example` is
 * `u.v@x.example`; quoted strings and domain literals stay as sent. The
 * result still goes through parseMailbox, which judges every character.
 * Where Postfix guesses, we refuse: an unclosed comment (Postfix drops the
 * rest of the address, so `<u(a@b>` would be `u`), a ")" outside a comment
 * (Postfix quotes it into the local part), an unclosed quoted string or
 * literal. Two words in a row (`<a b@c>`, `<a(c)b@d>`) are refused, as
 * Postfix refuses them (two addresses). No control character (a tab is
 * white space), and without SMTPUTF8 (or smtputf8_enable off) nothing
 * 8-bit, comments included.
 * With strict_rfc821_envelopes a comment is refused, white space is not
 * (as Postfix: its strict check counts comments as text beside the address).
 * @param inner the text between the angle brackets
 * @param utf8 whether 8-bit text is allowed (SMTPUTF8, or smtputf8_enable
 *   off); parseMailbox judges where
 * @param strict strict_rfc821_envelopes: no comments
 * @returns the compact text, or undefined when refused
 */
export function compactPath(inner: string, utf8 = false, strict = false): string | undefined {
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(inner)) return undefined;
  // deno-lint-ignore no-control-regex
  if (!utf8 && /[^\x00-\x7f]/.test(inner)) return undefined;
  // Nothing to drop and nothing to judge here: no white space, comment,
  // quoted string or literal (the common case, and a long local part
  // would otherwise be read one character at a time).
  if (!NOT_PLAIN.test(inner)) return inner;
  let out = "";
  let afterWord = false;
  let i = 0;
  while (i < inner.length) {
    const c = inner[i] as string;
    if (c === " " || c === "\t") {
      i++;
      continue;
    }
    if (c === "(") {
      if (strict) return undefined;
      i = commentEnd(inner, i);
      if (i < 0) return undefined;
      continue;
    }
    if (c === ")" || c === "]") return undefined;
    if (SPECIALS.includes(c)) {
      out += c;
      afterWord = false;
      i++;
      continue;
    }
    let end: number;
    if (c === '"') end = quotedEnd(inner, i);
    else if (c === "[") end = inner.indexOf("]", i) + 1;
    else {
      ATOM.lastIndex = i;
      end = ATOM.test(inner) ? ATOM.lastIndex : i + 1;
    }
    if (end <= 0 || afterWord) return undefined;
    out += inner.slice(i, end);
    afterWord = true;
    i = end;
  }
  return out;
}

/**
 * Where a comment that starts at `from` ends: after its ")", nested
 * comments and backslash pairs inside it included.
 * @returns the index after it, or -1 when it is not closed
 */
function commentEnd(s: string, from: number): number {
  let depth = 0;
  for (let i = from; i < s.length; i++) {
    const c = s[i];
    if (c === "\\") i++;
    else if (c === "(") depth++;
    else if (c === ")" && --depth === 0) return i + 1;
  }
  return -1;
}

/**
 * Where a quoted string that starts at `from` ends: after its closing
 * quote, backslash pairs inside it included.
 * @returns the index after it, or -1 when it is not closed
 */
function quotedEnd(s: string, from: number): number {
  for (let i = from + 1; i < s.length; i++) {
    const c = s[i];
    if (c === "\\") i++;
    else if (c === '"') return i + 1;
  }
  return -1;
}

/**
 * The address argument of MAIL, RCPT or VRFY as Postfix's smtpd logs it
 * when it refuses it: up to the closing ">" when it starts with "<", else
 * the first word; control characters as "?".
 * @param text the text after `FROM:` or `TO:`
 * @returns the argument
 */
export function pathToken(text: string): string {
  const s = text.replace(/^[ \t]+/, "");
  const close = s.startsWith("<") ? findClose(s, 1) : -1;
  const token = close >= 0
    ? s.slice(0, close + 1)
    : s.startsWith("<")
    ? s
    : /^[^ \t]*/.exec(s)?.[0];
  return printableArgument(token ?? "");
}

/**
 * Client text for a log line: control characters as "?".
 * @param text the text
 * @returns the printable text
 */
export function printableArgument(text: string): string {
  return text.replace(/[^\x20-\x7e\u00a0-\uffff]/g, "?");
}

/** Finds "<" outside a quoted string and outside comments. */
function findOpen(s: string): number {
  let quoted = false;
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "\\" && (quoted || depth > 0)) i++;
    else if (c === '"' && depth === 0) quoted = !quoted;
    else if (c === "(" && !quoted) depth++;
    else if (c === ")" && !quoted && depth > 0) depth--;
    else if (c === "<" && !quoted && depth === 0) return i;
  }
  return -1;
}

/**
 * Drops the RFC 822 comments at the start of a text: `(a (nested) \) b)`.
 * @param text what follows the address
 * @returns the text after them, trimmed at the start; undefined for an unclosed comment
 */
export function skipComments(text: string): string | undefined {
  let s = text.replace(/^[ \t]+/, "");
  while (s.startsWith("(")) {
    let depth = 0;
    let end = -1;
    for (let i = 0; i < s.length && end < 0; i++) {
      const c = s[i];
      if (c === "\\") i++;
      else if (c === "(") depth++;
      else if (c === ")" && --depth === 0) end = i;
    }
    if (end < 0) return undefined;
    s = s.slice(end + 1).replace(/^[ \t]+/, "");
  }
  return s;
}

/** Finds the ">" closing a path, honouring quoted strings. */
function findClose(s: string, from: number): number {
  let quoted = false;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === BACKSLASH && quoted) i++;
    else if (c === QUOTE) quoted = !quoted;
    else if (c === CLOSE && !quoted) return i;
  }
  return -1;
}

const BACKSLASH = 0x5c;
const QUOTE = 0x22;
const CLOSE = 0x3e;

const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+$/;
const DOMAIN =
  /^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/;
/** atext plus UTF8-non-ascii (RFC 6531 §3.3), without the C1 controls. */
const ATEXT_UTF8 = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.\u00a0-\u{10ffff}]+$/u;
/** atext plus any 8-bit text (smtputf8_enable off): raw bytes and C1 too, as Postfix. */
const ATEXT_8BIT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.\u0080-\u{10ffff}]+$/u;
const LITERAL = /^\[(\d+(\.\d+){3}|IPv6:[0-9A-Fa-f:.]+)\]$/;

/**
 * Parses the inside of a path: "", `[@route,...:]local[@domain]`.
 * @param inner text between the angle brackets
 * @param utf8 whether UTF-8 is allowed (SMTPUTF8)
 * @param eightBit whether any 8-bit text is allowed in the local part
 *   (smtputf8_enable off)
 * @returns the address, or undefined when the syntax is bad
 */
export function parseMailbox(
  inner: string,
  utf8 = false,
  eightBit = false,
): Address | undefined {
  if (inner === "") return NULL_ADDRESS;
  let s = inner;
  const route: string[] = [];
  if (s.startsWith("@")) {
    const colon = s.indexOf(":");
    if (colon < 0) return undefined;
    for (const hop of s.slice(0, colon).split(",")) {
      const h = hop.trim();
      if (!h.startsWith("@") || !isRouteHost(h.slice(1))) return undefined;
      route.push(h.slice(1));
    }
    s = s.slice(colon + 1);
  }
  let local: string;
  let quoted = false;
  let domainPart: string | undefined;
  if (s.startsWith('"')) {
    let i = 1;
    let out = "";
    for (; i < s.length; i++) {
      const c = s[i] as string;
      if (c === "\\") {
        i++;
        if (i >= s.length) return undefined;
        // RFC 5321 quoted-pairSMTP: a backslash and one printable ASCII character.
        const q = s.charCodeAt(i);
        if (!quotable(q, utf8, eightBit)) return undefined;
        out += s[i];
      } else if (c === '"') break;
      else if (!quotable(c.charCodeAt(0), utf8, eightBit)) return undefined;
      else out += c;
    }
    if (i >= s.length) return undefined;
    local = out;
    quoted = true;
    const after = s.slice(i + 1);
    if (after === "") domainPart = undefined;
    else if (after.startsWith("@")) domainPart = after.slice(1);
    else return undefined;
  } else {
    const at = s.lastIndexOf("@");
    local = at < 0 ? s : s.slice(0, at);
    domainPart = at < 0 ? undefined : s.slice(at + 1);
    // An unquoted "@" in the local part is sender-specified routing
    // (u@v@w); keep it for relay control, but no empty pieces.
    const atext = utf8 ? ATEXT_UTF8 : eightBit ? ATEXT_8BIT : ATEXT;
    if (local.split("@").some((piece) => piece === "" || !atext.test(piece))) return undefined;
  }
  if (domainPart !== undefined && !(utf8 ? isUtf8Domain(domainPart) : isDomain(domainPart))) {
    return undefined;
  }
  if (local === "" && !quoted) return undefined;
  return { local, domain: domainPart ?? "", route, quoted };
}

/**
 * A character of a quoted string: printable ASCII, or UTF-8 past the C1
 * controls (SMTPUTF8), or any 8-bit text (smtputf8_enable off).
 */
function quotable(c: number, utf8: boolean, eightBit: boolean): boolean {
  return (c >= 32 && c <= 126) || (utf8 && c >= 0xa0) || (eightBit && c >= 0x80);
}

/**
 * Whether text is a domain name (ASCII or with U-labels: RFC 6531 §3.3,
 * valid when IDNA maps it to a valid ASCII name) or an address literal.
 * @param d the candidate
 * @returns true when syntactically valid
 */
export function isUtf8Domain(d: string): boolean {
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(d)) return isDomain(d);
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x20\x7f-\x9f]/.test(d)) return false;
  const ascii = domainToASCII(d);
  return ascii !== "" && !ascii.startsWith("[") && isDomain(ascii) && hyphensFit(ascii);
}

/**
 * UTS #46 CheckHyphens, which domainToASCII() leaves out and the ICU
 * conversion of Postfix's midna_domain_to_ascii() applies to every label of
 * a name with U-labels (its smtpd answers 501, its trivial-rewrite flags
 * the address as bad): no label, A-labels decoded, may begin or end with
 * "-" or hold "--" in its third and fourth places.
 */
function hyphensFit(ascii: string): boolean {
  const labels = ascii.replace(/\.$/, "").split(".");
  return labels.every((label) => {
    const u = label.startsWith("xn--") ? domainToUnicode(label) : label;
    return !u.startsWith("-") && !u.endsWith("-") && u.slice(2, 4) !== "--";
  });
}

/**
 * Whether text is a domain name or an address literal. A name must also be
 * a valid host name as Postfix's smtpd judges the domain of every MAIL and
 * RCPT address (valid_hostname: labels of at most 63 characters, not
 * all-numeric, so `u@1.2.3.4` needs brackets); Postfix answers 501 otherwise.
 * @param d the candidate
 * @returns true when syntactically valid
 */
export function isDomain(d: string): boolean {
  return isRouteHost(d) && (d.startsWith("[") || isValidHostname(d));
}

/**
 * The shape a source-route host needs (`@a,@b:`): Postfix drops the route
 * without judging its hosts further.
 */
function isRouteHost(d: string): boolean {
  if (d.length === 0 || d.length > 255) return false;
  if (d.startsWith("[")) {
    // IPv4 as Postfix's valid_ipv4_hostaddr: leading zeros allowed
    // (`[01.2.3.4]`; no address check reads such a literal, parseIp refuses
    // it), a first part of 0 only in 0.0.0.0 (`[0.1.2.3]` is refused).
    if (!LITERAL.test(d)) return false;
    return d.startsWith("[IPv6:")
      ? parseIp(d) !== undefined
      : isValidIpv4HostAddress(d.slice(1, -1));
  }
  return DOMAIN.test(d);
}
