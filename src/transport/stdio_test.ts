import assert from "node:assert/strict";
import { type EnvPeer, peerFromEnv, standAlonePeer } from "./stdio.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

const CASES: [Record<string, string>, EnvPeer][] = [
  [{}, { kind: "local" }],
  [{ REMOTE_ADDR: "" }, { kind: "local" }],
  [{ REMOTE_ADDR: "192.0.2.7", REMOTE_PORT: "40001" }, {
    kind: "network",
    address: "192.0.2.7",
    port: "40001",
    name: "unknown",
  }],
  [{ REMOTE_ADDR: "::ffff:192.0.2.7" }, {
    kind: "network",
    address: "192.0.2.7",
    port: "0",
    name: "unknown",
  }],
  [{ REMOTE_ADDR: "2001:DB8::1", REMOTE_PORT: "25" }, {
    kind: "network",
    address: "2001:db8::1",
    port: "25",
    name: "unknown",
  }],
  // TCPREMOTEHOST is the client's own PTR name, unconfirmed: never taken as its name.
  [{ TCPREMOTEIP: "192.0.2.8", TCPREMOTEPORT: "1", TCPREMOTEHOST: "trusted.example" }, {
    kind: "network",
    address: "192.0.2.8",
    port: "1",
    name: "unknown",
  }],
  [{ TCPREMOTEIP: "192.0.2.8", TCPREMOTEHOST: "bad\x1b[0mname" }, {
    kind: "network",
    address: "192.0.2.8",
    port: "0",
    name: "unknown",
  }],
  [{ TCPREMOTEIP: "192.0.2.8", TCPREMOTEHOST: "192.0.2.9" }, {
    kind: "network",
    address: "192.0.2.8",
    port: "0",
    name: "unknown",
  }],
  [{ REMOTE_HOST: "192.0.2.10" }, {
    kind: "network",
    address: "192.0.2.10",
    port: "0",
    name: "unknown",
  }],
  [{ REMOTE_ADDR: "192.0.2.7", TCPREMOTEIP: "198.51.100.1", TCPREMOTEPORT: "x" }, {
    kind: "network",
    address: "192.0.2.7",
    port: "0",
    name: "unknown",
  }],
  [{ REMOTE_ADDR: "127.0.0.010" }, { kind: "invalid", reason: "REMOTE_ADDR is not an IP address" }],
  [{ REMOTE_ADDR: "\x1b[2J1.2.3.4" }, {
    kind: "invalid",
    reason: "REMOTE_ADDR is not an IP address",
  }],
  [{ REMOTE_ADDR: "mx.example" }, { kind: "invalid", reason: "REMOTE_ADDR is not an IP address" }],
  [{ REMOTE_ADDR: "1.2.3.4", REMOTE_PORT: "65536" }, {
    kind: "invalid",
    reason: "REMOTE_PORT is not a port number",
  }],
  [{ REMOTE_ADDR: "1.2.3.4", REMOTE_PORT: "-1" }, {
    kind: "invalid",
    reason: "REMOTE_PORT is not a port number",
  }],
  [{ TCPREMOTEIP: "1.2.3.4\r" }, { kind: "invalid", reason: "TCPREMOTEIP is not an IP address" }],
  [{ REMOTE_HOST: "client.example" }, {
    kind: "invalid",
    reason: "REMOTE_HOST is not an IP address",
  }],
];

for (const [vars, expected] of CASES) {
  Deno.test(`peerFromEnv() reads ${JSON.stringify(vars)}`, () => {
    assert.deepEqual(peerFromEnv(env(vars)), expected);
  });
}

Deno.test("standAlonePeer() is local only for a pipe or terminal without a peer", () => {
  assert.deepEqual(standAlonePeer({ kind: "local" }, "other"), {
    kind: "ok",
    peer: { kind: "local" },
  });
  assert.equal(standAlonePeer({ kind: "local" }, "socket").kind, "refused");
  assert.equal(standAlonePeer({ kind: "local" }, "unknown").kind, "refused");
  assert.equal(standAlonePeer({ kind: "invalid", reason: "x" }, "other").kind, "refused");
  const net = { kind: "network", address: "192.0.2.7", port: "1", name: "unknown" } as const;
  assert.deepEqual(standAlonePeer(net, "socket"), { kind: "ok", peer: net });
});
