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

/** A duplex byte stream with a known peer. */
export interface Transport extends ByteSource, ByteSink {
  readonly peer: PeerInfo;
  close(): void;
}
