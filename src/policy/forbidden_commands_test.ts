import assert from "node:assert/strict";
import { ConfigError } from "../config/mod.ts";
import { compileForbiddenCommands, isHeaderLabel } from "./forbidden_commands.ts";
import { PARAMS } from "../config/schema.ts";

Deno.test("isHeaderLabel() is true for a first word shaped Name: (Postfix's is_header)", () => {
  for (
    const word of [
      "Subject:",
      "SUBJECT:",
      "To:x",
      "Host:",
      "X-Mailer:",
      '{"to":',
      "MAIL-FROM:<a@b>",
    ]
  ) {
    assert.equal(isHeaderLabel(word), true, word);
  }
  for (const word of ["Subject", ":foo", "GET", "MA-IL", "caf\u00e9:", ""]) {
    assert.equal(isHeaderLabel(word), false, word);
  }
});

Deno.test("smtpd_forbidden_commands: words in any case, and Postfix's default regexp", async () => {
  const matches = compileForbiddenCommands(PARAMS.smtpd_forbidden_commands.default);
  for (const word of ["CONNECT", "get", "Post", "--BOUNDARY", "{", "\u00c9T\u00c9", "1234"]) {
    assert.equal(await matches(word), true, word);
  }
  for (const word of ["XYZZY", "MA-IL", "CAF\u00c9", "GETX"]) {
    assert.equal(await matches(word), false, word);
  }
  // Case-folded as Postfix's ICU casefold before the regexp sees them: a
  // long s is an s, a sharp s two; an 8-bit first letter stays forbidden.
  assert.equal(await matches("\u017fTARTTLS"), false);
  assert.equal(await matches("\u00dfMTP"), false);
  assert.equal(await matches("PO\u017fT"), true);
  assert.equal(await matches("\u00fcBER"), true);
  const custom = compileForbiddenCommands(["CONNECT", "GET", "POST", "xyzzy"]);
  assert.equal(await custom("XYZZY"), true);
  assert.equal(await custom("--BOUNDARY"), false);
  assert.equal(await compileForbiddenCommands([])("POST"), false);
});

Deno.test("smtpd_forbidden_commands: !negation, /file and unknown tables are refused", () => {
  assert.throws(() => compileForbiddenCommands(["!GET"]), ConfigError);
  assert.throws(() => compileForbiddenCommands(["/etc/forbidden"]), ConfigError);
  assert.throws(
    () => compileForbiddenCommands(["nosuch:table"]),
    (e: Error) => e instanceof ConfigError && /^smtpd_forbidden_commands: .*nosuch/.test(e.message),
  );
});
