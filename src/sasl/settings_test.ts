import assert from "node:assert/strict";
import { ConfigError, resolveConfigText } from "../config/mod.ts";
import { describeEndpoint, parseSaslPath } from "./sasl_path.ts";
import { saslSettings } from "./settings.ts";

function settingsOf(text: string) {
  const loaded = resolveConfigText(text, { file: "smtpd.toml" });
  return saslSettings(loaded.config, { file: "smtpd.toml", lineOf: loaded.lineOf });
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    return err;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("parseSaslPath(): relative paths live under the queue directory", () => {
  assert.deepEqual(parseSaslPath("private/auth", "/var/spool/postfix"), {
    ok: true,
    endpoint: { transport: "unix", path: "/var/spool/postfix/private/auth" },
  });
  assert.deepEqual(parseSaslPath("unix:/run/dovecot/auth-client", "q"), {
    ok: true,
    endpoint: { transport: "unix", path: "/run/dovecot/auth-client" },
  });
  assert.deepEqual(parseSaslPath("inet:127.0.0.1:12345", "q"), {
    ok: true,
    endpoint: { transport: "tcp", hostname: "127.0.0.1", port: 12345 },
  });
  assert.deepEqual(parseSaslPath("inet:[::1]:12345", "q"), {
    ok: true,
    endpoint: { transport: "tcp", hostname: "::1", port: 12345 },
  });
  for (const bad of ["inet:host", "inet:host:0", "inet:host:70000", "inet::25", "", "unix:"]) {
    assert.equal(parseSaslPath(bad, "q").ok, false, bad);
  }
  assert.equal(describeEndpoint({ transport: "tcp", hostname: "::1", port: 9 }), "inet:[::1]:9");
});

Deno.test("saslSettings(): Postfix's defaults", () => {
  const s = settingsOf("");
  assert.equal(s.enabled, false);
  assert.deepEqual(s.endpoint, { transport: "unix", path: "var/spool/private/auth" });
  assert.equal(s.service, "smtp");
  assert.deepEqual([...s.securityOptions.mustLack], ["anonymous"]);
  assert.deepEqual([...s.tlsSecurityOptions.mustLack], ["anonymous"]);
  assert.equal(s.tlsAuthOnly, false);
  assert.equal(s.responseLimit, 12288);
  assert.equal(s.authenticatedHeader, false);
});

Deno.test("saslSettings(): smtpd_tls_security_level = encrypt implies smtpd_tls_auth_only", () => {
  assert.equal(settingsOf('smtpd_tls_security_level = "may"').tlsAuthOnly, false);
  assert.equal(settingsOf('smtpd_tls_security_level = "encrypt"').tlsAuthOnly, true);
});

Deno.test("saslSettings(): smtpd_tls_auth_only where no session is ever over TLS is refused", () => {
  const never = configError(() =>
    settingsOf("smtpd_sasl_auth_enable = true\n\nsmtpd_tls_auth_only = true")
  );
  assert.match(
    never.message,
    /^smtpd\.toml:3: smtpd_tls_auth_only: AUTH only over TLS, but smtpd_tls_security_level is "none" and no address is in wrapper mode: no client could ever log in/,
  );
  // STARTTLS, or a wrapper-mode address, and it is fine; so is AUTH off.
  const ok = "smtpd_sasl_auth_enable = true\nsmtpd_tls_auth_only = true\n";
  assert.equal(settingsOf(`${ok}smtpd_tls_security_level = "may"`).tlsAuthOnly, true);
  assert.equal(
    settingsOf(`${ok}smtpd_tls_wrappermode_listen = ["127.0.0.1:465"]`).tlsAuthOnly,
    true,
  );
  assert.equal(settingsOf("smtpd_tls_auth_only = true").enabled, false);
});

Deno.test("saslSettings(): bad values name the file and line", () => {
  const type = configError(() => settingsOf('\nsmtpd_sasl_type = "cyrus"'));
  assert.equal(type.message, 'smtpd.toml:2: smtpd_sasl_type: expected one of dovecot, got "cyrus"');
  const opts = configError(() =>
    settingsOf('\n\nsmtpd_sasl_security_options = "noanonymous, nosuch"')
  );
  assert.match(
    opts.message,
    /^smtpd\.toml:3: smtpd_sasl_security_options: unknown option "nosuch"/,
  );
  const tls = configError(() => settingsOf('smtpd_sasl_tls_security_options = ["bogus"]'));
  assert.match(tls.message, /^smtpd\.toml:1: smtpd_sasl_tls_security_options: unknown option/);
  const path = configError(() => settingsOf('smtpd_sasl_path = "inet:localhost"'));
  assert.match(path.message, /^smtpd\.toml:1: smtpd_sasl_path: expected inet:host:port/);
  const service = configError(() => settingsOf('smtpd_sasl_service = "smtp\\tsecured"'));
  assert.match(service.message, /^smtpd\.toml:1: smtpd_sasl_service: bad service name/);
});

Deno.test("saslSettings(): the TLS options follow the plain ones unless set", () => {
  const s = settingsOf('smtpd_sasl_security_options = ["noanonymous", "noplaintext"]');
  assert.deepEqual([...s.tlsSecurityOptions.mustLack], ["anonymous", "plaintext"]);
  const t = settingsOf(
    'smtpd_sasl_security_options = ["noanonymous", "noplaintext"]\nsmtpd_sasl_tls_security_options = "noanonymous"',
  );
  assert.deepEqual([...t.tlsSecurityOptions.mustLack], ["anonymous"]);
});
