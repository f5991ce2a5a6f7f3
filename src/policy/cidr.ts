/**
 * IPv4 and IPv6 addresses and networks (`127.0.0.0/8`, `[::1]/128`,
 * `192.0.2.1`), matched as 128-bit values (IPv4 as ::ffff:a.b.c.d).
 *
 * Addresses are parsed by the program's one IP parser, `protocol/ip.ts`.
 *
 * @module
 */

import { formatIp, parseIp, parseIpAddress } from "../protocol/ip.ts";

/** A network: prefix bits of a 128-bit address. */
export interface Network {
  readonly base: bigint;
  readonly bits: number;
  readonly text: string;
  /** IPv4 networks match only IPv4 clients, IPv6 networks only IPv6 ones (as in Postfix). */
  readonly family: 4 | 6;
}

export { parseIp };

/**
 * Parses a network: "a.b.c.d/n", "[v6]/n", "v6/n" or a single address.
 * @param text the network
 * @returns the network, or undefined when malformed
 */
export function parseNetwork(text: string): Network | undefined {
  const slash = text.lastIndexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const inner = addrText.replace(/^\[(.*)\]$/, "$1");
  const ip = /^ipv6:/i.test(inner) ? undefined : parseIpAddress(inner);
  if (ip === undefined) return undefined;
  const addr = ip.value;
  const isV4 = ip.family === 4;
  const max = isV4 ? 32 : 128;
  const bits = slash < 0 ? max : Number(text.slice(slash + 1));
  if (
    !Number.isInteger(bits) || bits < 0 || bits > max ||
    (slash >= 0 && !/^\d+$/.test(text.slice(slash + 1)))
  ) {
    return undefined;
  }
  const total = isV4 ? bits + 96 : bits;
  const mask = total === 0 ? 0n : ((1n << BigInt(total)) - 1n) << BigInt(128 - total);
  return { base: addr & mask, bits: total, text, family: isV4 ? 4 : 6 };
}

/**
 * What is wrong with a network written with host bits set ("10.0.0.1/8"),
 * in Postfix's words: taken as written it would cover all of 10.0.0.0/8.
 * @param text the network as written
 * @param net what {@linkcode parseNetwork} made of it
 * @returns the complaint, or undefined when no host bit is set
 */
export function hostBitsProblem(text: string, net: Network): string | undefined {
  const slash = text.lastIndexOf("/");
  const host = slash < 0 ? undefined : parseNetwork(text.slice(0, slash));
  if (!host || host.base === net.base) return undefined;
  const bits = net.family === 4 ? net.bits - 96 : net.bits;
  const base = formatIp(net.base);
  return `non-null host address bits in "${text}", perhaps you should use "${
    text.startsWith("[") ? `[${base}]` : base
  }/${bits}" instead`;
}

/**
 * Whether an address lies in a network.
 * @param net the network
 * @param addr the address (from {@linkcode parseIp})
 * @returns true when inside
 */
export function inNetwork(net: Network, addr: bigint): boolean {
  const v4 = addr >> 32n === 0xffffn;
  if ((net.family === 4) !== v4) return false;
  if (net.bits === 0) return true;
  const shift = BigInt(128 - net.bits);
  return (addr >> shift) === (net.base >> shift);
}
