/**
 * IPv4 and IPv6 addresses and networks (`127.0.0.0/8`, `[::1]/128`,
 * `192.0.2.1`), matched as 128-bit values (IPv4 as ::ffff:a.b.c.d).
 *
 * @module
 */

/** A network: prefix bits of a 128-bit address. */
export interface Network {
  readonly base: bigint;
  readonly bits: number;
  readonly text: string;
  /** IPv4 networks match only IPv4 clients, IPv6 networks only IPv6 ones (as in Postfix). */
  readonly family: 4 | 6;
}

const V4_MAPPED = 0xffffn << 32n;

/**
 * Parses an IPv4 or IPv6 address (brackets and an "IPv6:" prefix allowed).
 * @param text the address
 * @returns the address as a 128-bit value (IPv4 mapped), or undefined
 */
export function parseIp(text: string): bigint | undefined {
  let s = text.trim();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  if (/^ipv6:/i.test(s)) s = s.slice(5);
  const v4 = parseIpv4(s);
  if (v4 !== undefined) return V4_MAPPED | v4;
  return parseIpv6(s);
}

function parseIpv4(s: string): bigint | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  let v = 0n;
  for (let i = 1; i <= 4; i++) {
    const n = Number(m[i]);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseIpv6(s: string): bigint | undefined {
  if (!/^[0-9A-Fa-f:.]+$/.test(s) || s.length < 2) return undefined;
  let tail4: bigint | undefined;
  let body = s;
  const lastColon = s.lastIndexOf(":");
  if (s.includes(".")) {
    tail4 = parseIpv4(s.slice(lastColon + 1));
    if (tail4 === undefined) return undefined;
    body = s.slice(0, lastColon + 1) + "0:0";
  }
  const halves = body.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  let v = 0n;
  for (const g of groups) {
    if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return undefined;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  if (tail4 !== undefined) v = (v & ~0xffffffffn) | tail4;
  return v;
}

/**
 * Parses a network: "a.b.c.d/n", "[v6]/n", "v6/n" or a single address.
 * @param text the network
 * @returns the network, or undefined when malformed
 */
export function parseNetwork(text: string): Network | undefined {
  const slash = text.lastIndexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const addr = parseIp(addrText);
  if (addr === undefined) return undefined;
  const isV4 = (addr >> 32n) === 0xffffn &&
    parseIpv4(addrText.replace(/^\[|\]$/g, "")) !== undefined;
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
