/**
 * The resolutions one stage evaluation has already made (`resolveAddress()`
 * in ./resolve_address.ts). Several restrictions of a list resolve the same
 * sender or recipient (reject_unauth_destination, check_recipient_access,
 * reject_unlisted_recipient, ...), and each resolution may look
 * mydestination's tables up; with this memo, carried by the evaluation's
 * `EvalEnv`, each distinct resolution is made once per stage. (Postfix's
 * smtpd keeps such a cache too, smtpd_resolve.c, for 100 addresses and
 * across sessions; this one is smaller and shorter-lived.)
 *
 * A memo lives as long as one `Policy.check()`: nothing crosses stages,
 * sessions or a reload. It keeps a few entries (a stage resolves the
 * sender and the recipient), the oldest going first. Only a resolution in
 * which every table lookup answered is kept, with the trace steps it took,
 * so that a later use traces the same steps; one that met a temporary
 * failure or an exception is never kept, and the next caller asks the
 * tables again, as it did without the memo.
 *
 * @module
 */

import type { Destinations } from "./destinations.ts";
import type { ResolvedAddress } from "./resolve_address.ts";
import type { TraceEvent } from "./trace.ts";

/** What a resolution depends on: the address, $myorigin and our destinations. */
export interface ResolveKey {
  readonly local: string;
  readonly domain: string;
  readonly myorigin: string;
  readonly destinations: Destinations;
}

/** A resolution made, with the trace steps it took. */
export interface ResolveEntry {
  readonly address: ResolvedAddress;
  readonly events: readonly TraceEvent[];
}

/** At most this many resolutions are kept per stage evaluation. */
export const RESOLVE_MEMO_LIMIT = 8;

/** Resolutions made in one stage evaluation. */
export class ResolveMemo {
  #entries: { key: ResolveKey; entry: ResolveEntry }[] = [];

  /** How many resolutions are kept. */
  get size(): number {
    return this.#entries.length;
  }

  /**
   * The resolution made for a key, if kept.
   * @param key the address, $myorigin and destinations
   * @returns the entry, or undefined
   */
  get(key: ResolveKey): ResolveEntry | undefined {
    return this.#entries.find((e) => sameKey(e.key, key))?.entry;
  }

  /**
   * Keeps a resolution (the oldest goes when the memo is full).
   * @param key the address, $myorigin and destinations
   * @param entry the resolved address and its trace steps
   */
  set(key: ResolveKey, entry: ResolveEntry): void {
    this.#entries = this.#entries.filter((e) => !sameKey(e.key, key));
    if (this.#entries.length >= RESOLVE_MEMO_LIMIT) this.#entries.shift();
    this.#entries.push({ key: { ...key }, entry });
  }
}

function sameKey(a: ResolveKey, b: ResolveKey): boolean {
  return a.local === b.local && a.domain === b.domain && a.myorigin === b.myorigin &&
    a.destinations === b.destinations;
}
