/**
 * One mail transaction, from MAIL FROM to the end of DATA (or RSET). It is
 * separate from the session: RSET or a finished message drops it, while
 * session facts (peer, HELO, error count) stay.
 *
 * @module
 */

import type { Address } from "../protocol/address.ts";

/** What MAIL FROM gives a transaction. */
export interface TransactionStart {
  readonly sender: Address;
  /** The sender in internal form ("" for the null sender). */
  readonly senderText: string;
  /** SIZE= from MAIL FROM. */
  readonly declaredSize: number | undefined;
  /** BODY= from MAIL FROM. */
  readonly body: "7BIT" | "8BITMIME" | undefined;
  /** AUTH= from MAIL FROM (RFC 4954 §5), as sent; undefined for none or "<>". */
  readonly authSender?: string;
  /** SMTPUTF8 on MAIL FROM (RFC 6531). */
  readonly smtputf8?: boolean;
  /** RET= as Postfix's bits (1 FULL, 2 HDRS), when given (RFC 3461). */
  readonly dsnRet?: number;
  /** ENVID=, decoded, when given (RFC 3461). */
  readonly dsnEnvid?: string;
}

/** A recipient's DSN facts (RFC 3461), as Postfix keeps them. */
export interface RecipientDsn {
  /** NOTIFY= bits, when given. */
  readonly notify?: number;
  /** "type;address": ORCPT= decoded, else "rfc822;" and the address as sent. */
  readonly orcpt: string;
  /** The address as sent, when rewriting changed what is queued (Postfix's O record). */
  readonly original?: string;
}

/** What access actions asked of the message (Postfix's saved_flags and prepend). */
export interface MessageActions {
  /** HOLD: the queue file goes to hold/. */
  hold: boolean;
  /** DISCARD: the message is accepted and not queued. */
  discard: boolean;
  /** PREPEND: headers above our Received:, in order. */
  readonly prepend: string[];
  /** FILTER: the content filter, `transport:destination` (the last one met). */
  filter: string | undefined;
  /** REDIRECT: the address that gets the message instead (the last one met). */
  redirect: string | undefined;
  /** BCC: more recipients, in order (each one met). */
  readonly bcc: string[];
}

/** @returns the actions of a transaction that has met none */
export function noActions(): MessageActions {
  return {
    hold: false,
    discard: false,
    prepend: [],
    filter: undefined,
    redirect: undefined,
    bcc: [],
  };
}

/** The state of one transaction. */
export interface Transaction extends TransactionStart {
  /** Accepted recipients in internal form (the session adds them). */
  readonly recipients: readonly string[];
  /** What access actions asked of the message so far (the session sets them). */
  readonly actions:
    & Readonly<MessageActions>
    & { readonly prepend: readonly string[]; readonly bcc: readonly string[] };
  /** Each recipient's DSN facts, in the same order (absent for none). */
  readonly recipientDsn?: readonly (RecipientDsn | undefined)[];
}
