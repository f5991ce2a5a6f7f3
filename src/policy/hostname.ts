/**
 * Host name checks shared by restrictions (the syntax itself is
 * protocol/hostname.ts): fully-qualified names, address literals and
 * sender-specified routing. Our destinations are destinations.ts.
 *
 * @module
 */

import { domainToASCII } from "node:url";
import type { Address } from "../protocol/address.ts";
import { isValidHostname, isValidIpv4HostAddress } from "../protocol/hostname.ts";
import { parseIp } from "./cidr.ts";
import { foldCase } from "./fold_case.ts";

// Kept for callers outside policy/ (session/commands/etrn.ts).
export { isValidHostname };

/**
 * A domain's ASCII form: U-labels (an SMTPUTF8 address) become A-labels
 * by IDNA (UTS #46), as Postfix's midna_domain_to_ascii does before a DNS
 * lookup or a host name check; an ASCII name is returned as it is.
 * @param domain the domain
 * @returns the ASCII form, or "" when the U-labels are not valid IDNA
 */
export function asciiDomain(domain: string): string {
  // deno-lint-ignore no-control-regex
  return /^[\x00-\x7f]*$/.test(domain) ? domain : domainToASCII(domain);
}

/**
 * Whether text is an address literal "[1.2.3.4]" or "[IPv6:...]"
 * (`[01.2.3.4]` too, as Postfix takes it).
 * @param name the text
 * @returns true for a well-formed literal
 */
export function isAddressLiteral(name: string): boolean {
  return name.startsWith("[") && name.endsWith("]") &&
    (/^\[ipv6:/i.test(name)
      ? parseIp(name) !== undefined
      : isValidIpv4HostAddress(name.slice(1, -1)));
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
 * Whether an address carries sender-specified routing: "%", "!" or "@" in
 * the local part (quoted or not), as trivial-rewrite's RESOLVE_FLAG_ROUTED.
 * A source route (`@a,@b:`) is not: Postfix's smtpd drops it before the
 * address is resolved, and so do we before queueing the address.
 * @param a the address
 * @returns true when routed
 */
export function hasRouting(a: Pick<Address, "local">): boolean {
  return /[%!@]/.test(a.local);
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
 * A domain for comparing with a domain list's entries: no trailing dot,
 * case folded as Postfix's match_list folds both sides with smtputf8_enable
 * ({@linkcode foldCase}), so that "STRASSE", "straße" and "ſtrasse" are the
 * same name for mydestination or relay_domains, and "ıstanbul" is not
 * "istanbul".
 * @param domain the domain
 * @returns the folded form (a comparison key, not a name to show or send)
 */
export function foldDomain(domain: string): string {
  return foldCase(normalizeDomain(domain));
}
