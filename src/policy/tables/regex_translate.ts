/**
 * Turns a regexp_table(5) pattern (POSIX extended, as glibc's regcomp
 * reads it) or a pcre_table(5) pattern into a JavaScript RegExp that
 * matches the same strings, or refuses it. PCRE features JavaScript has
 * no equivalent for (or one that matches differently) are refused, never
 * approximated: possessive quantifiers, atomic groups, \A \Z \z \G, \K,
 * inline option settings such as (?i), recursion and subroutine calls,
 * conditionals, callouts, backtracking verbs, branch reset, \R \h \v \X \C
 * \N, \p{...}, [[:^class:]], the U (ungreedy) flag. POSIX bracket classes
 * ([[:alpha:]]) and PCRE's \Q...\E are translated.
 *
 * Case-insensitive patterns without back-references are written with
 * explicit case classes ([aA]) instead of the `i` flag, so V8 can fall
 * back to its linear-time engine on excessive backtracking (see
 * scripts/permissions.ts); that engine does not run `i` patterns.
 *
 * @module
 */

/** Raised for a pattern we cannot (or will not) translate. */
export class PatternError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PatternError";
  }
}

/** The pattern dialect: pcre: or regexp: (POSIX ERE). */
export type Dialect = "pcre" | "regexp";

/** Matching options from the table's flags. */
export interface PatternOptions {
  ignoreCase: boolean;
  multiline: boolean;
  dotAll: boolean;
  /** PCRE x: white space and #comments in the pattern are ignored. */
  extended: boolean;
  /** PCRE A: the match must start at the start of the input. */
  anchored: boolean;
}

/** A translated pattern. */
export interface Translated {
  readonly regex: RegExp;
  /** Capturing groups, for $n checks. */
  readonly groups: number;
}

const POSIX_CLASSES: Record<string, Member[]> = {
  alpha: [{ lo: "A", hi: "Z" }, { lo: "a", hi: "z" }],
  upper: [{ lo: "A", hi: "Z" }],
  lower: [{ lo: "a", hi: "z" }],
  digit: [{ lo: "0", hi: "9" }],
  alnum: [{ lo: "0", hi: "9" }, { lo: "A", hi: "Z" }, { lo: "a", hi: "z" }],
  xdigit: [{ lo: "0", hi: "9" }, { lo: "A", hi: "F" }, { lo: "a", hi: "f" }],
  space: [{ raw: "\\t\\n\\x0b\\f\\r " }],
  blank: [{ raw: " \\t" }],
  punct: [{ raw: "!-\\/:-@\\[-`{-~" }],
  print: [{ raw: "\\x20-\\x7e" }],
  graph: [{ raw: "\\x21-\\x7e" }],
  cntrl: [{ raw: "\\x00-\\x1f\\x7f" }],
  word: [{ raw: "\\w" }],
};

type Member = { c: string } | { lo: string; hi: string } | { raw: string };

const PCRE_REFUSED_ESCAPES: Record<string, string> = {
  A: "\\A (start of subject)",
  Z: "\\Z (end of subject or before a final newline)",
  z: "\\z (end of subject)",
  G: "\\G (first match position)",
  K: "\\K (reset match start)",
  R: "\\R (any newline sequence)",
  h: "\\h (horizontal space)",
  H: "\\H",
  v: "\\v (vertical space; a vertical tab in JavaScript)",
  V: "\\V",
  X: "\\X (extended grapheme cluster)",
  C: "\\C (one code unit)",
  N: "\\N (not a newline)",
  p: "\\p{...} (Unicode properties)",
  P: "\\P{...}",
  g: "\\g (back-reference or subroutine call syntax)",
  o: "\\o{...} (octal)",
  E: "\\E without \\Q",
};

/**
 * Translates one pattern.
 * @param pattern the text between the delimiters
 * @param dialect pcre or regexp
 * @param options the flags
 * @returns the RegExp and its group count
 * @throws {PatternError} naming the refused feature or the syntax problem
 */
export function translatePattern(
  pattern: string,
  dialect: Dialect,
  options: PatternOptions,
): Translated {
  const first = emit(pattern, dialect, options, false);
  const fold = options.ignoreCase && !first.backrefs;
  const { source, groups } = fold ? emit(pattern, dialect, options, true) : first;
  let body = source;
  if (options.anchored) body = `(?<![\\s\\S])(?:${body})`;
  const flags = (options.ignoreCase && !fold ? "i" : "") + (options.multiline ? "m" : "") +
    (options.dotAll ? "s" : "");
  try {
    return { regex: new RegExp(body, flags), groups };
  } catch (err) {
    throw new PatternError((err as Error).message.replace(/^Invalid regular expression: /, ""));
  }
}

function emit(
  p: string,
  dialect: Dialect,
  o: PatternOptions,
  fold: boolean,
): { source: string; groups: number; backrefs: boolean } {
  let out = "";
  let groups = 0;
  let backrefs = false;
  let quantified = false; // the previous token was a quantifier
  const lit = (c: string): string => {
    if (fold) {
      const l = c.toLowerCase(), u = c.toUpperCase();
      if (l !== u && l.length === 1 && u.length === 1) return `[${l}${u}]`;
    }
    return /[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c;
  };
  let i = 0;
  while (i < p.length) {
    const c = p[i] as string;
    const wasQuantified: boolean = quantified;
    quantified = false;
    if (dialect === "pcre" && o.extended && /\s/.test(c)) {
      i++;
      quantified = wasQuantified;
      continue;
    }
    if (dialect === "pcre" && o.extended && c === "#") break;
    if (c === "\\") {
      const d = p[i + 1];
      if (d === undefined) throw new PatternError("trailing backslash");
      i += 2;
      if (dialect === "regexp") {
        if ("wWsSbB".includes(d)) out += `\\${d}`;
        else if (/[1-9]/.test(d)) {
          out += `\\${d}`;
          backrefs = true;
        } else if (d === "<") out += "\\b(?=\\w)";
        else if (d === ">") out += "\\b(?<=\\w)";
        else if (d === "`") out += "(?<![\\s\\S])";
        else if (d === "'") out += "(?![\\s\\S])";
        else out += lit(d);
        continue;
      }
      if (d === "Q") {
        const end = p.indexOf("\\E", i);
        const text = end < 0 ? p.slice(i) : p.slice(i, end);
        for (const ch of text) out += lit(ch);
        i = end < 0 ? p.length : end + 2;
        continue;
      }
      if (d in PCRE_REFUSED_ESCAPES) {
        throw new PatternError(`not supported: ${PCRE_REFUSED_ESCAPES[d]}`);
      }
      if (/[1-9]/.test(d)) {
        out += `\\${d}`;
        backrefs = true;
      } else if (d === "0") {
        throw new PatternError("not supported: octal escapes (\\0...)");
      } else if ("dDwWsSbBnrtf".includes(d)) out += `\\${d}`;
      else if (d === "e") out += "\\x1b";
      else if (d === "a") out += "\\x07";
      else if (d === "c" && /[A-Za-z]/.test(p[i] ?? "")) out += `\\c${p[i++]}`;
      else if (d === "x") out += hexEscape(p, i, (n) => i = n);
      else if (d === "k" && p[i] === "<") {
        const end = p.indexOf(">", i);
        if (end < 0) throw new PatternError("unterminated \\k<name>");
        out += `\\k${p.slice(i, end + 1)}`;
        i = end + 1;
        backrefs = true;
      } else if (/[A-Za-z0-9]/.test(d)) {
        throw new PatternError(`not supported: unknown escape \\${d}`);
      } else out += lit(d);
      continue;
    }
    if (c === "[") {
      const r = bracket(p, i, dialect, fold);
      out += r.text;
      i = r.next;
      continue;
    }
    if (c === "(") {
      const g = group(p, i, dialect);
      out += g.text;
      groups += g.capturing ? 1 : 0;
      i = g.next;
      continue;
    }
    if (c === "*" || c === "+" || c === "?") {
      if (dialect === "pcre" && c === "+" && wasQuantified) {
        throw new PatternError("not supported: possessive quantifiers (*+, ++, ?+, {n}+)");
      }
      out += c;
      i++;
      // "+?" and "*?" are lazy; a "?" after a quantifier ends it.
      quantified = !(c === "?" && wasQuantified);
      continue;
    }
    if (c === "{") {
      const m = /^\{\d+(?:,\d*)?\}/.exec(p.slice(i));
      if (m) {
        out += m[0];
        i += m[0].length;
        quantified = true;
      } else {
        out += "\\{";
        i++;
      }
      continue;
    }
    if ("^$.|)".includes(c)) {
      out += c;
      i++;
      continue;
    }
    out += lit(c);
    i++;
  }
  return { source: out, groups, backrefs };
}

function hexEscape(p: string, i: number, setNext: (n: number) => void): string {
  if (p[i] === "{") {
    const end = p.indexOf("}", i);
    const hex = end < 0 ? "" : p.slice(i + 1, end);
    if (!/^[0-9A-Fa-f]{1,4}$/.test(hex)) throw new PatternError(`not supported: \\x{${hex}}`);
    setNext(end + 1);
    return `\\u${hex.padStart(4, "0")}`;
  }
  const m = /^[0-9A-Fa-f]{1,2}/.exec(p.slice(i));
  const hex = m ? m[0] : "";
  setNext(i + hex.length);
  return `\\x${hex.padStart(2, "0")}`;
}

function group(
  p: string,
  i: number,
  dialect: Dialect,
): { text: string; capturing: boolean; next: number } {
  if (p[i + 1] === "*") throw new PatternError("not supported: backtracking verbs (*VERB)");
  if (p[i + 1] !== "?") return { text: "(", capturing: true, next: i + 1 };
  if (dialect === "regexp") throw new PatternError(`"(?" is not POSIX regular expression syntax`);
  const rest = p.slice(i + 2);
  for (const keep of [":", "=", "!", "<=", "<!"]) {
    if (rest.startsWith(keep)) {
      return { text: `(?${keep}`, capturing: false, next: i + 2 + keep.length };
    }
  }
  const named = /^(?:P?<([A-Za-z_]\w*)>|'([A-Za-z_]\w*)')/.exec(rest);
  if (named) {
    return { text: `(?<${named[1] ?? named[2]}>`, capturing: true, next: i + 2 + named[0].length };
  }
  const what = rest.startsWith(">")
    ? "atomic groups (?>...)"
    : rest.startsWith("|")
    ? "branch reset (?|...)"
    : rest.startsWith("#")
    ? "comments (?#...)"
    : rest.startsWith("(")
    ? "conditional groups (?(...)...)"
    : rest.startsWith("C")
    ? "callouts (?C...)"
    : /^(R|[+-]?\d|&|P>|P=)/.test(rest)
    ? "recursion and subroutine calls (?R), (?1), (?&name)"
    : /^[a-zA-Z^-]/.test(rest)
    ? "inline option settings such as (?i) or (?i:...); use the table's flags"
    : `"(?${rest.slice(0, 2)}"`;
  throw new PatternError(`not supported: ${what}`);
}

function bracket(
  p: string,
  start: number,
  dialect: Dialect,
  fold: boolean,
): { text: string; next: number } {
  let j = start + 1;
  let negate = false;
  if (p[j] === "^") {
    negate = true;
    j++;
  }
  const members: Member[] = [];
  let first = true;
  const single = (): string | Member[] => {
    const c = p[j];
    if (c === undefined) throw new PatternError(`missing "]"`);
    if (c === "[" && p[j + 1] === ":") {
      const end = p.indexOf(":]", j + 2);
      const name = end < 0 ? "" : p.slice(j + 2, end);
      if (name.startsWith("^")) throw new PatternError(`not supported: [[:^${name.slice(1)}:]]`);
      const cls = POSIX_CLASSES[name];
      if (!cls) throw new PatternError(`unknown character class [:${name}:]`);
      j = end + 2;
      return cls;
    }
    if (c === "[" && (p[j + 1] === "=" || p[j + 1] === ".")) {
      throw new PatternError(`not supported: [${p[j + 1]}...${p[j + 1]}] in a bracket expression`);
    }
    if (c === "\\" && dialect === "pcre") {
      const d = p[j + 1] ?? "";
      j += 2;
      if ("dDwWsS".includes(d)) return [{ raw: `\\${d}` }];
      if (d === "b") return "\b";
      const named: Record<string, string> = {
        n: "\n",
        r: "\r",
        t: "\t",
        f: "\f",
        e: "\x1b",
        a: "\x07",
      };
      if (d in named) return named[d] as string;
      if (d === "x") {
        const hex = hexEscape(p, j, (n) => j = n);
        return String.fromCharCode(parseInt(hex.slice(2), 16));
      }
      if (/[A-Za-z0-9]/.test(d)) {
        throw new PatternError(`not supported: \\${d} in a character class`);
      }
      return d;
    }
    j++;
    return c;
  };
  for (;;) {
    if (p[j] === undefined) throw new PatternError(`missing "]"`);
    if (p[j] === "]" && !first) break;
    first = false;
    const a = single();
    if (typeof a !== "string") {
      members.push(...a);
      continue;
    }
    if (p[j] === "-" && p[j + 1] !== undefined && p[j + 1] !== "]") {
      j++;
      const b = single();
      if (typeof b !== "string") throw new PatternError("a range cannot end in a character class");
      if (b < a) throw new PatternError(`invalid range ${a}-${b}`);
      members.push({ lo: a, hi: b });
    } else members.push({ c: a });
  }
  const esc = (c: string) =>
    /[\\\]\[^-]/.test(c)
      ? `\\${c}`
      : c < " " || c === "\x7f"
      ? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`
      : c;
  let body = "";
  for (const m of members) {
    if ("raw" in m) body += m.raw;
    else if ("c" in m) {
      body += esc(m.c);
      if (fold) {
        const o = m.c === m.c.toLowerCase() ? m.c.toUpperCase() : m.c.toLowerCase();
        if (o !== m.c && o.length === 1) body += esc(o);
      }
    } else {
      body += `${esc(m.lo)}-${esc(m.hi)}`;
      if (fold) body += foldRange(m.lo, m.hi);
    }
  }
  return { text: `[${negate ? "^" : ""}${body}]`, next: j + 1 };
}

/** The other-case letters of a range, as class members. */
function foldRange(lo: string, hi: string): string {
  let out = "";
  for (const [a, z, delta] of [["A", "Z", 32], ["a", "z", -32]] as const) {
    const from = Math.max(lo.charCodeAt(0), a.charCodeAt(0));
    const to = Math.min(hi.charCodeAt(0), z.charCodeAt(0));
    if (from <= to) {
      out += `${String.fromCharCode(from + delta)}-${String.fromCharCode(to + delta)}`;
    }
  }
  return out;
}
