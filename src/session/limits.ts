/**
 * The per-session limits that stress mode changes. Postfix lowers
 * smtpd_timeout, smtpd_starttls_timeout, smtpd_hard_error_limit and
 * smtpd_junk_command_limit when its master reports that the service is
 * near its process limit; here the listener decides at connect time and a
 * session keeps the limits it started with.
 *
 * @module
 */

import type { Config } from "../config/mod.ts";

/** The limits one session runs under. */
export interface SessionLimits {
  /** Longest wait for a command, a DATA chunk or a reply write (smtpd_timeout). */
  readonly timeoutMs: number;
  /** Longest TLS handshake after STARTTLS (smtpd_starttls_timeout). */
  readonly starttlsTimeoutMs: number;
  /** Errors before 421 and disconnect (smtpd_hard_error_limit). */
  readonly hardErrorLimit: number;
  /** NOOP/VRFY/ETRN/RSET commands before each one counts as an error. */
  readonly junkCommandLimit: number;
  /** Whether the session started under stress. */
  readonly stressed: boolean;
}

/**
 * The limits for a session.
 * @param config the configuration
 * @param stressed whether the service is under stress (near its connection limit)
 * @returns the limits in force
 */
export function sessionLimits(config: Config, stressed: boolean): SessionLimits {
  return stressed
    ? {
      timeoutMs: Math.min(config.smtpd_timeout, config.smtpd_stress_timeout) * 1000,
      starttlsTimeoutMs:
        Math.min(config.smtpd_starttls_timeout, config.smtpd_stress_starttls_timeout) * 1000,
      hardErrorLimit: Math.min(config.smtpd_hard_error_limit, config.smtpd_stress_hard_error_limit),
      junkCommandLimit: Math.min(
        config.smtpd_junk_command_limit,
        config.smtpd_stress_junk_command_limit,
      ),
      stressed,
    }
    : {
      timeoutMs: config.smtpd_timeout * 1000,
      starttlsTimeoutMs: config.smtpd_starttls_timeout * 1000,
      hardErrorLimit: config.smtpd_hard_error_limit,
      junkCommandLimit: config.smtpd_junk_command_limit,
      stressed,
    };
}
