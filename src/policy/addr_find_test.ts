import assert from "node:assert/strict";
import { recipientKeys, stripExtension } from "./addr_find.ts";

/** [local part, recipient_delimiter, what is left, or undefined when not cut]; Postfix's split_addr. */
const STRIP: [string, string, string | undefined][] = [
  ["user+tag", "+", "user"],
  ["user+a+b", "+", "user"],
  ["user-tag", "+", undefined],
  ["user", "+", undefined],
  ["user+tag", "", undefined],
  // A set of characters: the first of any of them cuts.
  ["user-a+b", "+-", "user"],
  ["user+a-b", "-+", "user"],
  // Nothing would be left.
  ["+tag", "+", undefined],
  // Never cut, whatever the delimiter.
  ["postmaster", "+", undefined],
  ["Postmaster", "s", undefined],
  ["MAILER-DAEMON", "-", undefined],
  ["double-bounce", "-", undefined],
  // owner_request_special (Postfix's default yes) when "-" is a delimiter.
  ["owner-list", "-", undefined],
  ["list-request", "-", undefined],
  ["owner+x", "-+", "owner"],
  ["-request", "-", undefined],
  ["owner-list", "+", undefined],
  ["list-request+x", "+", "list-request"],
  // An extension of postmaster is an extension like any other.
  ["postmaster+x", "+", "postmaster"],
];

for (const [local, delimiter, want] of STRIP) {
  Deno.test(`stripExtension() cuts "${local}" with "${delimiter}" to ${want ?? "nothing"}`, () => {
    assert.equal(stripExtension(local, delimiter), want);
  });
}

Deno.test("recipientKeys() follows mail_addr_find: full, without extension, local part if local, @domain", () => {
  const plus = { delimiter: "+", localDomain: false };
  assert.deepEqual(recipientKeys("User+Tag", "example.com", plus), [
    "User+Tag@example.com",
    "User@example.com",
    "@example.com",
  ]);
  assert.deepEqual(recipientKeys("user+tag", "example.com", { ...plus, localDomain: true }), [
    "user+tag@example.com",
    "user@example.com",
    "user+tag",
    "user",
    "@example.com",
  ]);
  assert.deepEqual(recipientKeys("user+tag", "example.com", { delimiter: "", localDomain: true }), [
    "user+tag@example.com",
    "user+tag",
    "@example.com",
  ]);
  assert.deepEqual(recipientKeys("user+tag", "", plus), ["user+tag", "user"]);
});

Deno.test("recipientKeys() looks a local part that needs quoting up quoted first (mail_addr_find's legacy form)", () => {
  assert.deepEqual(recipientKeys("a b+x", "example.com", { delimiter: "+", localDomain: true }), [
    '"a b+x"@example.com',
    "a b+x@example.com",
    '"a b"@example.com',
    "a b@example.com",
    '"a b+x"',
    "a b+x",
    '"a b"',
    "a b",
    "@example.com",
  ]);
});
