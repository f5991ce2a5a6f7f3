/**
 * A small seeded pseudo-random generator for the fuzzer: Marsaglia's
 * xorshift128 (2003) on four 32-bit words, seeded through a multiply/xor
 * mixer so that nearby seeds give unrelated streams. Not for cryptography.
 *
 * @module
 */

/**
 * Mixes a 32-bit value into a well-spread 32-bit value (an invertible
 * multiply/xor-shift finalizer).
 * @param x the value
 * @returns the mixed value, unsigned
 */
export function mix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Derives one seed from several numbers (seed, target, iteration), so any
 * input can be regenerated from its coordinates alone.
 * @param parts the numbers
 * @returns a 32-bit seed
 */
export function deriveSeed(...parts: number[]): number {
  let h = 0x2545f491;
  for (const p of parts) {
    h = mix32(h ^ mix32((p >>> 0) + 0x9e3779b9));
    // Fold in the high bits of seeds above 2^32, too.
    h = mix32(h ^ Math.floor(p / 0x100000000));
  }
  return h;
}

/**
 * FNV-1a over bytes: a cheap, stable hash used to name corpus files and to
 * derive per-input choices (chunking, limits) during checks.
 * @param bytes the input
 * @returns the 32-bit hash
 */
export function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i] as number;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The generator. Every choice the fuzzer makes goes through one of these. */
export class Rng {
  #x: number;
  #y: number;
  #z: number;
  #w: number;

  /** @param seed any number; equal seeds give equal streams */
  constructor(seed: number) {
    const s = deriveSeed(seed);
    this.#x = mix32(s + 1) | 0;
    this.#y = mix32(s + 2) | 0;
    this.#z = mix32(s + 3) | 0;
    this.#w = mix32(s + 4) | 1; // never all zero
  }

  /** @returns the next unsigned 32-bit value */
  next(): number {
    const t = this.#x ^ (this.#x << 11);
    this.#x = this.#y;
    this.#y = this.#z;
    this.#z = this.#w;
    this.#w = this.#w ^ (this.#w >>> 19) ^ (t ^ (t >>> 8));
    return this.#w >>> 0;
  }

  /**
   * An integer in [0, n).
   * @param n the bound (> 0)
   * @returns the integer
   */
  int(n: number): number {
    return Math.floor((this.next() / 0x100000000) * n);
  }

  /**
   * An integer in [lo, hi].
   * @param lo the lower bound
   * @param hi the upper bound
   * @returns the integer
   */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /**
   * True with probability p.
   * @param p the probability
   * @returns the coin
   */
  chance(p: number): boolean {
    return this.next() / 0x100000000 < p;
  }

  /**
   * One element of a non-empty array.
   * @param items the choices
   * @returns one of them
   */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  /**
   * A length skewed towards small values: mostly < 16, sometimes up to max.
   * @param max the largest length
   * @returns the length
   */
  size(max: number): number {
    const r = this.int(100);
    if (r < 60) return this.int(Math.min(16, max + 1));
    if (r < 90) return this.int(Math.min(256, max + 1));
    return this.int(max + 1);
  }

  /**
   * Random bytes.
   * @param n how many
   * @returns the bytes
   */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }

  /**
   * A sub-generator with its own stream (for a choice that must not shift
   * the rest of the sequence).
   * @returns the new generator
   */
  fork(): Rng {
    return new Rng(this.next());
  }
}
