/**
 * A session's error count, in one place: every 4xx/5xx reply but 421
 * counts; past smtpd_junk_command_limit, each junk command counts too
 * (as Postfix); once the count is past smtpd_soft_error_limit (greater
 * than it, as the 1999 Postfix), each reply waits one second per error
 * (the tarpit); up to it each error reply waits
 * smtpd_error_sleep_time; at smtpd_hard_error_limit the session ends. A
 * queued message forgives everything.
 *
 * @module
 */

import type { Config } from "../config/mod.ts";
import { isError, type Reply } from "../protocol/reply.ts";
import type { SessionLimits } from "./limits.ts";

/**
 * The commands smtpd_junk_command_limit counts (cost the client nothing, us
 * something): Postfix's NOOP, VRFY, ETRN and RSET, and HELP, which Postfix
 * does not implement (there a HELP is a 500 error, so a flood meets the
 * tarpit; here it would be answered 214 without end).
 */
const JUNK_COMMANDS: ReadonlySet<string> = new Set(["NOOP", "VRFY", "ETRN", "RSET", "HELP"]);

/** Errors and junk commands of one session. */
export class ErrorCounter {
  #errors = 0;
  #junk = 0;
  readonly #limits: SessionLimits;
  readonly #config: Pick<Config, "smtpd_soft_error_limit" | "smtpd_error_sleep_time">;

  /**
   * @param limits the session's hard error and junk command limits
   * @param config the soft limit and the error sleep time
   */
  constructor(
    limits: SessionLimits,
    config: Pick<Config, "smtpd_soft_error_limit" | "smtpd_error_sleep_time">,
  ) {
    this.#limits = limits;
    this.#config = config;
  }

  /** Whether the session has reached smtpd_hard_error_limit. */
  get atHardLimit(): boolean {
    return this.#errors >= this.#limits.hardErrorLimit;
  }

  /**
   * Counts a reply about to be sent.
   * @param r the reply
   * @returns how long to wait (after sending what is queued) before it, or
   *   undefined for no wait
   */
  reply(r: Reply): number | undefined {
    if (isError(r) && r.code !== 421) this.#errors++;
    if (this.#errors > this.#config.smtpd_soft_error_limit) return this.#errors * 1000;
    if (isError(r) && this.#config.smtpd_error_sleep_time > 0) {
      return this.#config.smtpd_error_sleep_time * 1000;
    }
    return undefined;
  }

  /**
   * Counts a command that was run: past the junk command limit, a junk
   * command is an error.
   * @param verb the command
   */
  command(verb: string): void {
    if (JUNK_COMMANDS.has(verb) && this.#junk++ > this.#limits.junkCommandLimit) this.#errors++;
  }

  /** A message was queued: the counts start over. */
  reset(): void {
    this.#errors = 0;
    this.#junk = 0;
  }
}
