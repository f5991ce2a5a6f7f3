/**
 * The one IP address parser of the program: IPv4 dotted quads and IPv6
 * text (RFC 4291 §2.2), held as 128-bit values with IPv4 mapped into
 * ::ffff:0:0/96, and printed back in one canonical form (RFC 5952).
 *
 * Ambiguous forms are syntax errors: an IPv4 part with a leading zero
 * ("010") is octal to the C library's inet_aton and so to Postfix, and
 * decimal to a naive parser, so one literal would name two hosts. Only the
 * four-part dotted decimal form is IPv4 (no "127.1", no hex, no octal).
 *
 * @module
 */

/** An address: its 128-bit value (IPv4 mapped) and the family it was written in. */
export interface IpAddress {
  readonly value: bigint;
  /** 4 for dotted-quad text, 6 for IPv6 text (also ::ffff:a.b.c.d). */
  readonly family: 4 | 6;
}

/** The prefix of IPv4-mapped IPv6 addresses. */
export const V4_MAPPED = 0xffffn << 32n;

const V4_PART = /^(0|[1-9][0-9]{0,2})$/;
const V6_GROUP = /^[0-9A-Fa-f]{1,4}$/;

/**
 * Parses a dotted-quad IPv4 address: four decimal parts 0-255, no leading zeros.
 * @param text the address, nothing around it
 * @returns the 32-bit value, or undefined when the syntax is bad
 */
export function parseIpv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!V4_PART.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

/**
 * Parses IPv6 text (with "::" and an optional dotted-quad tail; no zone index).
 * @param text the address, nothing around it
 * @returns the 128-bit value, or undefined when the syntax is bad
 */
export function parseIpv6(text: string): bigint | undefined {
  if (text.length < 2 || text.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(text)) return undefined;
  let body = text;
  let tail4: bigint | undefined;
  if (text.includes(".")) {
    const lastColon = text.lastIndexOf(":");
    if (lastColon < 0) return undefined;
    tail4 = parseIpv4(text.slice(lastColon + 1));
    if (tail4 === undefined) return undefined;
    body = `${text.slice(0, lastColon + 1)}0:0`;
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
    if (!V6_GROUP.test(g)) return undefined;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  if (tail4 !== undefined) v = (v & ~0xffffffffn) | tail4;
  return v;
}

/**
 * Parses a bare address, IPv4 or IPv6, with nothing around it (no brackets, no spaces).
 * @param text the address
 * @returns the address, or undefined when the syntax is bad or ambiguous
 */
export function parseIpAddress(text: string): IpAddress | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return { value: V4_MAPPED | v4, family: 4 };
  const v6 = parseIpv6(text);
  return v6 === undefined ? undefined : { value: v6, family: 6 };
}

/**
 * Parses an address as configuration and tables write it: bare, in brackets
 * (`[192.0.2.1]`, `[::1]`) or as an address literal (`[IPv6:2001:db8::1]`).
 * @param text the address (surrounding white space is ignored)
 * @returns the 128-bit value (IPv4 mapped), or undefined
 */
export function parseIp(text: string): bigint | undefined {
  let s = text.trim();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  if (/^ipv6:/i.test(s)) {
    // An IPv6 address literal holds IPv6 text only (RFC 5321 §4.1.3).
    const v6 = parseIpv6(s.slice(5));
    return v6 === undefined || parseIpv4(s.slice(5)) !== undefined ? undefined : v6;
  }
  return parseIpAddress(s)?.value;
}

/**
 * Prints a 128-bit value: IPv4-mapped values as a dotted quad, others as
 * RFC 5952 IPv6 text (lower case, the longest run of two or more zero groups as "::").
 * @param value the address
 * @returns the canonical text
 */
export function formatIp(value: bigint): string {
  if (value >> 32n === 0xffffn) {
    const n = Number(value & 0xffffffffn);
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

/**
 * Validates a bare address and returns its canonical text (IPv4-mapped IPv6 as a dotted quad).
 * @param text the address, nothing around it
 * @returns the canonical text, or undefined when the syntax is bad or ambiguous
 */
export function canonicalIp(text: string): string | undefined {
  const ip = parseIpAddress(text);
  return ip === undefined ? undefined : formatIp(ip.value);
}
