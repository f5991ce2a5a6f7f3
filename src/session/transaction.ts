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
}

/** What access actions asked of the message (Postfix's saved_flags and prepend). */
export interface MessageActions {
  /** HOLD: the queue file goes to hold/. */
  hold: boolean;
  /** DISCARD: the message is accepted and not queued. */
  discard: boolean;
  /** PREPEND: headers above our Received:, in order. */
  readonly prepend: string[];
}

/** The state of one transaction. */
export interface Transaction extends TransactionStart {
  /** Accepted recipients in internal form (the session adds them). */
  readonly recipients: readonly string[];
  /** What access actions asked of the message so far (the session sets them). */
  readonly actions: Readonly<MessageActions> & { readonly prepend: readonly string[] };
}
