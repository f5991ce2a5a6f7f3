/**
 * Lookup tables (`type:name`, as in Postfix): one interface, three
 * outcomes. A temporary failure never counts as "not found".
 *
 * @module
 */

/** The outcome of one lookup. */
export type LookupResult =
  /** template: the table's result before $n substitution (regexp:, pcre:). */
  | { kind: "found"; value: string; template?: string }
  | { kind: "notFound" }
  | { kind: "tempfail"; reason: string };

/** A table opened at start-up. */
export interface LookupTable {
  /** The `type:name` spec, for logs and explain. */
  readonly name: string;
  /** Every value in the table, so start-up can validate them (undefined: not enumerable). */
  readonly values: readonly string[] | undefined;
  /**
   * Keys are matched as patterns (regexp:, pcre:): only whole keys are
   * looked up, in their original case.
   */
  readonly pattern?: boolean;
  /**
   * Where a value is written, as `file:line` (its first occurrence), for a
   * table read from a file: start-up errors about a value name it.
   */
  origin?(value: string): string | undefined;
  /**
   * Looks a key up (keys are case-folded by the table).
   * @param key the key
   * @returns the result
   */
  lookup(key: string): Promise<LookupResult>;
  /**
   * A reload replaced the configuration that opened the table: a table with
   * connections (socketmap:) keeps none idle from now on.
   */
  retire?(): void;
}
