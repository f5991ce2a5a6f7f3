/**
 * The keyed string hash of the per-client counters (connection counts and
 * rates): FNV-1a from a seed, with the high bits folded into the low ones
 * at every step and murmur3's final mix, so the result depends on every bit
 * of the seed. With a seed drawn at start, which addresses share a counter
 * cannot be worked out from outside.
 *
 * @module
 */

/**
 * Hashes a string with a seed.
 * @param text the string (a client address)
 * @param seed the key
 * @returns a 32-bit signed hash
 */
export function keyedHash(text: string, seed: number): number {
  let h = seed ^ 2166136261;
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 16777619);
    h ^= h >>> 15;
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}
