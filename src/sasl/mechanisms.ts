/**
 * Which of the server's mechanisms a session may offer, from
 * `smtpd_sasl_security_options` (and `smtpd_sasl_tls_security_options`
 * after STARTTLS), as Postfix's Dovecot plug-in decides: a mechanism is kept
 * when it has every positive property asked for (mutual_auth,
 * forward_secrecy) and none of the negative ones (noplaintext: PLAIN and
 * LOGIN; noactive; nodictionary; noanonymous). Mechanisms Dovecot marks
 * "private" are never offered.
 *
 * @module
 */

import type { SaslMechanism } from "./dovecot_protocol.ts";

/** The parsed security options: Dovecot flags a mechanism must lack / must have. */
export interface SecurityOptions {
  readonly mustLack: ReadonlySet<string>;
  readonly mustHave: ReadonlySet<string>;
}

const NEGATIVE: Record<string, string> = {
  noplaintext: "plaintext",
  noactive: "active",
  nodictionary: "dictionary",
  noanonymous: "anonymous",
};
const POSITIVE: Record<string, string> = {
  "forward_secrecy": "forward-secrecy",
  "mutual_auth": "mutual-auth",
};

/**
 * Parses a security options list (case-insensitive). An empty list, or
 * only "noanonymous" and friends, is fine; an unknown word is an error.
 * @param items the list items
 * @returns the options, or the first unknown word
 */
export function parseSecurityOptions(
  items: readonly string[],
): { ok: true; options: SecurityOptions } | { ok: false; unknown: string } {
  const mustLack = new Set<string>();
  const mustHave = new Set<string>();
  for (const raw of items) {
    const item = raw.toLowerCase();
    const neg = Object.hasOwn(NEGATIVE, item) ? NEGATIVE[item] : undefined;
    const pos = Object.hasOwn(POSITIVE, item) ? POSITIVE[item] : undefined;
    if (neg) mustLack.add(neg);
    else if (pos) mustHave.add(pos);
    else return { ok: false, unknown: raw };
  }
  return { ok: true, options: { mustLack, mustHave } };
}

/**
 * The mechanisms a session may offer, in the server's order.
 * @param mechanisms what the server offers
 * @param options the security options in force
 * @returns the mechanism names to offer
 */
export function filterMechanisms(
  mechanisms: readonly SaslMechanism[],
  options: SecurityOptions,
): string[] {
  return mechanisms
    .filter((m) => !m.flags.has("private"))
    .filter((m) => [...options.mustLack].every((f) => !m.flags.has(f)))
    .filter((m) => [...options.mustHave].every((f) => m.flags.has(f)))
    .map((m) => m.name);
}

/**
 * The mechanisms EHLO names, as Postfix's default smtpd_sasl_mechanism_filter
 * ("!external, static:rest") leaves them: all but EXTERNAL, which Dovecot
 * offers when it is set up for client certificates (for IMAP) and which an
 * SMTP session cannot use. Like Postfix, only the announcement drops it: an
 * AUTH EXTERNAL sent anyway still goes to the server.
 * @param mechanisms the mechanism names a session may use
 * @returns the names to announce
 */
export function advertisedMechanisms(mechanisms: readonly string[]): string[] {
  return mechanisms.filter((m) => m.toUpperCase() !== "EXTERNAL");
}

/**
 * The EHLO keyword line for AUTH ("AUTH PLAIN LOGIN"), or undefined when
 * nothing may be offered (then the session says nothing about AUTH).
 * @param mechanisms the filtered mechanism names
 * @returns the keyword line, or undefined
 */
export function authEhloKeyword(mechanisms: readonly string[]): string | undefined {
  const shown = advertisedMechanisms(mechanisms);
  return shown.length === 0 ? undefined : `AUTH ${shown.join(" ")}`;
}
