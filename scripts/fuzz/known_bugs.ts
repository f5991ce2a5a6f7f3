/**
 * Bugs the fuzzer found that are reported but not fixed yet. Their
 * failures are counted apart (`--include-known` counts them again) so CI
 * stays green while a fix is pending; each one should also have an ignored
 * regression test (`// BUG:`) in tests/fuzz_test.ts. When a bug is fixed,
 * delete its entry here and un-ignore its test: tests/fuzz_test.ts fails
 * while an entry no longer reproduces.
 *
 * An entry looks like:
 *
 * ```ts
 * {
 *   id: "queue-reader-bad-time",
 *   target: "queue_reader",
 *   summary: "readQueueFile throws RangeError on a corrupted T record",
 *   input: Uint8Array.of(0x54, 3, 0x78, 0x20, 0x30, 0x45, 0),
 *   matches: (_input, err) => /Invalid time value/.test(String(err)),
 * }
 * ```
 *
 * The seven bugs of the first run were fixed in 5504f7e; their inputs are
 * regression tests in tests/fuzz_test.ts and files in tests/fuzz_corpus/.
 *
 * @module
 */

import type { KnownBug } from "./runner.ts";

/** The open bugs. */
export const KNOWN_BUGS: readonly KnownBug[] = [];
