/**
 * Host name and host address syntax, as Postfix judges what a client
 * sends in HELO and what the DNS returns: valid_hostname (letters, digits,
 * "-" and "_" in labels of at most 63 characters, at most 255 characters,
 * not all-numeric), valid_hostaddr (a bare IPv4 or IPv6 address) and
 * valid_mailhost_literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`). Addresses
 * are judged as Postfix judges them: IPv6 text by the program's one IP
 * parser (`ip.ts`), IPv4 as valid_ipv4_hostaddr (leading zeros allowed, a
 * first part of 0 only in 0.0.0.0), and an address literal holds IPv6
 * text only after the `IPv6:` tag.
 *
 * @module
 */

import { parseIpv4, parseIpv6 } from "./ip.ts";

/**
 * Drops one trailing dot ("foo." → "foo", but "foo.." stays), as Postfix
 * does before it checks a name.
 * @param name the name
 * @returns the name without its trailing dot
 */
export function withoutTrailingDot(name: string): string {
  return name.length > 1 && name.endsWith(".") && !name.endsWith("..") ? name.slice(0, -1) : name;
}

/**
 * Postfix's valid_hostname: letters, digits, "-" and "_" in labels of at
 * most 63 characters, no empty label, at most 255 characters, and not
 * all-numeric (a bare IP address is not a host name).
 * @param name the candidate (a trailing dot is allowed)
 * @returns true when valid
 */
export function isValidHostname(name: string): boolean {
  const n = name.replace(/\.$/, "");
  if (n.length === 0 || n.length > 255) return false;
  const labels = n.split(".");
  for (const l of labels) {
    if (l.length === 0 || l.length > 63) return false;
    if (!/^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?$/.test(l)) return false;
  }
  return !/^[0-9.]+$/.test(n);
}

/**
 * A dotted-quad IPv4 address as Postfix's valid_ipv4_hostaddr accepts one
 * from a client: four parts of decimal digits, each at most 255, and a
 * first part of 0 only in 0.0.0.0. Leading zeros are allowed here, as
 * there (`[01.2.3.4]` is a valid literal); this is syntax only: the one IP
 * parser (`ip.ts`) still refuses such text, so a literal with a leading
 * zero matches no address, network or table of ours (it is never read as
 * octal, nor as decimal).
 * @param text the address, nothing around it
 * @returns true when valid
 */
export function isValidIpv4HostAddress(text: string): boolean {
  const parts = text.split(".");
  if (parts.length !== 4) return false;
  for (const p of parts) {
    if (!/^[0-9]+$/.test(p) || Number(p) > 255) return false;
  }
  return Number(parts[0]) !== 0 || /^[0.]+$/.test(text);
}

/**
 * Postfix's valid_hostaddr: a bare IPv4 address, or IPv6 text when it has a ":".
 * @param text the candidate
 * @returns true when valid
 */
export function isValidHostAddress(text: string): boolean {
  if (!text.includes(":")) return isValidIpv4HostAddress(text);
  return parseIpv6(text) !== undefined && parseIpv4(text) === undefined;
}

/**
 * Postfix's valid_mailhost_addr: the inside of an address literal, an IPv4
 * address, or IPv6 text after the `IPv6:` tag (any case).
 * @param text the text between the brackets
 * @returns true when valid
 */
export function isValidMailhostAddress(text: string): boolean {
  if (/^ipv6:/i.test(text)) {
    const v6 = text.slice(5);
    return v6.includes(":") && parseIpv6(v6) !== undefined;
  }
  return isValidIpv4HostAddress(text);
}

/**
 * Postfix's valid_mailhost_literal: "[" address "]" as
 * {@linkcode isValidMailhostAddress} wants it (`[::1]` without the tag is not one).
 * @param text the candidate
 * @returns true when valid
 */
export function isValidAddressLiteral(text: string): boolean {
  return text.length > 2 && text.startsWith("[") && text.endsWith("]") &&
    isValidMailhostAddress(text.slice(1, -1));
}

/**
 * Whether text is nothing but digits, dots and colons (what Postfix's
 * permit_naked_ip_address looks at; such a name is an address or nothing).
 * @param text the candidate
 * @returns true for a "naked" numeric form
 */
export function isNumericForm(text: string): boolean {
  return /^[0-9.:]+$/.test(text);
}
