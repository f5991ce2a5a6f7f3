/**
 * The byte stream a session runs over, and who is at the other end.
 *
 * @module
 */

import type { ByteSource } from "../io/line_reader.ts";
import type { ByteSink } from "../io/reply_writer.ts";

/** Who the client is. */
export type PeerInfo =
  | {
    kind: "network";
    address: string;
    port: string;
    name: string;
    /** Our end of the connection (check_policy_service's server_address/port). */
    server?: { readonly hostname: string; readonly port: number };
  }
  | { kind: "local" };

/** What a TLS session negotiated, for Received: and the log. */
export interface TlsInfo {
  readonly protocol: string;
  readonly cipher: string;
  readonly bits: number;
}

/** A duplex byte stream with a known peer. */
export interface Transport extends ByteSource, ByteSink {
  readonly peer: PeerInfo;
  /** Set once the stream is encrypted. */
  readonly tls?: TlsInfo;
  close(): void;
  /**
   * Present when STARTTLS is possible: performs the server handshake (RFC 3207).
   * It fails with a {@linkcode TlsHandshakeError} when the handshake does not
   * finish within `timeoutMs` (smtpd_starttls_timeout), the client sends
   * something that is not TLS, or goes away; the connection is closed then.
   */
  startTls?: (timeoutMs: number) => Promise<Transport>;
  /**
   * Implicit TLS (smtpd_tls_wrappermode, RFC 8314): the session runs
   * `startTls` before its greeting, and offers no STARTTLS.
   */
  readonly implicitTls?: boolean;
  /**
   * Told when a mail transaction starts (true) and ends (false): a listener
   * that must close an idle connection to make room spares those in one.
   */
  inTransaction?: (on: boolean) => void;
  /**
   * Told when the session has given its slot back (default_process_limit):
   * what is left of the connection (its last reply; behind the TLS engine,
   * the relay's drain) holds no session, so a listener that makes room for
   * a new session must not close it in a session's place.
   */
  sessionOver?: () => void;
  /**
   * Told when the connection has its session slot (default_process_limit):
   * before that (waiting for one at the cap, or being refused) closing it
   * frees none, so a listener that makes room for a session by crowding
   * must not close it in a session's place. `releaseClient` gives the
   * client's per-client slot back at once: the listener calls it when it
   * closes the connection to make room, so that the next new client sees
   * the address's count without it (not only once the session has ended).
   * Behind a balancer it is told again once the PROXY header has named
   * the client: `client`, whose sessions this one counts with from then on.
   */
  sessionBegun?: (releaseClient?: () => void, client?: string) => void;
  /**
   * Told just before the 220 to STARTTLS is written: from then on the
   * client expects a TLS handshake, so a listener that closes the
   * connection to make room must not write a plaintext 421 on it.
   */
  tlsBegins?: () => void;
  /**
   * Told true when the session starts waiting on DNS lookups (the first
   * one under way) and false when none is left: a session whose command
   * waits long on names its client chose (a sender domain whose hundred MX
   * hosts never answer) is slow, and gives way at the cap like a slow client.
   */
  waitingOnDns?: (on: boolean) => void;
}

/** Why a STARTTLS handshake failed. */
export type TlsFailure = "timeout" | "protocol" | "lost";

/** A failed STARTTLS handshake; the connection is already closed. */
export class TlsHandshakeError extends Error {
  /** timeout (smtpd_starttls_timeout), protocol (not TLS, or refused), or lost (closed). */
  readonly why: TlsFailure;

  /**
   * @param why the kind of failure
   * @param message the TLS library's message, or what happened
   */
  constructor(why: TlsFailure, message: string) {
    super(message);
    this.name = "TlsHandshakeError";
    this.why = why;
  }
}
