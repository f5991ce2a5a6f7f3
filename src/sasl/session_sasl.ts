/**
 * What a session needs for AUTH, built once per process (or listener
 * thread) by the runtime: the resolved settings, the authentication server
 * (Dovecot, shared by the sessions), and the mechanisms a session may
 * offer: the server's list filtered by smtpd_sasl_security_options, or by
 * smtpd_sasl_tls_security_options once the session runs over TLS.
 *
 * @module
 */

import { filterMechanisms } from "./mechanisms.ts";
import type { SaslServer } from "./sasl_server.ts";
import type { SaslSettings } from "./settings.ts";

/** AUTH as the sessions of a process see it. */
export interface SessionSasl {
  readonly settings: SaslSettings;
  readonly server: SaslServer;
  /**
   * The mechanisms a session may use now.
   * @param tls whether the session runs over TLS
   * @returns the names, in the server's order, or undefined when it cannot be reached
   */
  mechanisms(tls: boolean): Promise<string[] | undefined>;
  /**
   * smtpd_sasl_exceptions_networks: clients to which EHLO does not offer AUTH.
   * @param name the client's name
   * @param address the client's address
   * @returns true when AUTH is not offered to this client
   */
  hiddenFrom(name: string, address: string): Promise<boolean>;
}

/**
 * Builds the sessions' view of AUTH.
 * @param settings the resolved settings
 * @param server the authentication server
 * @param exceptions smtpd_sasl_exceptions_networks, compiled
 * @returns the service
 */
export function sessionSasl(
  settings: SaslSettings,
  server: SaslServer,
  exceptions: (name: string, address: string) => Promise<boolean>,
): SessionSasl {
  return {
    settings,
    server,
    mechanisms: async (tls) => {
      const offered = await server.mechanisms();
      if (offered === undefined) return undefined;
      return filterMechanisms(
        offered,
        tls ? settings.tlsSecurityOptions : settings.securityOptions,
      );
    },
    hiddenFrom: exceptions,
  };
}
