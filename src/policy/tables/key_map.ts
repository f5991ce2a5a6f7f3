/**
 * A string-keyed map for large tables, built a slice at a time: one Map of
 * a million keys grows by rehashing all of them at once (a pause of tenths
 * of a second at each doubling, on a busy host), so the keys are spread
 * over many small Maps by a hash of their text, and each rehash is small.
 * Iteration is in insertion order, as a Map's is.
 *
 * @module
 */

/** How many small Maps the keys are spread over. */
const SHARDS = 256;

/** FNV-1a over the UTF-16 code units of a key, reduced to a shard number. */
function shardOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  }
  return (h >>> 0) % SHARDS;
}

/** A map from strings, its keys in insertion order. */
export class KeyMap<V> {
  readonly #shards: (Map<string, V> | undefined)[] = new Array(SHARDS);
  /** The keys in insertion order (an array grows by copying, without rehashing). */
  readonly #order: string[] = [];

  /** How many keys it holds. */
  get size(): number {
    return this.#order.length;
  }

  /**
   * The value of a key.
   * @param key the key
   * @returns the value, or undefined
   */
  get(key: string): V | undefined {
    return this.#shards[shardOf(key)]?.get(key);
  }

  /**
   * Whether it holds a key.
   * @param key the key
   * @returns true when it does
   */
  has(key: string): boolean {
    return this.#shards[shardOf(key)]?.has(key) ?? false;
  }

  /**
   * Sets a key's value; a new key comes last in the order.
   * @param key the key
   * @param value the value
   */
  set(key: string, value: V): void {
    const n = shardOf(key);
    const shard = this.#shards[n] ?? (this.#shards[n] = new Map());
    if (!shard.has(key)) this.#order.push(key);
    shard.set(key, value);
  }

  /** The keys, in insertion order. */
  keys(): readonly string[] {
    return this.#order;
  }

  /** Each key and value, in insertion order. */
  *[Symbol.iterator](): IterableIterator<[string, V]> {
    for (const k of this.#order) yield [k, this.get(k) as V];
  }
}
