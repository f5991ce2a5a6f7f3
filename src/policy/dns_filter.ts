/**
 * smtpd_dns_reply_filter: every record of a DNS answer is written as text,
 * `name. TTL IN TYPE data` (Postfix's form), and looked up in the filter
 * tables; IGNORE drops the record. An answer whose records are all dropped
 * is "filtered" (Postfix's DNS_POLICY: the checks skip it with a warning).
 * Deno's resolver reports no TTL, so the TTL is always written as 0:
 * patterns must not depend on it. Any other table value is refused at
 * start (its values are compiled then); a table that cannot enumerate its
 * values makes the answer a temporary failure on such a value, as in
 * Postfix ("unknown DNS filter action").
 *
 * @module
 */

import { ConfigError, type LoadedConfig } from "../config/mod.ts";
import type { DnsAnswer, DnsResolver, DnsType } from "./resolver.ts";
import { type LookupTable, openTable, TableOpenError } from "./tables/mod.ts";

/**
 * The text Postfix's dns_strrecord makes of a record.
 * @param name the query name
 * @param type the record type
 * @param data the record as our resolver gives it
 * @returns e.g. "example.com. 0 IN MX 10 mx.example.com."
 */
export function recordText(name: string, type: DnsType, data: string): string {
  const dot = (h: string) => h.endsWith(".") ? h : `${h}.`;
  let shown = data;
  if (type === "MX") {
    const [pref = "", host = ""] = data.split(" ");
    shown = `${pref} ${dot(host)}`;
  } else if (type === "NS" || type === "PTR") {
    shown = dot(data);
  }
  return `${dot(name)} 0 IN ${type} ${shown}`;
}

/**
 * Wraps a resolver with the filter.
 * @param inner the resolver
 * @param tables the filter tables, in order
 * @param warn receives "unknown DNS filter action" warnings
 * @returns the filtering resolver
 */
export function filteredResolver(
  inner: DnsResolver,
  tables: readonly LookupTable[],
  warn: (text: string) => void,
): DnsResolver {
  return {
    async query(
      name: string,
      type: DnsType,
      confirm?: boolean,
      all?: boolean,
    ): Promise<DnsAnswer> {
      const a = await inner.query(name, type, confirm, all);
      if (a.kind !== "ok") return a;
      const kept: string[] = [];
      next: for (const rec of a.records) {
        const text = recordText(name, type, rec);
        for (const t of tables) {
          const r = await t.lookup(text);
          if (r.kind === "tempfail") return { kind: "tempfail", reason: "DNS reply filter lookup" };
          if (r.kind !== "found") continue;
          if (r.value.trim().toUpperCase() === "IGNORE") continue next;
          warn(`smtpd_dns_reply_filter: unknown DNS filter action: "${r.value}"`);
          return { kind: "tempfail", reason: "Invalid DNS reply filter syntax" };
        }
        kept.push(rec);
      }
      return kept.length ? { kind: "ok", records: kept } : { kind: "filtered" };
    },
  };
}

/**
 * The resolver the policy uses: the given one, behind smtpd_dns_reply_filter when set.
 * @param loaded the configuration (for file and line in errors)
 * @param inner the resolver
 * @param warn the warning sink
 * @returns the resolver
 * @throws {ConfigError} for an unreadable table or a value other than IGNORE
 */
export function dnsReplyFilter(
  loaded: LoadedConfig,
  inner: DnsResolver,
  warn: (text: string) => void,
): DnsResolver {
  if (loaded.config.smtpd_dns_reply_filter.length === 0) return inner;
  return filteredResolver(inner, filterTables(loaded), warn);
}

/** Opens the smtpd_dns_reply_filter tables; a value other than IGNORE stops the start. */
function filterTables(loaded: LoadedConfig): LookupTable[] {
  const key = "smtpd_dns_reply_filter";
  const at = { file: loaded.file, line: loaded.lineOf(key), key };
  return loaded.config.smtpd_dns_reply_filter.map((spec) => {
    let t: LookupTable;
    try {
      t = openTable(spec, { owner: loaded.config });
    } catch (err) {
      if (err instanceof TableOpenError) throw new ConfigError(`${key}: ${err.message}`, at);
      throw err;
    }
    const bad = (t.values ?? []).find((v) => v.trim().toUpperCase() !== "IGNORE");
    if (bad !== undefined) {
      throw new ConfigError(
        `${key}: ${spec}: unknown DNS filter action "${bad}" (only IGNORE)`,
        at,
      );
    }
    return t;
  });
}
