/**
 * SMTP AUTH building blocks (RFC 4954) with Dovecot as the authentication
 * server: the Dovecot auth protocol client, the SMTP-side exchange, the
 * mechanism filter, the settings, and the service the sessions use.
 *
 * @module
 */

export { DovecotAuthClient } from "./dovecot_client.ts";
export type { DovecotClientOptions } from "./dovecot_client.ts";
export type { SaslClientInfo, SaslMechanism } from "./dovecot_protocol.ts";
export {
  advertisedMechanisms,
  authEhloKeyword,
  filterMechanisms,
  parseSecurityOptions,
} from "./mechanisms.ts";
export type { SecurityOptions } from "./mechanisms.ts";
export { describeEndpoint, parseSaslPath } from "./sasl_path.ts";
export type { SaslEndpoint } from "./sasl_path.ts";
export type { SaslExchange, SaslServer, SaslStep } from "./sasl_server.ts";
export { saslSettings } from "./settings.ts";
export { sessionSasl } from "./session_sasl.ts";
export type { SessionSasl } from "./session_sasl.ts";
export type { SaslSettings } from "./settings.ts";
export { authCommandForLog, checkAuthAllowed, runAuthCommand } from "./smtp_auth.ts";
export type {
  AuthIo,
  AuthOptions,
  AuthOutcome,
  AuthSessionState,
  SecretLine,
} from "./smtp_auth.ts";
