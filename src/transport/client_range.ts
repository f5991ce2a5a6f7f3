/**
 * The unit the per-client limits and rates count, as Postfix 3.8 and later
 * count them for anvil: a client address, or the network block it is in
 * (smtpd_client_ipv4_prefix_length, default 32: the address itself;
 * smtpd_client_ipv6_prefix_length, default 84). Without blocks, one host
 * with an IPv6 /64 of its own could open a session, send its messages and
 * hold its slots from as many addresses as it likes, and no per-client
 * limit would ever count two of them together.
 *
 * @module
 */

import type { Config } from "../config/mod.ts";
import { formatIp, parseIpAddress } from "../protocol/ip.ts";

const ALL = (1n << 128n) - 1n;

/**
 * The counting unit for addresses of each family.
 * @param ipv4Prefix prefix length for IPv4 clients, 0 to 32
 * @param ipv6Prefix prefix length for IPv6 clients, 0 to 128
 * @returns a function from a client address to its unit: the address when
 *   the prefix covers it all, else `network/length` with the host bits
 *   cleared (`2001:db8::/84`); text that is not an address is its own unit
 */
export function clientRange(ipv4Prefix: number, ipv6Prefix: number): (address: string) => string {
  let last = "";
  let lastRange = "";
  return (address) => {
    // Most clients are IPv4, counted per address by default: no parsing.
    if (ipv4Prefix === 32 && !address.includes(":")) return address;
    if (ipv6Prefix === 128 && address.includes(":")) return address;
    if (address === last) return lastRange;
    const ip = parseIpAddress(address);
    let range = address;
    if (ip) {
      const length = ip.family === 4 ? 96 + ipv4Prefix : ipv6Prefix;
      const mask = ALL ^ ((1n << BigInt(128 - length)) - 1n);
      range = `${formatIp(ip.value & mask)}/${ip.family === 4 ? ipv4Prefix : ipv6Prefix}`;
    }
    last = address;
    lastRange = range;
    return range;
  };
}

/**
 * The counting unit the configuration asks for (smtpd_client_ipv4_prefix_length,
 * smtpd_client_ipv6_prefix_length): the one the connection limiter and the
 * rate limits both use.
 * @param config the configuration
 * @returns {@linkcode clientRange} for its two prefix lengths
 */
export function configuredClientRange(
  config: Pick<Config, "smtpd_client_ipv4_prefix_length" | "smtpd_client_ipv6_prefix_length">,
): (address: string) => string {
  return clientRange(
    config.smtpd_client_ipv4_prefix_length,
    config.smtpd_client_ipv6_prefix_length,
  );
}
