import assert from "node:assert/strict";
import { validityProblem } from "./tls_context.ts";

const CERT = { validFrom: "Jan  1 00:00:00 2020 GMT", validTo: "Feb  1 00:00:00 2020 GMT" };

Deno.test("validityProblem: a certificate past its end, or before its start, is named; inside is fine", () => {
  assert.match(
    validityProblem(CERT, new Date("2026-12-06T00:00:00Z")) ?? "",
    /^the certificate expired on Feb {2}1 00:00:00 2020 GMT: clients that check certificates refuse it \(it is served, as Postfix serves it\)$/,
  );
  assert.match(
    validityProblem(CERT, new Date("2019-06-01T00:00:00Z")) ?? "",
    /^the certificate is not valid before Jan {2}1 00:00:00 2020 GMT: /,
  );
  assert.equal(validityProblem(CERT, new Date("2020-01-15T00:00:00Z")), undefined);
});
