import assert from "node:assert/strict";
import {
  advertisedMechanisms,
  authEhloKeyword,
  filterMechanisms,
  parseSecurityOptions,
} from "./mechanisms.ts";
import type { SaslMechanism } from "./dovecot_protocol.ts";

const mech = (name: string, ...flags: string[]): SaslMechanism => ({ name, flags: new Set(flags) });
const ALL = [
  mech("PLAIN", "plaintext"),
  mech("LOGIN", "plaintext"),
  mech("CRAM-MD5", "dictionary", "active"),
  mech("ANONYMOUS", "anonymous"),
  mech("GSSAPI", "mutual-auth"),
  mech("SECRET", "private"),
];

function filter(items: string[]): string[] {
  const parsed = parseSecurityOptions(items);
  assert.ok(parsed.ok);
  return filterMechanisms(ALL, parsed.options);
}

Deno.test("filterMechanisms() follows the security options", () => {
  assert.deepEqual(filter([]), ["PLAIN", "LOGIN", "CRAM-MD5", "ANONYMOUS", "GSSAPI"]);
  assert.deepEqual(filter(["noanonymous"]), ["PLAIN", "LOGIN", "CRAM-MD5", "GSSAPI"]);
  assert.deepEqual(filter(["noanonymous", "noplaintext"]), ["CRAM-MD5", "GSSAPI"]);
  assert.deepEqual(filter(["NoDictionary", "noanonymous"]), ["PLAIN", "LOGIN", "GSSAPI"]);
  assert.deepEqual(filter(["noactive"]), ["PLAIN", "LOGIN", "ANONYMOUS", "GSSAPI"]);
  assert.deepEqual(filter(["mutual_auth"]), ["GSSAPI"]);
  assert.deepEqual(filter(["forward_secrecy"]), []);
});

Deno.test("parseSecurityOptions() names an unknown option", () => {
  assert.deepEqual(parseSecurityOptions(["noanonymous", "nofoo"]), { ok: false, unknown: "nofoo" });
  assert.deepEqual(parseSecurityOptions(["toString"]), { ok: false, unknown: "toString" });
});

Deno.test("authEhloKeyword() lists the mechanisms, or nothing", () => {
  assert.equal(authEhloKeyword(["PLAIN", "LOGIN"]), "AUTH PLAIN LOGIN");
  assert.equal(authEhloKeyword([]), undefined);
});

Deno.test("advertisedMechanisms() leaves EXTERNAL out, any case; authEhloKeyword() too", () => {
  assert.deepEqual(advertisedMechanisms(["PLAIN", "external", "LOGIN"]), ["PLAIN", "LOGIN"]);
  assert.equal(authEhloKeyword(["EXTERNAL"]), undefined);
});
