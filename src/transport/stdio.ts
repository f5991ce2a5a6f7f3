/**
 * Stand-alone mode's transport: one session over stdin/stdout. The peer
 * comes from the environment (DESIGN.md §1): REMOTE_ADDR/REMOTE_PORT
 * (systemd Accept=yes), or TCPREMOTEIP/TCPREMOTEPORT/TCPREMOTEHOST
 * (ucspi-tcp, inetd wrappers); with none it is a local submission.
 *
 * @module
 */

import type { PeerInfo, Transport } from "./types.ts";

/** Environment variables consulted for the peer. */
export const PEER_ENV = [
  "REMOTE_ADDR",
  "REMOTE_PORT",
  "TCPREMOTEIP",
  "TCPREMOTEPORT",
  "TCPREMOTEHOST",
] as const;

/**
 * Works out the peer from environment values.
 * @param env a lookup of environment variables
 * @returns a network peer, or local
 */
export function peerFromEnv(env: (name: string) => string | undefined): PeerInfo {
  const address = env("REMOTE_ADDR") || env("TCPREMOTEIP");
  if (!address) return { kind: "local" };
  return {
    kind: "network",
    address: address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1"),
    port: env("REMOTE_PORT") || env("TCPREMOTEPORT") || "0",
    name: env("TCPREMOTEHOST") || "unknown",
  };
}

/**
 * Builds the stdin/stdout transport.
 * @param peer the peer identity
 * @returns the transport
 */
export function stdioTransport(peer: PeerInfo): Transport {
  return {
    peer,
    read: (p) => Deno.stdin.read(p),
    write: (p) => Deno.stdout.write(p),
    close: () => {
      try {
        Deno.stdout.close();
      } catch { /* closed */ }
    },
  };
}
