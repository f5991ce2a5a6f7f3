/**
 * Client pattern lists, as Postfix's debug_peer_list reads them: IP
 * addresses, networks (CIDR), host or domain names (a domain matches its
 * subdomains), and `type:name` tables looked up by client name and address.
 *
 * @module
 */

import { ConfigError } from "../config/mod.ts";
import { inNetwork, type Network, parseIp, parseNetwork } from "./cidr.ts";
import { isTableSpec, type LookupTable, openTable, TableOpenError } from "./tables/mod.ts";

/** Tells whether a client matches the list. */
export type PeerMatcher = (name: string, address: string) => Promise<boolean>;

/**
 * Compiles a client pattern list.
 * @param items the patterns
 * @param key the parameter, for errors
 * @param owner what a reload retires its tables with (see openTable), when a reload compiles it again
 * @returns the matcher
 * @throws {ConfigError} for an unreadable table
 */
export function compilePeerList(
  items: readonly string[],
  key: string,
  owner?: object,
): PeerMatcher {
  const nets: Network[] = [];
  const names: string[] = [];
  const tables: LookupTable[] = [];
  for (const item of items) {
    if (isTableSpec(item) && !item.startsWith("[")) {
      try {
        tables.push(openTable(item, { owner }));
      } catch (err) {
        if (err instanceof TableOpenError) throw new ConfigError(`${key}: ${err.message}`, { key });
        throw err;
      }
      continue;
    }
    const net = parseNetwork(item);
    if (net) nets.push(net);
    else names.push(item.toLowerCase().replace(/^\./, ""));
  }
  if (items.length === 0) return () => Promise.resolve(false);
  return async (name, address) => {
    const ip = parseIp(address);
    if (ip !== undefined && nets.some((n) => inNetwork(n, ip))) return true;
    const n = name.toLowerCase();
    if (n !== "unknown" && names.some((p) => n === p || n.endsWith("." + p))) return true;
    for (const t of tables) {
      for (const k of [n, address]) {
        if ((await t.lookup(k)).kind === "found") return true;
      }
    }
    return false;
  };
}
