import assert from "node:assert/strict";
import { parseTlsProtocols } from "./tls_protocols.ts";

Deno.test("Postfix's protocol syntax maps onto the TLSv1.2-TLSv1.3 range", () => {
  const both = { minVersion: "TLSv1.2", maxVersion: "TLSv1.3" };
  assert.deepEqual(parseTlsProtocols(""), both);
  assert.deepEqual(parseTlsProtocols(">=TLSv1"), both);
  assert.deepEqual(parseTlsProtocols("!SSLv2, !SSLv3, !TLSv1, !TLSv1.1"), both);
  assert.deepEqual(parseTlsProtocols(">=TLSv1.3"), {
    minVersion: "TLSv1.3",
    maxVersion: "TLSv1.3",
  });
  assert.deepEqual(parseTlsProtocols("!TLSv1.3"), { minVersion: "TLSv1.2", maxVersion: "TLSv1.2" });
  assert.deepEqual(parseTlsProtocols("<=TLSv1.2"), {
    minVersion: "TLSv1.2",
    maxVersion: "TLSv1.2",
  });
  assert.deepEqual(parseTlsProtocols("TLSv1.3:TLSv1.1"), {
    minVersion: "TLSv1.3",
    maxVersion: "TLSv1.3",
  });
});

Deno.test("a protocol list that leaves neither TLSv1.2 nor TLSv1.3, or names an unknown one, is refused", () => {
  assert.match((parseTlsProtocols("<=TLSv1.1") as { error: string }).error, /leaves no protocol/);
  assert.match((parseTlsProtocols("TLSv1") as { error: string }).error, /leaves no protocol/);
  assert.match(
    (parseTlsProtocols("!TLSv1.2 !TLSv1.3") as { error: string }).error,
    /leaves no protocol/,
  );
  assert.match((parseTlsProtocols(">=TLSv1.4") as { error: string }).error, /unknown protocol/);
});

Deno.test("bounds as Postfix 3.6 takes them: hexadecimal numbers, None, any case", () => {
  const both = { minVersion: "TLSv1.2", maxVersion: "TLSv1.3" };
  const only12 = { minVersion: "TLSv1.2", maxVersion: "TLSv1.2" };
  const only13 = { minVersion: "TLSv1.3", maxVersion: "TLSv1.3" };
  // postconf(5)'s own examples.
  assert.deepEqual(parseTlsProtocols(">=TLSv1, <=0305"), both);
  assert.deepEqual(parseTlsProtocols(">=0x0301"), both);
  assert.deepEqual(parseTlsProtocols(">=301"), both);
  assert.deepEqual(parseTlsProtocols(">=0x0304"), only13);
  assert.deepEqual(parseTlsProtocols(">=0303 <=0X0303"), only12);
  assert.deepEqual(parseTlsProtocols(">=None, <=none"), both);
  assert.deepEqual(parseTlsProtocols(">=0 <=0"), both);
  assert.deepEqual(parseTlsProtocols(">=tlsv1.3"), only13);
});

Deno.test("bounds Postfix refuses, or that leave nothing, are refused", () => {
  const error = (t: string) => (parseTlsProtocols(t) as { error?: string }).error ?? "";
  // Postfix turns TLS off for these ("Invalid TLS protocol list").
  assert.match(error(">=SSLv2"), /no bound can be "SSLv2"/);
  assert.match(error("<=0x12345g"), /unknown protocol "0x12345g" in "<=0x12345g"/);
  assert.match(error("!0x0303"), /unknown protocol "0x0303"/);
  // A floor above TLSv1.3 (OpenSSL would drop it, and allow TLSv1), a ceiling below TLSv1.2.
  assert.match(error(">=0305"), /leaves no protocol/);
  assert.match(error("<=0x0302"), /leaves no protocol/);
  assert.match(error("<=0x0002"), /leaves no protocol/);
});
