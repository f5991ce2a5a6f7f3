import assert from "node:assert/strict";
import { resolveConfigText } from "../config/load.ts";
import type { SaslMechanism, SaslServer } from "../sasl/mod.ts";
import { checkSasl } from "./sasl_check.ts";

const config = (extra: string) =>
  resolveConfigText(
    `smtpd_sasl_path = "inet:127.0.0.1:12345"\n${extra}`,
    { systemHostname: "mx.example.com", file: "t.toml" },
  );

/** A server that offers these mechanisms (undefined: cannot be reached). */
function fake(offered: readonly SaslMechanism[] | undefined, warning = "") {
  let closed = false;
  return {
    connect: (onWarning: (text: string) => void) => {
      if (warning) onWarning(warning);
      return {
        mechanisms: () => Promise.resolve(offered),
        start: () => {
          throw new Error("not used");
        },
        close: () => (closed = true),
      } as SaslServer & { close(): void };
    },
    closed: () => closed,
  };
}

const mech = (name: string, ...flags: string[]): SaslMechanism => ({ name, flags: new Set(flags) });

Deno.test("checkSasl() AUTH off: nothing to say", async () => {
  assert.equal(await checkSasl(config(""), fake([]).connect), undefined);
});

Deno.test("checkSasl() the mechanisms EHLO offers, before and after STARTTLS", async () => {
  const f = fake([mech("PLAIN", "plaintext"), mech("CRAM-MD5"), mech("EXTERNAL")]);
  const r = await checkSasl(
    config(
      `smtpd_sasl_auth_enable = true\nsmtpd_sasl_security_options = ["noanonymous", "noplaintext"]\n` +
        `smtpd_sasl_tls_security_options = ["noanonymous"]`,
    ),
    f.connect,
  );
  assert.deepEqual(r, {
    ok: "AUTH: the Dovecot auth server (smtpd_sasl_path inet:127.0.0.1:12345) answers; " +
      "EHLO offers AUTH CRAM-MD5; after STARTTLS: AUTH PLAIN CRAM-MD5",
  });
  assert.ok(f.closed());
});

Deno.test("checkSasl() a server that cannot be reached: a warning with the reason", async () => {
  const f = fake(
    undefined,
    "SASL: Connect to Dovecot auth socket 'inet:127.0.0.1:12345' failed: Connection refused",
  );
  const r = await checkSasl(config(`smtpd_sasl_auth_enable = true`), f.connect);
  assert.deepEqual(r, {
    warning: "AUTH: the Dovecot auth server (smtpd_sasl_path inet:127.0.0.1:12345, set at " +
      "t.toml:1) cannot be reached (Connection refused); until it can, EHLO does not offer " +
      "AUTH and AUTH gets 454 4.7.0",
  });
  assert.ok(f.closed());
});

Deno.test("checkSasl() nothing passes the security options: AUTH is never offered", async () => {
  const f = fake([mech("PLAIN", "plaintext"), mech("LOGIN", "plaintext")]);
  const r = await checkSasl(
    config(
      `smtpd_sasl_auth_enable = true\nsmtpd_sasl_security_options = ["noanonymous", "noplaintext"]`,
    ),
    f.connect,
  );
  assert.match(r?.warning ?? "", /no mechanism it offers \(PLAIN LOGIN\) passes/);
  // With smtpd_tls_auth_only only the TLS options count.
  const g = fake([mech("PLAIN", "plaintext")]);
  const only = await checkSasl(
    config(
      `smtpd_sasl_auth_enable = true\nsmtpd_tls_auth_only = true\nsmtpd_tls_security_level = "may"`,
    ),
    g.connect,
  );
  assert.match(
    only?.ok ?? "",
    /EHLO offers AUTH PLAIN only after STARTTLS \(smtpd_tls_auth_only\)$/,
  );
});

Deno.test("checkSasl() AUTH among smtpd_discard_ehlo_keywords: never offered, as the session", async () => {
  const f = fake([mech("PLAIN", "plaintext")]);
  const r = await checkSasl(
    config(`smtpd_sasl_auth_enable = true\nsmtpd_discard_ehlo_keywords = ["etrn", "auth"]`),
    f.connect,
  );
  assert.deepEqual(r, {
    warning: "AUTH: the Dovecot auth server (smtpd_sasl_path inet:127.0.0.1:12345) answers, but " +
      "smtpd_discard_ehlo_keywords discards AUTH: EHLO does not offer it and AUTH gets 503 5.5.1",
  });
  assert.ok(f.closed());
  // A client's value of smtpd_discard_ehlo_keyword_address_maps replaces the list.
  const g = fake([mech("PLAIN", "plaintext")]);
  const maps = await checkSasl(
    config(
      `smtpd_sasl_auth_enable = true\nsmtpd_discard_ehlo_keywords = ["auth"]\n` +
        `smtpd_discard_ehlo_keyword_address_maps = ["inline:{ 192.0.2.1=etrn }"]`,
    ),
    g.connect,
  );
  assert.match(
    maps?.ok ?? "",
    /discards AUTH: .* \(unless smtpd_discard_ehlo_keyword_address_maps/,
  );
});
