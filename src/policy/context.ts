/**
 * What the restriction lists may look at: facts of the session so far.
 *
 * @module
 */

import type { Address } from "../protocol/address.ts";

/**
 * A restriction list stage: the five lists of the manual, VRFY, and
 * Postfix's DATA and end-of-data lists.
 */
export type PolicyStage =
  | "client"
  | "helo"
  | "sender"
  | "recipient"
  | "vrfy"
  | "etrn"
  | "data"
  | "eod";

/** How the client's name lookup went. */
export type ClientNameStatus = "ok" | "notFound" | "tempfail";

/** The facts a stage's restrictions see. */
export interface PolicyContext {
  /** Client IP address text, e.g. "192.0.2.1". */
  readonly clientAddress: string;
  /** Forward-confirmed client host name, or "unknown". */
  readonly clientName: string;
  /** The PTR name (not confirmed), or "unknown". */
  readonly reverseName: string;
  /** How the name lookups went: notFound/tempfail explain an "unknown" name. */
  readonly nameStatus: ClientNameStatus;
  readonly reverseStatus: ClientNameStatus;
  /** True for stand-alone local submissions (no network peer). */
  readonly local: boolean;
  readonly helo: string | undefined;
  readonly sender: Address | undefined;
  readonly recipient: Address | undefined;
  readonly etrnDomain?: string;
  /** The client sent commands ahead of time where that is not allowed. */
  readonly unauthPipelining?: boolean;
  /** Recipients accepted so far in the mail transaction (reject_multi_recipient_bounce, policy services). */
  readonly recipientCount?: number;
  /** The command being checked (a policy service's protocol_state, reject_multi_recipient_bounce). */
  readonly command?: string;
  /** "SMTP" or "ESMTP" (check_policy_service's protocol_name). */
  readonly protocolName?: string;
  /** The client's TCP port. */
  readonly clientPort?: string;
  /** The address and port the client connected to. */
  readonly server?: { readonly hostname: string; readonly port: number };
  /** SIZE= of MAIL FROM. */
  readonly size?: number;
  /** Names the mail transaction, the same for all its policy requests. */
  readonly instance?: string;
  /** The service is under stress (stress mode). */
  readonly stress?: boolean;
  /** The transaction is already held (HOLD once per message, as Postfix). */
  readonly held?: boolean;
  /** The queue ID, once the message has one (end of data). */
  readonly queueId?: string;
  /** The SASL login of the session (AUTH), when the client authenticated. */
  readonly sasl?: { readonly method: string; readonly username: string };
  /** AUTH= of MAIL FROM, as sent (logged in or not). */
  readonly saslSender?: string;
  /** What STARTTLS negotiated, when the session is encrypted. */
  readonly tls?: { readonly protocol: string; readonly cipher: string; readonly bits: number };
}
