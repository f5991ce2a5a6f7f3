/**
 * mynetworks parsing (the networks trusted by permit_mynetworks).
 *
 * @module
 */

import { ConfigError } from "../config/mod.ts";
import { type Network, parseNetwork } from "./cidr.ts";

/**
 * Parses a list of networks.
 * @param items the configured networks
 * @param key the parameter, for errors
 * @returns the networks
 * @throws {ConfigError} for a malformed entry
 */
export function compileNetworks(items: readonly string[], key: string): Network[] {
  return items.map((item) => {
    const net = parseNetwork(item);
    if (!net) throw new ConfigError(`${key}: cannot parse network "${item}"`, { key });
    return net;
  });
}
