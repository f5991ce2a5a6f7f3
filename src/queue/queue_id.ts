/**
 * Postfix long queue IDs (enable_long_queue_ids = yes): the arrival second
 * in base 52 (at least 6 digits), the microsecond in base 52 (exactly 4),
 * the letter "z", then the file's inode number in base 51. The inode makes
 * the ID unique on the file system, as in Postfix, and Postfix's
 * `postsuper` finds name and inode in agreement.
 *
 * @module
 */

const ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";

function encode(n: number, base: number, minWidth: number): string {
  let out = "";
  let v = Math.floor(n);
  do {
    out = ALPHABET[v % base] + out;
    v = Math.floor(v / base);
  } while (v > 0);
  return out.padStart(minWidth, "0");
}

/**
 * Builds a long queue ID.
 * @param seconds arrival time, seconds since the epoch
 * @param micros the microsecond within that second
 * @param inode the queue file's inode number
 * @returns the queue ID
 */
export function makeQueueId(seconds: number, micros: number, inode: number): string {
  return `${encode(seconds, 52, 6)}${encode(micros, 52, 4)}z${encode(inode, 51, 1)}`;
}

/**
 * Whether a file name is a valid queue ID (Postfix's mail_queue_id_ok).
 * @param name a file name
 * @returns true for letters, digits and "_" only, 1-255 characters
 */
export function isQueueId(name: string): boolean {
  return /^[A-Za-z0-9_]{1,255}$/.test(name);
}
