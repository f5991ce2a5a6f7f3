/**
 * The SASL parameters, checked and resolved once at start: where Dovecot
 * listens, the security options for plain and TLS sessions, the limits. A
 * value that cannot be used is a {@linkcode ConfigError} naming file and
 * line. (smtpd_sasl_type can only be "dovecot": the parameter table refuses
 * anything else when the file is loaded.)
 *
 * @module
 */

import { type Config, ConfigError } from "../config/mod.ts";
import { parseSecurityOptions, type SecurityOptions } from "./mechanisms.ts";
import { parseSaslPath, type SaslEndpoint } from "./sasl_path.ts";

/** The resolved SASL settings. */
export interface SaslSettings {
  /** smtpd_sasl_auth_enable. */
  readonly enabled: boolean;
  /** smtpd_sasl_path, resolved. */
  readonly endpoint: SaslEndpoint;
  /** smtpd_sasl_service. */
  readonly service: string;
  /** smtpd_sasl_security_options. */
  readonly securityOptions: SecurityOptions;
  /** smtpd_sasl_tls_security_options. */
  readonly tlsSecurityOptions: SecurityOptions;
  /** smtpd_tls_auth_only, or TLS required (level encrypt), as Postfix. */
  readonly tlsAuthOnly: boolean;
  /** smtpd_sasl_response_limit. */
  readonly responseLimit: number;
  /** smtpd_sasl_exceptions_networks (patterns, for the session's peer matcher). */
  readonly exceptionsNetworks: readonly string[];
  /** smtpd_sasl_authenticated_header. */
  readonly authenticatedHeader: boolean;
}

/**
 * Resolves the SASL settings.
 * @param config the loaded configuration
 * @param where the file and a line finder, for errors
 * @returns the settings
 * @throws {ConfigError} for an unusable value
 */
export function saslSettings(
  config: Config,
  where: { file?: string | undefined; lineOf?: (key: string) => number | undefined } = {},
): SaslSettings {
  const fail = (key: string, message: string): never => {
    throw new ConfigError(`${key}: ${message}`, {
      key,
      ...(where.file ? { file: where.file } : {}),
      ...(where.lineOf?.(key) ? { line: where.lineOf(key) } : {}),
    });
  };
  const security = (key: "smtpd_sasl_security_options" | "smtpd_sasl_tls_security_options") => {
    const parsed = parseSecurityOptions(config[key]);
    if (!parsed.ok) {
      return fail(
        key,
        `unknown option "${parsed.unknown}" (expected noanonymous, noplaintext, noactive, nodictionary, mutual_auth, forward_secrecy)`,
      );
    }
    return parsed.options;
  };
  const path = parseSaslPath(config.smtpd_sasl_path, config.queue_directory);
  if (!path.ok) return fail("smtpd_sasl_path", path.error);
  // No session would ever be over TLS: AUTH would never be offered, and
  // every AUTH would get 503 5.5.1.
  if (
    config.smtpd_sasl_auth_enable && config.smtpd_tls_auth_only &&
    config.smtpd_tls_security_level === "none" && !config.smtpd_tls_wrappermode &&
    config.smtpd_tls_wrappermode_listen.length === 0
  ) {
    fail(
      "smtpd_tls_auth_only",
      'AUTH only over TLS, but smtpd_tls_security_level is "none" and no address is in ' +
        "wrapper mode: no client could ever log in; offer STARTTLS " +
        '(smtpd_tls_security_level = "may") or set smtpd_tls_auth_only = false',
    );
  }
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(config.smtpd_sasl_service)) {
    fail("smtpd_sasl_service", `bad service name "${config.smtpd_sasl_service}"`);
  }
  return {
    enabled: config.smtpd_sasl_auth_enable,
    endpoint: path.endpoint,
    service: config.smtpd_sasl_service,
    securityOptions: security("smtpd_sasl_security_options"),
    tlsSecurityOptions: security("smtpd_sasl_tls_security_options"),
    // As Postfix (smtpd.c): level encrypt implies smtpd_tls_auth_only, so
    // AUTH is not offered in plaintext EHLO, where a password would travel.
    tlsAuthOnly: config.smtpd_tls_auth_only || config.smtpd_tls_security_level === "encrypt",
    responseLimit: config.smtpd_sasl_response_limit,
    exceptionsNetworks: config.smtpd_sasl_exceptions_networks,
    authenticatedHeader: config.smtpd_sasl_authenticated_header,
  };
}
