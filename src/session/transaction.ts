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
}

/** The state of one transaction. */
export interface Transaction extends TransactionStart {
  /** Accepted recipients in internal form (the session adds them). */
  readonly recipients: readonly string[];
}
