/**
 * The program version, shown by `--version` and in logs.
 *
 * @module
 */

/** The release version. */
export const VERSION = "0.1.0";
