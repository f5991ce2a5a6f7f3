/**
 * The ETRN flush trigger seam (RFC 1985): the session asks a
 * {@linkcode FlushTrigger} to start delivery of deferred mail. The real
 * trigger (writing to the queue manager's public/qmgr) comes with ETRN
 * support; until then the session does not offer ETRN.
 *
 * @module
 */

/** The outcome of a flush request. */
export type FlushOutcome = "started" | "unavailable";

/** Asks the queue manager to deliver deferred mail. */
export interface FlushTrigger {
  /**
   * Requests a flush.
   * @param domain the ETRN argument (the manual's BUGS: all deferred mail is flushed)
   * @returns whether the request was delivered
   */
  request(domain: string): Promise<FlushOutcome>;
}
