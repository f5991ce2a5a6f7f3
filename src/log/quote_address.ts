/**
 * Envelope addresses as log lines show them: the local part quoted when
 * it is not an RFC 822 dot-string, as Postfix's quote_822_local() does,
 * so that `MAIL FROM:<"a> to=<x"@example.com>` is logged as
 * `from=<"a> to=<x"@example.com>` and cannot pass for a to= field.
 * Eight-bit characters are left as they are (the log sanitizer deals with
 * the unsafe ones).
 *
 * @module
 */

import { externalLocal } from "../protocol/address.ts";

/**
 * Quotes the local part of an address in internal form when it needs it.
 * A source route (`@a,@b:`) is kept in front as it is; the domain is the
 * text after the last "@".
 * @param address the address, unquoted ("local@domain", "local" or "")
 * @returns the address with its local part quoted where needed
 */
export function quoteAddress(address: string): string {
  if (address === "") return "";
  let route = "";
  let rest = address;
  const colon = address.indexOf(":");
  if (address.startsWith("@") && colon > 0) {
    route = address.slice(0, colon + 1);
    rest = address.slice(colon + 1);
  }
  const at = rest.lastIndexOf("@");
  const local = at < 0 ? rest : rest.slice(0, at);
  const domain = at < 0 ? "" : rest.slice(at);
  return `${route}${externalLocal(local)}${domain}`;
}
