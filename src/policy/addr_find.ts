/**
 * Address extensions in table lookups (`recipient_delimiter`), as
 * Postfix's mail_addr_find and split_addr: with a delimiter set (one or
 * more characters, any of which starts an extension), `user+ext@domain`
 * is also looked up as `user@domain` when the full address is not found.
 * The local part is cut at the first delimiter character; it is not cut
 * when it would leave nothing (`+ext`), when it is `postmaster`,
 * `MAILER-DAEMON` or `double-bounce` (any case), or, with `-` among the
 * delimiters, when it is `owner-...` or `...-request` (Postfix's default
 * owner_request_special = yes).
 *
 * Each address key is looked up with its local part quoted first when it
 * needs quoting (`"a..b"@domain`, then `a..b@domain`), as Postfix's
 * legacy query form (external first).
 *
 * The address is the one trivial-rewrite resolved (./resolve_address.ts).
 *
 * The orders of keys, as Postfix's lookup strategies:
 *
 * - recipient validation tables (mail_addr_find's default strategy):
 *   `user+ext@domain`, `user@domain`, then for a local domain `user+ext`
 *   and `user`, then `@domain`;
 * - access tables (check_mail_access): `user+ext@domain`, `user@domain`,
 *   the domain and its parents, then `user+ext@` and `user@`.
 *
 * @module
 */

import { externalLocal } from "../protocol/address.ts";

/** Local parts that are never cut (Postfix's split_addr). */
const NEVER_SPLIT = new Set(["postmaster", "mailer-daemon", "double-bounce"]);

/**
 * The local part without its extension, as Postfix's split_addr.
 * @param local the local part (as the client wrote it)
 * @param delimiter recipient_delimiter: the characters that start an extension ("" for none)
 * @returns the local part before the extension, or undefined when it is not cut
 */
export function stripExtension(local: string, delimiter: string): string | undefined {
  if (delimiter === "") return undefined;
  const lower = local.toLowerCase();
  if (NEVER_SPLIT.has(lower)) return undefined;
  if (delimiter.includes("-") && (lower.startsWith("owner-") || /.-request$/.test(lower))) {
    return undefined;
  }
  let cut = -1;
  for (const ch of delimiter) {
    const at = local.indexOf(ch);
    if (at >= 0 && (cut < 0 || at < cut)) cut = at;
  }
  // Not cut when no delimiter is there, or when nothing would be left.
  return cut > 0 ? local.slice(0, cut) : undefined;
}

/** How a recipient validation table is searched. */
export interface RecipientKeyOptions {
  /** recipient_delimiter ("" for none). */
  readonly delimiter: string;
  /** The domain is ours (mydestination): the bare local part is looked up too. */
  readonly localDomain: boolean;
}

/**
 * The keys of a recipient validation lookup (Postfix's mail_addr_find
 * default strategy), in the case the client wrote them (tables fold case).
 * @param local the local part
 * @param domain the normalized domain ("" when unqualified)
 * @param options the delimiter, and whether the domain is local
 * @returns the keys in lookup order
 */
export function recipientKeys(
  local: string,
  domain: string,
  options: RecipientKeyOptions,
): string[] {
  const bare = stripExtension(local, options.delimiter);
  const locals = bare === undefined ? [local] : [local, bare];
  if (domain === "") return locals.flatMap((l) => bothForms(l, ""));
  return [
    ...locals.flatMap((l) => bothForms(l, `@${domain}`)),
    ...(options.localDomain ? locals.flatMap((l) => bothForms(l, "")) : []),
    `@${domain}`,
  ];
}

/**
 * One address key in Postfix's "external first" query form: with the
 * local part quoted (`"a..b"@domain`), then, when that differs, as it is
 * (`a..b@domain`), as mail_addr_find's find_addr() looks it up.
 * @param local the local part, unquoted
 * @param rest what follows it ("@domain", "@" or "")
 * @returns one or two keys
 */
export function bothForms(local: string, rest: string): string[] {
  const quoted = externalLocal(local);
  return quoted === local ? [local + rest] : [quoted + rest, local + rest];
}
