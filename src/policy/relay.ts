/**
 * mynetworks parsing (the networks trusted by permit_mynetworks). A network
 * with host bits set ("192.0.2.1/27") is an error, not silently widened:
 * Postfix warns and defers every request such a list decides.
 *
 * @module
 */

import { ConfigError } from "../config/mod.ts";
import { formatIp } from "../protocol/ip.ts";
import { type Network, parseNetwork } from "./cidr.ts";

/**
 * Parses a list of networks.
 * @param items the configured networks
 * @param key the parameter, for errors
 * @returns the networks
 * @throws {ConfigError} for a malformed entry or one with host bits set
 */
export function compileNetworks(items: readonly string[], key: string): Network[] {
  return items.map((item) => {
    const net = parseNetwork(item);
    if (!net) throw new ConfigError(`${key}: cannot parse network "${item}"`, { key });
    const slash = item.lastIndexOf("/");
    const host = slash < 0 ? undefined : parseNetwork(item.slice(0, slash));
    if (host && host.base !== net.base) {
      const bits = net.family === 4 ? net.bits - 96 : net.bits;
      const v6 = item.startsWith("[");
      const base = formatIp(net.base);
      throw new ConfigError(
        `${key}: non-null host address bits in "${item}", perhaps you should use "${
          v6 ? `[${base}]` : base
        }/${bits}" instead`,
        { key },
      );
    }
    return net;
  });
}
