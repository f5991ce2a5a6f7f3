/**
 * What a fuzz target is, and the failure type its checks throw.
 *
 * @module
 */

import type { Rng } from "./prng.ts";

/** One thing under test: a generator of inputs and the invariants they must keep. */
export interface FuzzTarget {
  /** Short name, also the prefix of its corpus files (no "."). */
  readonly name: string;
  /** What is checked, one line. */
  readonly description: string;
  /** Runs once before the first input (build seed files, make temp dirs). */
  setup?(): Promise<void>;
  /** Runs once after the last input. */
  teardown?(): Promise<void>;
  /**
   * Produces one input.
   * @param rng the generator for this input
   * @returns the input bytes (what is saved to the corpus on failure)
   */
  generate(rng: Rng): Uint8Array;
  /**
   * Checks one input; throws when an invariant breaks. Must be
   * deterministic for a given input (choices come from the input's hash).
   * @param input the bytes
   * @param thorough also try the extra option combinations (corpus replay)
   */
  check(input: Uint8Array, thorough: boolean): void | Promise<void>;
}

/** An invariant violation, with a short stable code used to group and shrink failures. */
export class FuzzFailure extends Error {
  /** e.g. "dot.remainder" */
  readonly code: string;

  /**
   * @param code the short code
   * @param message what went wrong, with the values involved
   */
  constructor(code: string, message: string) {
    super(`${code}: ${message}`);
    this.name = "FuzzFailure";
    this.code = code;
  }
}

/**
 * The code of any error thrown by a check.
 * @param err the error
 * @returns the failure code, or the error's name for other errors
 */
export function failureCode(err: unknown): string {
  if (err instanceof FuzzFailure) return err.code;
  if (err instanceof Error) return err.name;
  return typeof err;
}

/**
 * The message of any error thrown by a check, on one line.
 * @param err the error
 * @returns the message
 */
export function failureMessage(err: unknown): string {
  const msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return msg.replace(/\s*\n\s*/g, " ⏎ ").slice(0, 600);
}

/**
 * Wraps an unexpected exception from the code under test as a failure.
 * @param code the failure code
 * @param err the exception
 * @returns the failure to throw
 */
export function unexpected(code: string, err: unknown): FuzzFailure {
  const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return new FuzzFailure(code, `threw ${what}`);
}
