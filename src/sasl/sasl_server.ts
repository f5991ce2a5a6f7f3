/**
 * What the SMTP side of AUTH needs from an authentication server, so that
 * `smtp_auth.ts` runs the same against Dovecot ({@linkcode DovecotAuthClient})
 * and against a fake in unit tests. Responses and challenges travel in
 * base64, as on the SMTP wire; nothing here decodes a credential.
 *
 * @module
 */

import type { SaslClientInfo, SaslMechanism } from "./dovecot_protocol.ts";

/** The server's answer to one step of an exchange. */
export type SaslStep =
  | { kind: "challenge"; challenge: string }
  | { kind: "success"; username: string }
  | { kind: "failure"; reason: string; temporary: boolean; username?: string };

/** One authentication attempt, from the AUTH command to its outcome. */
export interface SaslExchange {
  /**
   * Sends the request, with the initial response if the client gave one.
   * @param initialResponse base64 ("" for the empty response), or undefined
   */
  begin(initialResponse: string | undefined): Promise<SaslStep>;
  /**
   * Sends the client's next response to a challenge.
   * @param response base64, possibly empty
   */
  respond(response: string): Promise<SaslStep>;
  /** The client gave up or went away: the server may forget the request. */
  abandon(): void;
}

/** An authentication server. */
export interface SaslServer {
  /** The mechanisms it offers, or undefined when it cannot be reached. */
  mechanisms(): Promise<readonly SaslMechanism[] | undefined>;
  /**
   * Starts an exchange.
   * @param mechanism the mechanism the client asked for
   * @param info facts about the SMTP connection
   */
  start(mechanism: string, info: SaslClientInfo): SaslExchange;
}
