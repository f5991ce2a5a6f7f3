/**
 * Joins queue path parts with "/". The queue code builds its paths from a
 * directory and plain names only, so it needs no normalization; a local
 * helper keeps node:path (and Node's compatibility layer, about 1 MiB of
 * heap per isolate) out of the listener threads.
 *
 * @module
 */

/**
 * @param parts a directory and the names under it
 * @returns the parts joined by single slashes
 */
export function join(...parts: string[]): string {
  return parts.filter((p) => p !== "").join("/").replace(/\/{2,}/g, "/");
}
