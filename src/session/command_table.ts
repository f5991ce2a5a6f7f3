/**
 * The command table: verb → handler plus its protocol rules. The session
 * loop is its only caller; client input never becomes a method name.
 *
 * @module
 */

import { handleData } from "./commands/data.ts";
import { handleEhlo, handleHelo } from "./commands/helo.ts";
import { handleEtrn } from "./commands/etrn.ts";
import { handleStarttls } from "./commands/starttls.ts";
import { handleHelp } from "./commands/help.ts";
import { handleMail } from "./commands/mail.ts";
import { handleNoop } from "./commands/noop.ts";
import { handleQuit } from "./commands/quit.ts";
import { handleRcpt } from "./commands/rcpt.ts";
import { handleRset } from "./commands/rset.ts";
import { handleVrfy } from "./commands/vrfy.ts";
import type { CommandResult, Session } from "./session.ts";

/** A verb the server implements. */
export type Verb =
  | "HELO"
  | "EHLO"
  | "MAIL"
  | "RCPT"
  | "DATA"
  | "RSET"
  | "NOOP"
  | "QUIT"
  | "VRFY"
  | "ETRN"
  | "STARTTLS"
  | "HELP";

/** A command's handler and rules. */
export interface CommandSpec {
  readonly handler: (arg: string, s: Session) => CommandResult | Promise<CommandResult>;
  /** RFC 2920 §3.1: "last" commands end a pipelined group. */
  readonly pipelining: "group" | "last";
}

/** Every implemented command. */
export const COMMANDS = {
  HELO: { handler: handleHelo, pipelining: "last" },
  EHLO: { handler: handleEhlo, pipelining: "last" },
  MAIL: { handler: handleMail, pipelining: "group" },
  RCPT: { handler: handleRcpt, pipelining: "group" },
  DATA: { handler: handleData, pipelining: "last" },
  RSET: { handler: handleRset, pipelining: "group" },
  NOOP: { handler: handleNoop, pipelining: "last" },
  QUIT: { handler: handleQuit, pipelining: "last" },
  VRFY: { handler: handleVrfy, pipelining: "last" },
  ETRN: { handler: handleEtrn, pipelining: "last" },
  STARTTLS: { handler: handleStarttls, pipelining: "last" },
  HELP: { handler: handleHelp, pipelining: "last" },
} as const satisfies Record<Verb, CommandSpec>;

/**
 * Whether a verb is implemented.
 * @param verb an upper-cased verb
 * @returns true for a key of {@linkcode COMMANDS}
 */
export function isVerb(verb: string): verb is Verb {
  return Object.hasOwn(COMMANDS, verb);
}
