/**
 * The client's host name as Postfix determines it: the PTR record of the
 * address (reverse name), then forward confirmation (the name's A/AAAA
 * records must include the address). Unconfirmed or missing names are
 * "unknown"; a temporary DNS failure is remembered as such, so
 * reject_unknown_client_hostname answers 450, not 5xx. As in Postfix, a
 * PTR answer that is not a valid host name (characters other than letters,
 * digits, "-" and "_", a label over 63 or a name over 255 characters, an
 * all-numeric name) is no name at all: "unknown" for both names, with a
 * warning, so it never reaches the logs, Received: or the restrictions.
 * A name that is not confirmed is logged as Postfix logs it ("hostname N
 * does not resolve to address A", with getaddrinfo()'s reason when the
 * lookup failed), the line fail2ban and the like look for.
 *
 * @module
 */

import { parseIp } from "./cidr.ts";
import type { ClientNameStatus } from "./context.ts";
import { isValidHostname } from "../protocol/hostname.ts";
import { type DnsResolver, reverseName } from "./resolver.ts";

/** The outcome of the client name lookups. */
export interface ClientName {
  readonly name: string;
  readonly nameStatus: ClientNameStatus;
  readonly reverseName: string;
  readonly reverseStatus: ClientNameStatus;
}

/**
 * Looks up and confirms the client's name.
 * @param address the client IP address
 * @param dns the resolver
 * @param warn where a malformed PTR answer is reported
 * @returns the verified and reverse names with their statuses
 */
export async function lookupClientName(
  address: string,
  dns: DnsResolver,
  warn: (text: string) => void = () => {},
): Promise<ClientName> {
  const unknown = (s: ClientNameStatus): ClientName => ({
    name: "unknown",
    nameStatus: s,
    reverseName: "unknown",
    reverseStatus: s,
  });
  const q = reverseName(address);
  if (!q) return unknown("notFound");
  // Postfix takes the first name getnameinfo() gives: no record count
  // limit, and no warning for a zone that serves many PTR records.
  const ptr = await dns.query(q, "PTR", true, true);
  if (ptr.kind !== "ok") return unknown(ptr.kind === "tempfail" ? "tempfail" : "notFound");
  const rev = (ptr.records[0] as string).replace(/\.$/, "").toLowerCase();
  if (!isValidHostname(rev)) {
    // The logger replaces what is unsafe; a long name is cut, as Postfix does.
    const shown = rev.length > 100 ? `${rev.slice(0, 100)}...` : rev;
    warn(`malformed hostname in the PTR record of ${address}: ${shown}: using "unknown"`);
    return unknown("notFound");
  }
  const want = parseIp(address);
  // Postfix confirms with getaddrinfo(): every address, not dns_lookup()'s first 100.
  const fwd = await dns.query(rev, address.includes(":") ? "AAAA" : "A", true, true);
  if (fwd.kind === "ok" && fwd.records.some((r) => parseIp(r) === want)) {
    return { name: rev, nameStatus: "ok", reverseName: rev, reverseStatus: "ok" };
  }
  const temp = fwd.kind === "tempfail";
  // Postfix's warnings, with getaddrinfo()'s words for a failed lookup.
  const why = fwd.kind === "ok"
    ? ""
    : temp
    ? ": Temporary failure in name resolution"
    : ": Name or service not known";
  warn(`hostname ${rev} does not resolve to address ${address}${why}`);
  return {
    name: "unknown",
    nameStatus: temp ? "tempfail" : "notFound",
    reverseName: rev,
    reverseStatus: "ok",
  };
}
