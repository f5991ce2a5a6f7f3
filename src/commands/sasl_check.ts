/**
 * The AUTH check at start and in `smtpd config --check`: with
 * `smtpd_sasl_auth_enable`, one connection to the Dovecot auth server tells
 * whether it answers and which mechanisms the sessions will offer. Postfix
 * checks nothing until a client says EHLO; an operator who starts us with
 * the wrong `smtpd_sasl_path`, or before Dovecot, learns it here rather
 * than from the first client's failed AUTH.
 *
 * @module
 */

import type { LoadedConfig } from "../config/mod.ts";
import {
  authEhloKeyword,
  describeEndpoint,
  DovecotAuthClient,
  filterMechanisms,
  type SaslServer,
  saslSettings,
} from "../sasl/mod.ts";
import { ehloDiscards } from "../session/ehlo_keywords.ts";

/** How long the check waits for the server (connect and handshake). */
const CHECK_TIMEOUT_MS = 5_000;

/**
 * Runs the check.
 * @param loaded the configuration
 * @param connect the server to ask (tests); by default a Dovecot client of its own
 * @returns undefined when AUTH is off; else a line for the operator when the
 *   server answers with mechanisms to offer (ok), or a warning
 */
export async function checkSasl(
  loaded: LoadedConfig,
  connect?: (onWarning: (text: string) => void) => SaslServer & { close(): void },
): Promise<{ ok?: string; warning?: string } | undefined> {
  const settings = saslSettings(loaded.config, { file: loaded.file, lineOf: loaded.lineOf });
  if (!settings.enabled) return undefined;
  const where = `the Dovecot auth server (smtpd_sasl_path ${describeEndpoint(settings.endpoint)})`;
  let reason = "no answer";
  const onWarning = (text: string) => (reason = text.replace(/^.*? failed: /, ""));
  const server = connect?.(onWarning) ?? new DovecotAuthClient({
    endpoint: settings.endpoint,
    service: settings.service,
    timeoutMs: CHECK_TIMEOUT_MS,
    onWarning,
  });
  try {
    const offered = await server.mechanisms();
    if (offered === undefined) {
      // Where the path was set, when it was: the place to look for a typo.
      const place = loaded.placeOf("smtpd_sasl_path").slice(0, -2);
      const set = /:\d+$/.test(place) || place.startsWith("-o ") ? `, set at ${place}` : "";
      return {
        warning: `AUTH: ${where.replace(/\)$/, `${set})`)} cannot be reached (${reason}); ` +
          "until it can, EHLO does not offer AUTH and AUTH gets 454 4.7.0",
      };
    }
    // The EHLO keyword line a session would show, as the session builds it.
    const plain = authEhloKeyword(filterMechanisms(offered, settings.securityOptions));
    const tls = authEhloKeyword(filterMechanisms(offered, settings.tlsSecurityOptions));
    const said = settings.tlsAuthOnly
      ? `${tls ?? "no AUTH"} only after STARTTLS (smtpd_tls_auth_only)`
      : `${plain ?? "no AUTH"}; after STARTTLS: ${tls ?? "no AUTH"}`;
    if ((settings.tlsAuthOnly || plain === undefined) && tls === undefined) {
      return {
        warning: `AUTH: ${where} answers, but no mechanism it offers ` +
          `(${offered.map((m) => m.name).join(" ") || "none"}) passes ` +
          "smtpd_sasl_security_options/smtpd_sasl_tls_security_options: AUTH is never offered",
      };
    }
    // As the session: AUTH among smtpd_discard_ehlo_keywords is neither
    // offered nor accepted (503), whatever the server offers.
    if (ehloDiscards(loaded.config.smtpd_discard_ehlo_keywords).has("AUTH")) {
      const text = `AUTH: ${where} answers, but smtpd_discard_ehlo_keywords discards AUTH: ` +
        "EHLO does not offer it and AUTH gets 503 5.5.1";
      return loaded.config.smtpd_discard_ehlo_keyword_address_maps.length
        ? {
          ok:
            `${text} (unless smtpd_discard_ehlo_keyword_address_maps has another value for the client)`,
        }
        : { warning: text };
    }
    return { ok: `AUTH: ${where} answers; EHLO offers ${said}` };
  } finally {
    server.close();
  }
}
