/**
 * Domain lists as Postfix reads them (mydestination, relay_domains,
 * virtual_alias_domains, virtual_mailbox_domains): each entry is a domain
 * name, a `/file/name` whose words are more entries (read once, at start
 * or reload), or a `type:table` in which the domain is looked up. In
 * relay_domains a listed domain also matches its subdomains (Postfix's
 * parent_domain_matches_subdomains default), in a table by looking up each
 * parent domain too.
 *
 * @module
 */

import type { LookupTable } from "./tables/mod.ts";
import { isTableSpec } from "./tables/mod.ts";
import { foldDomain, normalizeDomain } from "./hostname.ts";
import { tracedLookup, type TraceEnv } from "./restriction.ts";

/** Whether a domain is in a list: yes, no, or unknown for now (a table failed). */
export type Membership = "yes" | "no" | "tempfail";

/** A compiled domain list. */
export interface DomainList {
  /** The literal domains (case folded: {@linkcode foldDomain}), file entries included. */
  readonly names: ReadonlySet<string>;
  /** The tables, looked up in order. */
  readonly tables: readonly LookupTable[];
  /** Whether a listed domain covers its subdomains. */
  readonly subdomains: boolean;
}

/** What compiling a list needs: a table opener and a file reader (both of compile time). */
export interface DomainListEnv {
  table(spec: string): LookupTable;
  readFile(path: string): string;
}

/**
 * The entries of a list with `/file` entries replaced by the words of the
 * file (`#` comments, whitespace or commas between words; files may name
 * files, at most 10 deep).
 * @param items the configured entries
 * @param readFile reads a file (throws with a message when it cannot)
 * @returns the entries
 */
export function expandListFiles(
  items: readonly string[],
  readFile: (path: string) => string,
  depth = 0,
): string[] {
  const out: string[] = [];
  for (const item of items) {
    if (!item.startsWith("/")) {
      out.push(item);
      continue;
    }
    if (depth >= 10) throw new Error(`${item}: files name files more than 10 deep`);
    const words = readFile(item).split("\n")
      .map((line) => line.replace(/#.*$/, ""))
      .flatMap((line) => line.split(/[\s,]+/))
      .filter((w) => w !== "");
    // One by one: spread into push(), a file of 200,000 words overflowed the stack.
    for (const w of expandListFiles(words, readFile, depth + 1)) out.push(w);
  }
  return out;
}

/**
 * Compiles a domain list.
 * @param items the configured entries
 * @param env opens tables, reads files
 * @param subdomains whether listed domains cover their subdomains
 * @returns the list
 */
export function compileDomainList(
  items: readonly string[],
  env: DomainListEnv,
  subdomains: boolean,
): DomainList {
  const names = new Set<string>();
  const tables: LookupTable[] = [];
  for (const item of expandListFiles(items, env.readFile)) {
    if (isTableSpec(item)) tables.push(env.table(item));
    else names.add(foldDomain(item).replace(/^\./, ""));
  }
  return { names, tables, subdomains };
}

/**
 * Whether a list names no domain and no table.
 * @param list the list
 * @returns true when empty
 */
export function isEmptyList(list: DomainList): boolean {
  return list.names.size === 0 && list.tables.length === 0;
}

/**
 * Whether a domain is in a list by its literal entries (no table asked).
 * @param domain the domain (any case)
 * @param list the list
 * @returns true when a literal entry matches
 */
export function namedIn(domain: string, list: DomainList): boolean {
  // Compared as Postfix's match_list compares: both sides case folded.
  const n = foldDomain(domain);
  if (list.names.has(n)) return true;
  if (!list.subdomains) return false;
  for (const parent of parents(n)) if (list.names.has(parent)) return true;
  return false;
}

/**
 * Whether a domain is in a list: the literal entries, then each table
 * (the domain, and with subdomain matching each parent domain).
 * @param domain the domain (any case)
 * @param list the list
 * @param e the evaluation, for the trace
 * @returns yes, no, or tempfail when a table could not answer
 */
export async function inDomainList(
  domain: string,
  list: DomainList,
  e: TraceEnv | undefined,
): Promise<Membership> {
  const n = normalizeDomain(domain);
  if (n === "" || n.startsWith("[")) return "no";
  if (namedIn(n, list)) return "yes";
  const keys = list.subdomains ? [n, ...parents(n)] : [n];
  let failed = false;
  for (const table of list.tables) {
    for (const key of keys) {
      const r = e ? await tracedLookup(e, table, key) : await table.lookup(key);
      if (r.kind === "found") return "yes";
      if (r.kind === "tempfail") failed = true;
    }
  }
  return failed ? "tempfail" : "no";
}

/** "a.b.example" → "b.example", "example". */
function parents(domain: string): string[] {
  const out: string[] = [];
  let at = domain.indexOf(".");
  while (at >= 0) {
    const rest = domain.slice(at + 1);
    if (rest) out.push(rest);
    at = domain.indexOf(".", at + 1);
  }
  return out;
}
