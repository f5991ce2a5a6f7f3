import assert from "node:assert/strict";
import { clientRange } from "./client_range.ts";

Deno.test("clientRange(): the defaults count IPv4 per address and IPv6 per /84", () => {
  const r = clientRange(32, 84);
  assert.equal(r("192.0.2.7"), "192.0.2.7");
  assert.equal(r("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2:3::/84");
  assert.equal(r("2001:db8:1:2:3fff:ffff:ffff:ffff"), "2001:db8:1:2:3fff:f000::/84");
  assert.equal(r("2001:db8:1:2:3fff:0fff:ffff:ffff"), "2001:db8:1:2:3fff::/84");
  assert.equal(r("2001:DB8:1:2:3::9"), "2001:db8:1:2:3::/84");
  assert.equal(r("::1"), "::/84");
});

Deno.test("clientRange(): other lengths clear the host bits; full length keeps the address", () => {
  assert.equal(clientRange(24, 128)("192.0.2.7"), "192.0.2.0/24");
  assert.equal(clientRange(0, 128)("192.0.2.7"), "0.0.0.0/0");
  assert.equal(clientRange(24, 128)("2001:db8::9"), "2001:db8::9");
  assert.equal(clientRange(32, 64)("2001:db8:0:1:ffff::1"), "2001:db8:0:1::/64");
  assert.equal(clientRange(32, 0)("2001:db8::1"), "::/0");
  // A name that is no address (stand-alone mode's "unknown") is its own unit.
  assert.equal(clientRange(24, 84)("unknown"), "unknown");
});
