/**
 * What the restriction lists may look at: facts of the session so far.
 *
 * @module
 */

import type { Address } from "../protocol/address.ts";

/** A stage at which restrictions run. */
export type PolicyStage = "client" | "helo" | "sender" | "recipient" | "vrfy" | "etrn";

/** The facts a stage's restrictions see. */
export interface PolicyContext {
  /** Client IP address text, e.g. "192.0.2.1". */
  readonly clientAddress: string;
  /** Client host name, or "unknown". */
  readonly clientName: string;
  /** True for stand-alone local submissions (no network peer). */
  readonly local: boolean;
  readonly helo: string | undefined;
  readonly sender: Address | undefined;
  readonly recipient: Address | undefined;
  readonly etrnDomain?: string;
}
