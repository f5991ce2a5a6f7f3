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
