/**
 * What marks a client that does not speak SMTP, as Postfix's smtpd judges
 * an unknown command: its first word is a header label (`Subject:`), or
 * smtpd_forbidden_commands has it (CONNECT, GET, POST: an open-proxy scan,
 * or a web page making a browser post to port 25). The session then ends
 * with 221 before the next line is read.
 *
 * smtpd_forbidden_commands holds words, matched in any case, and `type:table`
 * elements, looked up with the word in lower case (Postfix's default has
 * `regexp:{{/^[^A-Z]/ Bogus}}`: a word that does not start with a letter).
 * Postfix's `!word` and `/file` elements are refused at start.
 *
 * @module
 */

import { ConfigError } from "../config/mod.ts";
import { isTableSpec, type LookupTable, openTable, TableOpenError } from "./tables/mod.ts";

/**
 * Whether a command word is in smtpd_forbidden_commands.
 * @throws {Error} when a table cannot answer (the caller logs it; Postfix
 *   then counts the word as not forbidden)
 */
export type CommandMatcher = (word: string) => Promise<boolean>;

/**
 * Whether a command's first word is a header label, `Name:` (Postfix's
 * is_header on its first token): printable ASCII other than the colon, then
 * a colon. `Subject:`, `To:x` and `Host:` are; `Subject :` (a word, then a
 * separate colon) and `:foo` are not.
 * @param word the first word of a command line
 * @returns true for a header label
 */
export function isHeaderLabel(word: string): boolean {
  return /^[!-9;-~]+:/.test(word);
}

/**
 * Compiles smtpd_forbidden_commands.
 * @param items the list's elements
 * @param owner what a reload retires its tables with (see openTable)
 * @returns the matcher
 * @throws {ConfigError} for an element we do not support or a table that cannot be opened
 */
export function compileForbiddenCommands(
  items: readonly string[],
  owner?: object,
): CommandMatcher {
  const key = "smtpd_forbidden_commands";
  const words = new Set<string>();
  const tables: LookupTable[] = [];
  for (const item of items) {
    if (item.startsWith("!") || item.startsWith("/")) {
      throw new ConfigError(
        `${key}: "${item}": only words and type:table elements are supported, ` +
          "not !negation or /file",
        { key },
      );
    }
    if (!isTableSpec(item)) {
      words.add(item.toUpperCase());
      continue;
    }
    try {
      tables.push(openTable(item, { owner }));
    } catch (err) {
      if (err instanceof TableOpenError) throw new ConfigError(`${key}: ${err.message}`, { key });
      throw err;
    }
  }
  return async (word) => {
    if (words.has(word.toUpperCase())) return true;
    // Postfix case-folds the word (with ICU, as Debian builds it: "\u017f"
    // becomes "s", "\u00df" "ss") before a table sees it; upper then lower
    // case comes closest in JavaScript.
    const folded = word.toUpperCase().toLowerCase();
    for (const t of tables) {
      const r = await t.lookup(folded);
      if (r.kind === "found") return true;
      if (r.kind === "tempfail") throw new Error(`${t.name}: ${r.reason}`);
    }
    return false;
  };
}
