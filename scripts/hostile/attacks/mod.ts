/**
 * Every attack of the hostile harness, in the order they run.
 *
 * @module
 */

import type { Attack } from "../attack.ts";
import { baseline } from "./baseline.ts";
import { starttlsStall } from "./starttls_stall.ts";
import { headerBomb } from "./header_bomb.ts";
import { connectionFlood } from "./connection_flood.ts";
import { fdExhaustion } from "./fd_exhaustion.ts";
import { slowDrip } from "./slow_drip.ts";
import { etrnFlood, noopFlood, vrfyFlood } from "./command_flood.ts";
import { heloFlood } from "./helo_flood.ts";
import { proxyForged } from "./proxy_forged.ts";
import { smuggling } from "./smuggling.ts";
import { garbageAfterStarttls } from "./garbage_after_starttls.ts";
import { blockFlood } from "./block_flood.ts";
import { resetFlood } from "./reset_flood.ts";
import { bdatDrip } from "./bdat_drip.ts";
import { bdatChunkFlood } from "./bdat_chunk_flood.ts";
import { dsnBloat } from "./dsn_bloat.ts";
import { wrapperStall } from "./wrapper_stall.ts";
import { tlsHandshakeFlood } from "./tls_handshake_flood.ts";
import { authFlood } from "./auth_flood.ts";

export { HARD_ERROR_LIMIT, JUNK_COMMAND_LIMIT } from "./command_flood.ts";

/** All attacks, baseline first. */
export const ATTACKS: readonly Attack[] = [
  baseline,
  starttlsStall,
  headerBomb,
  connectionFlood,
  resetFlood,
  fdExhaustion,
  slowDrip,
  vrfyFlood,
  noopFlood,
  etrnFlood,
  heloFlood,
  proxyForged,
  blockFlood,
  smuggling,
  garbageAfterStarttls,
  bdatDrip,
  bdatChunkFlood,
  dsnBloat,
  // The "tls" instance (implicit-TLS port, Dovecot, rate limits) last: started once.
  wrapperStall,
  tlsHandshakeFlood,
  authFlood,
];
