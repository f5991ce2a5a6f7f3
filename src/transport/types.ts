/**
 * The byte stream a session runs over, and who is at the other end.
 *
 * @module
 */

import type { ByteSource } from "../io/line_reader.ts";
import type { ByteSink } from "../io/reply_writer.ts";

/** Who the client is. */
export type PeerInfo =
  | { kind: "network"; address: string; port: string; name: string }
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
  /** Present when STARTTLS is possible: performs the server handshake (RFC 3207). */
  startTls?: () => Promise<Transport>;
}
