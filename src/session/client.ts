/**
 * Who the client is: its address and port (from the connection, or from a
 * PROXY header sent by a trusted balancer), its name (looked up with
 * smtpd_peername_lookup) and whether it is a local submission. The
 * identity is settled before the greeting and never changes after it;
 * command handlers only read it.
 *
 * @module
 */

import type { Config } from "../config/mod.ts";
import type { LineReader } from "../io/line_reader.ts";
import type { MailLog } from "../log/mod.ts";
import {
  type ClientNameStatus,
  type DnsResolver,
  lookupClientName,
  type Network,
} from "../policy/mod.ts";
import { type ProxyResult, readProxyHeader, upstreamAllowed } from "../transport/proxy_protocol.ts";
import type { PeerInfo } from "../transport/types.ts";

/** The client of a session. */
export interface ClientIdentity {
  /** The verified name, or "unknown" (a log peer's name). */
  readonly name: string;
  /** The address in canonical text. */
  readonly address: string;
  readonly port: string;
  /** True for stand-alone submissions without a network peer. */
  readonly local: boolean;
  /** The PTR name, verified or not ("unknown" when there is none). */
  readonly reverseName: string;
  readonly nameStatus: ClientNameStatus;
  readonly reverseStatus: ClientNameStatus;
  /**
   * Our end as the client reached it (check_policy_service's
   * server_address/port, the SASL server's address): the connection's
   * local address, or the destination in a PROXY header.
   */
  readonly server?: { readonly hostname: string; readonly port: number };
}

/**
 * The client as the connection tells it.
 * @param peer the transport's peer
 * @returns the identity before PROXY and name lookup
 */
export function clientFromPeer(peer: PeerInfo): ClientIdentity {
  const unnamed = {
    reverseName: "unknown",
    nameStatus: "notFound",
    reverseStatus: "notFound",
  } as const;
  if (peer.kind !== "network") {
    return { name: "localhost", address: "127.0.0.1", port: "0", local: true, ...unnamed };
  }
  const { name, address, port, server } = peer;
  return {
    name,
    address,
    port,
    local: false,
    ...unnamed,
    ...(server ? { server: { hostname: server.hostname, port: server.port } } : {}),
  };
}

/**
 * Reads the PROXY header (smtpd_upstream_proxy_protocol = haproxy): only a
 * balancer in smtpd_upstream_proxy_networks may say who the client is.
 * @param client the balancer's side of the connection
 * @param reader the connection's reader
 * @param env the configuration and the log; `exact`: read no byte past the
 *   header (implicit TLS follows it)
 * @returns the client the header names (or the balancer itself for a
 *   LOCAL header), or undefined when the connection must be dropped
 */
export async function readProxyClient(
  client: ClientIdentity,
  reader: LineReader,
  env: { config: Config; log: MailLog; proxyNetworks?: readonly Network[]; exact?: boolean },
): Promise<ClientIdentity | undefined> {
  const { config, log } = env;
  const from = `[${client.address}]:${client.port}`;
  if (!upstreamAllowed(config, client.address, env.proxyNetworks)) {
    log.warning(
      `haproxy read: connection from ${from} is not in smtpd_upstream_proxy_networks: dropping connection`,
    );
    return undefined;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<ProxyResult>((r) => {
    timer = setTimeout(
      () => r({ kind: "error", reason: "timeout" }),
      config.smtpd_upstream_proxy_timeout * 1000,
    );
  });
  let result: ProxyResult;
  try {
    result = await Promise.race([readProxyHeader(reader, env.exact === true), timeout]);
  } catch (err) {
    result = { kind: "error", reason: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
  if (result.kind === "error") {
    log.warning(`haproxy read: ${result.reason} from ${from}: dropping connection`);
    return undefined;
  }
  if (result.kind !== "proxied") return client;
  // Canonical text from protocol/ip.ts: nothing of the header's own bytes.
  return {
    ...client,
    name: "unknown",
    address: result.address,
    port: result.port,
    local: false,
    server: result.server,
  };
}

/**
 * Finds the client's name (smtpd_peername_lookup); a failed lookup is
 * logged and leaves the identity as it was.
 * @param client the client
 * @param dns the session's resolver
 * @param log the log
 * @param gone aborted when the client has hung up: no warnings after that
 * @returns the client with its name
 */
export async function nameClient(
  client: ClientIdentity,
  dns: DnsResolver,
  log: MailLog,
  gone?: AbortSignal,
): Promise<ClientIdentity> {
  // Once the client is gone its lookups end as temporary failures of our
  // own making, after its disconnect line: no warning says otherwise.
  const warn = (t: string) => {
    if (!gone?.aborted) log.warning(t);
  };
  try {
    const n = await lookupClientName(client.address, dns, warn);
    return {
      ...client,
      name: n.name,
      reverseName: n.reverseName,
      nameStatus: n.nameStatus,
      reverseStatus: n.reverseStatus,
    };
  } catch (err) {
    warn(`client name lookup failed: ${(err as Error).message}`);
    return client;
  }
}
