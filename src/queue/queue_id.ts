/**
 * Queue IDs, and how to tell ours from Postfix's.
 *
 * Postfix names a queue file after its arrival time and inode number, in
 * one of two shapes (mail_queue_enter in Postfix's global/mail_queue.c):
 * - long (enable_long_queue_ids = yes): the second in base 52 (at least 6
 *   digits), the microsecond in base 52 (exactly 4), the letter "z", then
 *   the inode number in base 51, all in the alphabet
 *   `0-9 B-Z b-z` without vowels (so the inode part has no "z");
 * - short: the microsecond in upper-case hexadecimal (exactly 5 digits),
 *   then the inode number in upper-case hexadecimal.
 * While cleanup or postdrop creates a file it is briefly named
 * `<microsecond>.<pid>`.
 *
 * Ours take the long shape behind one lower-case vowel, {@linkcode OUR_MARK}.
 * Postfix can never produce that name (its long alphabet has no vowels, its
 * short IDs no lower case, its temporary names contain a dot), so the name
 * alone says, across crashes and restarts and without looking at times,
 * which files in a queue this program created: start-up recovery touches
 * those and nothing else. The name is still what Postfix's daemons accept
 * (letters and digits: mail_queue_id_ok), and in the long shape: `postsuper`
 * reads the part after the last "z" as the inode in base 51 and never
 * renames long IDs by default (`postsuper -S` would replace that part only,
 * keeping the mark; with enable_long_queue_ids = no, Postfix's start-up
 * `postsuper` renames long IDs to short ones, and such a file is then
 * Postfix's to handle). Where Postfix puts the inode number we put a
 * per-process, per-thread sequence (the ID goes into Received: before the
 * file exists).
 *
 * @module
 */

const ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";

/** The first character of every queue ID this program makes: a vowel Postfix never uses. */
export const OUR_MARK = "u";

const OURS = new RegExp(`^${OUR_MARK}[${ALPHABET}]{10,}z[${ALPHABET.slice(0, 51)}]+$`);

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
 * Builds one of our queue IDs: {@linkcode OUR_MARK}, then Postfix's long
 * layout with `unique` where Postfix puts the inode number.
 * @param seconds arrival time, seconds since the epoch
 * @param micros the microsecond within that second
 * @param unique a number unique to this file among those made in that microsecond
 * @returns the queue ID
 */
export function makeQueueId(seconds: number, micros: number, unique: number): string {
  return `${OUR_MARK}${encode(seconds, 52, 6)}${encode(micros, 52, 4)}z${encode(unique, 51, 1)}`;
}

/**
 * Whether a file name is a valid queue ID (Postfix's mail_queue_id_ok).
 * @param name a file name
 * @returns true for letters, digits and "_" only, 1-255 characters
 */
export function isQueueId(name: string): boolean {
  return /^[A-Za-z0-9_]{1,255}$/.test(name);
}

/**
 * Whether a queue file name is one this program makes ({@linkcode makeQueueId}).
 * False for every name Postfix's cleanup, postdrop or postsuper gives a file.
 * @param name a file name
 * @returns true for our shape only
 */
export function isOurQueueId(name: string): boolean {
  return name.length <= 255 && OURS.test(name);
}

/**
 * Makes the IDs of one queue store (one per thread): time plus a number
 * unique to this process, store and message where Postfix puts the inode.
 */
export class QueueIds {
  #sequence = 0;
  /** Tells this store's IDs from other threads' (same PID). */
  #tag = crypto.getRandomValues(new Uint16Array(1))[0] ?? 0;

  /**
   * A fresh queue ID for a file created at this time.
   * @param when the time
   * @returns the ID
   */
  next(when: Date): string {
    const ms = when.getTime();
    const micros = (ms % 1000) * 1000 + (this.#sequence % 1000);
    this.#sequence = (this.#sequence + 1) % 65536;
    const unique = ((Deno.pid % 1048576) * 65536 + this.#tag) * 65536 + this.#sequence;
    return makeQueueId(Math.floor(ms / 1000), micros, unique);
  }
}
