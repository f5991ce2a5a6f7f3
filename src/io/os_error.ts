/**
 * Which failures are a shortage of descriptors or memory: transient, they
 * end when sessions end. One classifier for the accept loop (which backs
 * off) and the queue writer (which closes an idle session to make room).
 *
 * @module
 */

/** The shortages, by errno name, in words for the log. */
export const SHORTAGE: Readonly<Record<string, string>> = {
  EMFILE: "too many open files",
  ENFILE: "too many open files in system",
  ENOBUFS: "no buffer space available",
  ENOMEM: "out of memory",
};
/** Their Linux errno numbers, as Deno's messages give them ("(os error 24)"). */
const OS_ERRNO: Readonly<Record<number, string>> = {
  24: "EMFILE",
  23: "ENFILE",
  105: "ENOBUFS",
  12: "ENOMEM",
};

/**
 * The errno name of an error when it is a shortage of descriptors or
 * memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), by its code, its OS error
 * number or, for descriptors, its words.
 * @param err what was thrown
 * @returns the errno name, or undefined for any other error
 */
export function resourceShortage(err: unknown): string | undefined {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === "string" && code in SHORTAGE) return code;
  const text = String((err as Error)?.message ?? err);
  const m = /\(os error (\d+)\)/.exec(text);
  if (m) return OS_ERRNO[Number(m[1])];
  if (/too many open files in system/i.test(text)) return "ENFILE";
  if (/too many open files/i.test(text)) return "EMFILE";
  return undefined;
}

/**
 * Whether an error, or the error it wraps (its `cause`: a queue file's
 * create failure keeps the runtime's error there), is a shortage of
 * descriptors (EMFILE, ENFILE).
 * @param err what was thrown
 * @returns true for EMFILE and ENFILE
 */
export function outOfDescriptors(err: unknown): boolean {
  const short = (e: unknown) => {
    const s = resourceShortage(e);
    return s === "EMFILE" || s === "ENFILE";
  };
  return short(err) || short((err as Error | undefined)?.cause);
}
