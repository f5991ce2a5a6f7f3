/**
 * Byte-array helpers shared by readers of records and headers.
 *
 * @module
 */

/**
 * The pieces joined into one array (the piece itself when there is one).
 * @param pieces the arrays, in order
 * @returns their bytes, one after another
 */
export function concatBytes(pieces: readonly Uint8Array[]): Uint8Array {
  if (pieces.length === 1) return pieces[0] as Uint8Array;
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
