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
