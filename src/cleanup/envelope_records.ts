/**
 * What Postfix's cleanup derives from an envelope before it writes one:
 * the recipients without duplicates (same address, same DSN facts, as
 * cleanup_out_recipient's been_here key), each with the DSN records that
 * go before its R record, and the SMTPUTF8 `sendopts` bits of the size
 * record (Postfix's sendopts.h: requested, header, sender), and the named
 * attributes of the envelope.
 *
 * @module
 */

import { encodeWireText } from "../io/wire_text.ts";
import { foldCase } from "../policy/fold_case.ts";
import type { QueueRecipient } from "../queue/mod.ts";

/** DSN NOTIFY=NEVER, as Postfix's notify_flags attribute writes it. */
const NOTIFY_NEVER = 1;

/** SMTPUTF8 was given on MAIL FROM. */
export const SMTPUTF8_REQUESTED = 1;
/** A header holds a non-ASCII byte. */
export const SMTPUTF8_HEADER = 2;
/** The envelope sender is not ASCII. */
export const SMTPUTF8_SENDER = 4;

/** A recipient's DSN facts as the session keeps them. */
export interface RecipientDsnFacts {
  readonly notify?: number;
  readonly orcpt: string;
  /** The address as sent, when it differs from the queued one. */
  readonly original?: string;
}

/**
 * The recipients to write: one given twice with the same DSN facts is
 * written once (Postfix's queue manager would deliver each R record), and
 * always_bcc joins the set unless it is there already, with NOTIFY=NEVER
 * and no ORCPT, as Postfix's cleanup adds it (cleanup_addr_bcc): a copy
 * that cannot be delivered is never reported to the sender, who would
 * otherwise learn the archive's address from the bounce.
 * Postfix's cleanup compares them without regard to case (its duplicate
 * filter folds the key), so <A@example.com> after <a@example.com>, each
 * without ORCPT, is dropped too: the first one given is kept.
 * @param recipients the addresses, in order
 * @param dsn each one's DSN facts, in the same order
 * @param bcc always_bcc, or ""
 * @param utf8 smtputf8_enable: Postfix's casefold() folds with ICU only
 *   then, else it lowercases ASCII letters only ("J\u00d6RG" stays apart from "j\u00f6rg")
 * @returns the recipients in order
 */
export function uniqueRecipients(
  recipients: readonly string[],
  dsn: readonly (RecipientDsnFacts | undefined)[] | undefined,
  bcc: string,
  utf8 = true,
): QueueRecipient[] {
  const fold = utf8 ? foldCase : asciiLower;
  const seen = new Map<string, QueueRecipient>();
  recipients.forEach((address, i) => {
    const d = dsn?.[i];
    const r: QueueRecipient = d
      ? {
        address,
        dsnOrcpt: d.orcpt,
        ...(d.notify ? { notify: d.notify } : {}),
        ...(d.original !== undefined ? { original: d.original } : {}),
      }
      : { address };
    // Folded as Postfix's duplicate filter folds its key (been_here with
    // BH_FLAG_FOLD: casefold(), ICU's full folding with smtputf8_enable).
    const key = fold(
      `${r.dsnOrcpt ?? ""}\n${r.notify ?? 0}\n${r.original ?? address}\n${address}`,
    );
    if (!seen.has(key)) seen.set(key, r);
  });
  if (bcc && ![...seen.values()].some((r) => r.address === bcc)) {
    seen.set(`\n${NOTIFY_NEVER}\n${bcc}`, { address: bcc, notify: NOTIFY_NEVER });
  }
  return [...seen.values()];
}

/** Lower case for ASCII letters only, as Postfix's lowercase(). */
function asciiLower(text: string): string {
  return text.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** The envelope facts that become named attributes. */
export interface AttributeFacts {
  readonly origin: {
    readonly local: boolean;
    readonly clientName: string;
    readonly clientAddress: string;
    readonly clientPort: string;
    readonly helo: string | undefined;
    readonly protocol: string;
    /** The AUTH login: sasl_method and sasl_username attributes. */
    readonly sasl?: { readonly method: string; readonly username: string };
    /**
     * AUTH= of MAIL FROM, as sent: the sasl_sender attribute, logged in or
     * not (Postfix keeps it either way).
     */
    readonly saslSender?: string | undefined;
  };
  readonly dsnEnvid?: string;
  readonly dsnRet?: number;
}

/**
 * The envelope's named attributes, in the order Postfix's smtpd sends them
 * to its cleanup: rewrite context, the DSN envelope facts, then (for a
 * network client) the client's log and actual attributes.
 * @param env the envelope
 * @returns name/value pairs
 */
export function envelopeAttributes(env: AttributeFacts): [string, string][] {
  const attrs: [string, string][] = [["rewrite_context", env.origin.local ? "local" : "remote"]];
  if (env.dsnEnvid !== undefined) attrs.push(["envelope_id", env.dsnEnvid]);
  if (env.dsnRet) attrs.push(["ret_flags", String(env.dsnRet)]);
  if (!env.origin.local) {
    const o = env.origin;
    attrs.push(
      ["log_client_name", o.clientName],
      ["log_client_address", o.clientAddress],
      ["log_client_port", o.clientPort],
      ["log_message_origin", `${o.clientName}[${o.clientAddress}]`],
      ["log_helo_name", o.helo ?? ""],
      ["log_protocol_name", o.protocol],
      ["client_name", o.clientName],
      ["reverse_client_name", o.clientName],
      ["client_address", o.clientAddress],
      ["client_port", o.clientPort],
      ["helo_name", o.helo ?? ""],
      ["protocol_name", o.protocol],
    );
    // Postfix's smtpd passes the AUTH login on to cleanup as these attributes.
    if (o.sasl) {
      attrs.push(["sasl_method", o.sasl.method], ["sasl_username", o.sasl.username]);
    }
    if (o.saslSender !== undefined) attrs.push(["sasl_sender", o.saslSender]);
  }
  return attrs;
}

/**
 * The sendopts bits known from the envelope alone.
 * @param smtputf8 SMTPUTF8 on MAIL FROM
 * @param sender the envelope sender
 * @param enabled smtputf8_enable (Postfix derives the sender bit only then)
 * @returns the bits
 */
export function envelopeSendOpts(smtputf8: boolean, sender: string, enabled: boolean): number {
  return (smtputf8 ? SMTPUTF8_REQUESTED : 0) |
    (enabled && !isAscii(sender) ? SMTPUTF8_SENDER : 0);
}

/**
 * Whether text is all ASCII.
 * @param text the text
 * @returns true when every character is below 128
 */
export function isAscii(text: string): boolean {
  // deno-lint-ignore no-control-regex
  return /^[\x00-\x7f]*$/.test(text);
}

/**
 * The longest payload among the envelope records a queue file gets from
 * these facts (A name=value, S, O, R and each recipient's DSN records), in
 * bytes. Postfix's pickup reads a maildrop file with records of at most its
 * line_length_limit and throws away a file with a longer one.
 * @param sender the envelope sender
 * @param recipients the recipients as written
 * @param attributes the named attributes
 * @returns the length of the longest payload
 */
export function longestEnvelopeRecord(
  sender: string,
  recipients: readonly QueueRecipient[],
  attributes: readonly (readonly [string, string])[],
): number {
  let most = encodeWireText(sender).length;
  const see = (text: string) => {
    // A byte count is needed only when the text could be long enough to matter.
    if (text.length * 3 > most) most = Math.max(most, encodeWireText(text).length);
  };
  for (const [name, value] of attributes) see(`${name}=${value}`);
  for (const r of recipients) {
    see(r.address);
    if (r.original !== undefined) see(r.original);
    if (r.dsnOrcpt) see(`dsn_orig_rcpt=${r.dsnOrcpt}`);
  }
  return most;
}
