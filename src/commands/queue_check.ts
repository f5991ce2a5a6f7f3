/**
 * The queue directory check of `smtpd config --check`: what `smtpd serve`
 * and `smtpd stdin` stop on when they prepare the queue, found without
 * creating or writing anything (a check must leave the disk as it is).
 *
 * A file where queue_directory, a directory above it or one of its queue
 * subdirectories should be stops every start, whoever runs it: an error.
 * Whether a directory can be written is read from its mode and owner
 * (stat(2), no write probe) for the user running the check, who may not be
 * the service's (a deployment's account, CI): a warning. root may write
 * anywhere; a group that may write is taken to be one of the user's (the
 * check cannot list supplementary groups); a read-only mount or an ACL is
 * not seen (the start says so).
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import type { LoadedConfig } from "../config/mod.ts";

/** The subdirectories the queue has (QueueStore.prepare makes them). */
const SUBDIRS = ["incoming", "maildrop", "hold", "deferred", "active", "public"];

/** The subdirectories a queue file is written in (daemon, stand-alone). */
const WRITTEN = new Set(["incoming", "maildrop"]);

/** The user a check is made for. */
export interface CheckUser {
  readonly uid: number;
  readonly gid: number;
}

/** What the check found: an error stops the check (status 1), a warning does not. */
export interface QueueCheck {
  readonly error?: string;
  readonly warning?: string;
}

/**
 * Runs the check.
 * @param loaded the configuration
 * @param user whom to check for (default: this process's user; none: only what
 *   is not a directory)
 * @param stat stat(2) (default Deno.statSync)
 * @returns the error or warning, each after the file and line of queue_directory
 */
export function checkQueueDirectory(
  loaded: LoadedConfig,
  user: CheckUser | undefined = thisUser(),
  stat: (path: string) => Deno.FileInfo = Deno.statSync,
): QueueCheck {
  const dir = loaded.config.queue_directory;
  const say = (why: string) =>
    `${loaded.placeOf("queue_directory")}cannot prepare queue directory "${dir}": ${why}`;
  const look = (path: string): Deno.FileInfo | "missing" | "file" | "above" | undefined => {
    try {
      const info = stat(path);
      return info.isDirectory ? info : "file";
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return "missing";
      if (e instanceof Deno.errors.NotADirectory) return "above";
      return undefined; // not ours to ask (Deno's flags, no search permission)
    }
  };
  const top = resolve(dir);
  const found = look(top);
  if (found === undefined) return {};
  if (found === "file") return { error: say(`${top} is not a directory`) };
  if (found === "above") return { error: say(`a path above ${top} is not a directory`) };
  if (found === "missing") {
    // It will be made in its nearest existing parent.
    for (let at = dirname(top);; at = dirname(at)) {
      const above = look(at);
      if (above === "missing" && dirname(at) !== at) continue;
      if (above === "file" || above === "above") {
        return {
          error: say(`${at}${above === "above" ? " or a path above it" : ""} is not a directory`),
        };
      }
      if (typeof above === "object" && user && !writable(above, user)) {
        return { warning: say(`it does not exist and ${at} is not writable ${forUser(user)}`) };
      }
      return {};
    }
  }
  for (const sub of SUBDIRS) {
    const path = join(top, sub);
    const info = look(path);
    if (info === "file" || info === "above") return { error: say(`${path} is not a directory`) };
    if (!user) continue;
    if (info === "missing" && !writable(found, user)) {
      return { warning: say(`${sub}/ does not exist and ${top} is not writable ${forUser(user)}`) };
    }
    if (typeof info === "object" && WRITTEN.has(sub) && !writable(info, user)) {
      return { warning: say(`${path} is not writable ${forUser(user)}`) };
    }
  }
  return {};
}

/**
 * This process's user.
 * @returns it, or undefined when Deno's flags do not let it be asked
 */
function thisUser(): CheckUser | undefined {
  try {
    const [uid, gid] = [Deno.uid(), Deno.gid()];
    return uid === null || gid === null ? undefined : { uid, gid };
  } catch {
    return undefined;
  }
}

/**
 * Whether `user` may make entries in a directory, by its mode and owner.
 * @param info the directory's stat
 * @param user the user
 * @returns false only when the mode says no
 */
function writable(info: Deno.FileInfo, user: CheckUser): boolean {
  if (user.uid === 0 || info.mode === null) return true;
  const mode = info.mode;
  if (info.uid === user.uid) return (mode & 0o300) === 0o300;
  return (mode & 0o030) === 0o030 || (mode & 0o003) === 0o003;
}

function forUser(user: CheckUser): string {
  return `for uid ${user.uid} (by its mode; the service's user may differ)`;
}
