/**
 * Test helper (folder-private): a DnsResolver answering from a zone given
 * in the test, recording every query.
 *
 * @module
 */

import type { DnsAnswer, DnsResolver, DnsType } from "./resolver.ts";

/** Records per name and type; "tempfail" makes that query fail temporarily. */
export type Zone = Record<string, Partial<Record<DnsType, string[] | "tempfail">>>;

/**
 * Builds the fake resolver.
 * @param zone the records
 * @returns a resolver with the list of queries it got
 */
export function fakeDns(zone: Zone): DnsResolver & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    query(name: string, type: DnsType): Promise<DnsAnswer> {
      calls.push(`${type} ${name}`);
      const r = zone[name.toLowerCase().replace(/\.$/, "")]?.[type];
      if (r === "tempfail") return Promise.resolve({ kind: "tempfail", reason: "SERVFAIL" });
      return Promise.resolve(r?.length ? { kind: "ok", records: r } : { kind: "notFound" });
    },
  };
}
