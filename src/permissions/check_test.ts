import assert from "node:assert/strict";
import { grantAdvice, missingMessage, missingNeeds } from "./check.ts";
import type { Need } from "./needs.ts";

const NEEDS: Need[] = [
  { kind: "read", value: "/tmp", why: "queue_directory" },
  { kind: "write", value: "/srv/q", why: "queue_directory" },
  { kind: "net", value: "0.0.0.0:25", why: "smtpd_listen" },
  { kind: "net", value: "127.0.0.1:2525", why: "smtpd_listen" },
  { kind: "env", value: "REMOTE_ADDR", why: "stand-alone mode" },
  { kind: "sys", value: "hostname", why: "myhostname default" },
];

Deno.test({
  name: "missingNeeds() names exactly the needs this process was not granted",
  permissions: { read: ["/tmp"], net: ["127.0.0.1:2525"], env: ["REMOTE_ADDR"], sys: ["hostname"] },
  fn: () => {
    assert.deepEqual(missingNeeds(NEEDS).map((n) => `${n.kind} ${n.value}`), [
      "write /srv/q",
      "net 0.0.0.0:25",
    ]);
  },
});

Deno.test("missingMessage() gives each flag with its reason, then how to get them", () => {
  const lines = missingMessage(
    [NEEDS[2] as Need],
    grantAdvice("/etc/smtpd/smtpd.toml", ["queue_directory=/srv/q"], true),
  );
  assert.deepEqual(lines, [
    "this configuration needs permissions this program was not given:",
    "  --allow-net=0.0.0.0:25  (smtpd_listen)",
    "rebuild the binary for it: deno task compile -c /etc/smtpd/smtpd.toml " +
    "-o 'queue_directory=/srv/q' (then install the new dist/smtpd)",
  ]);
  assert.match(
    grantAdvice("/c.toml", [], false),
    /^run it with the flags it needs: deno task smtpd/,
  );
});
