/**
 * Words for a file named in the configuration that cannot be read. A
 * relative path is taken from the directory the program runs in (the
 * checkout under `deno task`, `/` under systemd), not from the directory
 * of the configuration file: when such a file is not found, the message
 * says where it was looked for.
 *
 * @module
 */

/**
 * Why a configured file cannot be read, for an error message.
 * @param path the path as configured
 * @param err what reading it threw
 * @param notCapable the words for a path outside the read permissions
 * @returns the reason
 */
export function unreadableReason(path: string, err: unknown, notCapable: string): string {
  if (err instanceof Deno.errors.NotCapable) return notCapable;
  const why = (err as Error)?.message ?? String(err);
  if (!(err instanceof Deno.errors.NotFound) || path.startsWith("/")) return why;
  let cwd: string;
  try {
    cwd = Deno.cwd();
  } catch {
    return `${why} (a relative path is taken from the directory the program runs in)`;
  }
  return `${why} (a relative path is taken from ${cwd}, the directory the program runs in, ` +
    `not from the configuration file's: name the file with an absolute path)`;
}

/**
 * The text of a file the configuration names (a table, a list file, a
 * certificate). Only a regular file is read, as the configuration file
 * itself: a FIFO or a device put at its path would keep the start, a
 * `config --check` or a reload waiting for ever (the flag derivation of
 * `deno task smtpd` too), and `/dev/zero` would fill the memory.
 * @param path the path as configured
 * @returns the text
 * @throws the stat's or the read's error, or one for a file that is neither
 *   regular nor a directory (whose read says "Is a directory")
 */
export function readRegularFile(path: string): string {
  const st = Deno.statSync(path);
  if (!st.isFile && !st.isDirectory) {
    const what = st.isFifo ? "a FIFO" : st.isSocket ? "a socket" : "a device";
    throw new Error(`${what}, not a regular file`);
  }
  return Deno.readTextFileSync(path);
}

/**
 * The bytes of a file that should be regular, read without waiting for
 * ever: a FIFO put at its path after the caller's stat (which saw a regular
 * file) has its open wait for a writer, so the read is given up after
 * `waitMs`.
 * @param path the file
 * @param waitMs how long the read may take
 * @returns the bytes
 * @throws the read's error, or one saying no data came within `waitMs`
 */
export async function readFileWithin(path: string, waitMs: number): Promise<Uint8Array> {
  const late = new AbortController();
  const timer = setTimeout(() => late.abort(), waitMs);
  try {
    return await Deno.readFile(path, { signal: late.signal });
  } catch (err) {
    if (!late.signal.aborted) throw err;
    throw new Error(`no data within ${waitMs / 1000} s: not a regular file now?`);
  } finally {
    clearTimeout(timer);
  }
}
