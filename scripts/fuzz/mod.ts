/**
 * Property-based fuzzing of the parsers and readers that face untrusted
 * bytes: every target, the runner, and the bugs already reported.
 *
 * @module
 */

import { addressTarget, commandTarget } from "./targets/protocol.ts";
import { dotReaderTarget, dotRoundTripTarget } from "./targets/data.ts";
import { configTarget, tablesTarget } from "./targets/config.ts";
import { queueDecodeTarget, queueReaderTarget } from "./targets/queue.ts";
import type { FuzzTarget } from "./target.ts";

export { FuzzFailure } from "./target.ts";
export type { FuzzTarget } from "./target.ts";
export { Rng } from "./prng.ts";
export { fromHex, toHex } from "./bytes.ts";
export { readCorpus, replayCorpus, runFuzz, summaryLine, tryCheck } from "./runner.ts";
export type { CorpusEntry, FuzzOptions, FuzzReport, KnownBug, ReplayFailure } from "./runner.ts";
export { KNOWN_BUGS } from "./known_bugs.ts";

/** Every target, in the order they run. */
export const TARGETS: readonly FuzzTarget[] = [
  commandTarget,
  addressTarget,
  dotReaderTarget,
  dotRoundTripTarget,
  configTarget,
  tablesTarget,
  queueDecodeTarget,
  queueReaderTarget,
];

/** The default seed of `deno task fuzz` and of the test. */
export const DEFAULT_SEED = 5321;
