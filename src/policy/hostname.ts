/**
 * Host name checks shared by restrictions: syntax (Postfix's
 * valid_hostname), fully-qualified names, address literals, our own
 * destinations (mydestination, relay_domains, our addresses) and
 * sender-specified routing.
 *
 * @module
 */

import type { Address } from "../protocol/address.ts";
import { parseIp } from "./cidr.ts";

/**
 * Whether text is an address literal "[1.2.3.4]" or "[IPv6:...]".
 * @param name the text
 * @returns true for a well-formed literal
 */
export function isAddressLiteral(name: string): boolean {
  return name.startsWith("[") && name.endsWith("]") && parseIp(name) !== undefined;
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
 * Whether a name is fully qualified: a valid host name with a dot, or an address literal.
 * @param name the candidate
 * @returns true when fully qualified
 */
export function isFqdn(name: string): boolean {
  return isAddressLiteral(name) || (isValidHostname(name) && name.replace(/\.$/, "").includes("."));
}

/**
 * Whether an address carries sender-specified routing: a source route, or
 * "%", "!" or "@" in the local part (quoted or not).
 * @param a the address
 * @returns true when routed
 */
export function hasRouting(a: Address): boolean {
  return a.route.length > 0 || /[%!@]/.test(a.local);
}

/** Our destinations, compiled from the configuration. */
export interface Destinations {
  /** mydestination names (lower case). */
  readonly local: ReadonlySet<string>;
  /** relay_domains (lower case; subdomains match). */
  readonly relay: readonly string[];
  /** Our IP addresses, for address literals. */
  readonly addresses: readonly bigint[];
}

/**
 * Normalizes a domain for comparisons: lower case, no trailing dot.
 * @param domain the domain
 * @returns the normal form
 */
export function normalizeDomain(domain: string): string {
  return domain.toLowerCase().replace(/\.$/, "");
}

/**
 * Whether a domain is delivered locally (mydestination or one of our address literals).
 * @param domain the recipient domain
 * @param d our destinations
 * @returns true when local
 */
export function isLocalDomain(domain: string, d: Destinations): boolean {
  const n = normalizeDomain(domain);
  if (n === "") return true;
  if (n.startsWith("[")) {
    const ip = parseIp(n);
    return ip !== undefined && d.addresses.includes(ip);
  }
  return d.local.has(n);
}

/**
 * Whether a domain is in relay_domains (a listed domain or a subdomain of one).
 * @param domain the recipient domain
 * @param d our destinations
 * @returns true when we relay to it
 */
export function isRelayDomain(domain: string, d: Destinations): boolean {
  const n = normalizeDomain(domain);
  return d.relay.some((r) => n === r || n.endsWith("." + r));
}
