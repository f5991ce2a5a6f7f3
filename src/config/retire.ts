/**
 * What a configuration holds open to other servers (policy services,
 * socketmap tables), so that a reload can let go of it: each thread
 * retires what its replaced configuration opened, and nothing idles until
 * its max_idle. (The Dovecot client is not among them: a reload keeps it,
 * its settings need a restart.)
 *
 * @module
 */

/** Something that keeps connections for one configuration. */
export interface Retirable {
  /**
   * Closes its idle connections now; one still in use (by a session that
   * began before the reload) is closed when that use is over.
   */
  retire(): void;
}

const HELD = new WeakMap<object, Retirable[]>();

/**
 * Records that `owner` (a configuration) holds `thing`.
 * @param owner the configuration it was opened for
 * @param thing what to retire with it
 */
export function retireWith(owner: object, thing: Retirable): void {
  let held = HELD.get(owner);
  if (!held) HELD.set(owner, held = []);
  held.push(thing);
}

/**
 * Retires everything recorded for `owner` (once a reload replaced it).
 * @param owner the replaced configuration
 */
export function retireAll(owner: object): void {
  for (const thing of HELD.get(owner)?.splice(0) ?? []) thing.retire();
}
