/**
 * The command table: verb → handler plus its protocol rules. The session
 * loop is its only caller, and it applies the rules before the handler
 * runs, in this order (as Postfix's replies have it):
 *
 * 1. `beforeTls`: with smtpd_tls_security_level = encrypt, before STARTTLS
 *    only the commands marked "allowed" run (Postfix's SMTPD_CMD_FLAG_PRE_TLS:
 *    HELO, EHLO, STARTTLS, NOOP, QUIT, HELP); the others get 530 5.7.0 Must
 *    issue a STARTTLS command first (BDAT from its handler, which must read
 *    the chunk to stay in step);
 * 2. `precheck`: what a command refuses whatever the phase (DATA after
 *    BDAT; STARTTLS with an argument or when not offered; RSET with one;
 *    AUTH over smtpd_client_auth_rate_limit, where it is counted);
 * 3. `greeting`: with smtpd_helo_required, HELO/EHLO must have been
 *    accepted first (MAIL, ETRN, as Postfix): 503 5.5.1 send HELO/EHLO first;
 * 4. `refusedIn`: the phases the command is refused in, with the reply.
 *
 * A handler therefore runs only in a phase its rules allow. Client input
 * never becomes a method name.
 *
 * @module
 */

import type { Config } from "../config/mod.ts";
import { REPLY, type Reply } from "../protocol/reply.ts";
import { handleBdat } from "./commands/bdat.ts";
import { handleAuth } from "./commands/auth.ts";
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
import { clientOverRate, type CommandHandler, type SessionContext } from "./context.ts";
import type { PhaseKind, SessionPhase } from "./phase.ts";

/** A verb the server implements. */
export type Verb =
  | "HELO"
  | "EHLO"
  | "MAIL"
  | "RCPT"
  | "DATA"
  | "BDAT"
  | "RSET"
  | "NOOP"
  | "QUIT"
  | "VRFY"
  | "ETRN"
  | "STARTTLS"
  | "AUTH"
  | "HELP";

/** A command's handler and rules. */
export interface CommandSpec {
  readonly handler: CommandHandler;
  /**
   * "last" commands end a pipelined group (RFC 2920 §3.1): Postfix's
   * SMTPD_CMD_FLAG_LAST set (HELO, EHLO, DATA, NOOP, VRFY; QUIT ends the
   * session anyway). What follows them in the same write is improper
   * pipelining: logged once, and reject_unauth_pipelining refuses.
   */
  readonly pipelining: "group" | "last";
  /** Before STARTTLS at level encrypt: allowed, or refused by the handler (else 530 here). */
  readonly beforeTls?: "allowed" | "handler";
  /** A refusal that comes before the sequence rules, whatever the phase. */
  readonly precheck?: (arg: string, ctx: SessionContext) => Reply | undefined;
  /** HELO/EHLO first when smtpd_helo_required is set. */
  readonly greeting?: "smtpd_helo_required";
  /** The phases the command is refused in, and the reply; other phases allow it. */
  readonly refusedIn?: { readonly [P in PhaseKind]?: Reply };
}

/** Every implemented command. */
export const COMMANDS = {
  HELO: { handler: handleHelo, pipelining: "last", beforeTls: "allowed" },
  EHLO: { handler: handleEhlo, pipelining: "last", beforeTls: "allowed" },
  MAIL: {
    handler: handleMail,
    pipelining: "group",
    greeting: "smtpd_helo_required",
    // After a refused BDAT outside a transaction, until RSET (as Postfix).
    precheck: (_arg, ctx) =>
      ctx.bdat && ctx.phase.kind !== "inMail" ? REPLY.mailAfterBdat : undefined,
    refusedIn: { inMail: REPLY.nestedMail },
  },
  RCPT: {
    handler: handleRcpt,
    pipelining: "group",
    precheck: (_arg, ctx) =>
      ctx.bdat && ctx.phase.kind === "inMail" ? REPLY.rcptAfterBdat : undefined,
    refusedIn: { connected: REPLY.needMail, greeted: REPLY.needMail },
  },
  DATA: {
    handler: handleData,
    pipelining: "last",
    // As Postfix's data_cmd: state before syntax (the handler checks the
    // argument once there are recipients), and "need RCPT" even before MAIL.
    precheck: (_arg, ctx) => ctx.bdat ? REPLY.dataAfterBdat : undefined,
    refusedIn: { connected: REPLY.needRcpt, greeted: REPLY.needRcpt },
  },
  // RFC 3030: chunks are pipelined; the handler applies BDAT's own rules
  // (it must read the chunk whatever the phase, to stay in step).
  BDAT: { handler: handleBdat, pipelining: "group", beforeTls: "handler" },
  RSET: {
    handler: handleRset,
    pipelining: "group",
    // parseCommand took the blanks around the argument; String.trim() would
    // also take U+00A0 or U+3000, which Postfix's RSET refuses as an argument.
    precheck: (arg) => arg !== "" ? REPLY.rsetSyntax : undefined,
  },
  NOOP: { handler: handleNoop, pipelining: "last", beforeTls: "allowed" },
  QUIT: { handler: handleQuit, pipelining: "last", beforeTls: "allowed" },
  VRFY: { handler: handleVrfy, pipelining: "last" },
  ETRN: {
    handler: handleEtrn,
    pipelining: "group",
    // As Postfix: HELO first only when smtpd_helo_required is set.
    greeting: "smtpd_helo_required",
    refusedIn: { inMail: REPLY.mailInProgress },
  },
  STARTTLS: {
    handler: handleStarttls,
    pipelining: "group",
    beforeTls: "allowed",
    // As Postfix's starttls_cmd: syntax first, then TLS on, then TLS off
    // or STARTTLS discarded.
    precheck: (arg, ctx) => {
      if (arg !== "") return REPLY.starttlsSyntax;
      if (ctx.tls) return REPLY.tlsActive;
      return ctx.tlsOffered ? undefined : REPLY.notImplemented;
    },
    // Allowed inside a transaction, as Postfix allows it (RFC 3207 does
    // not forbid it): the handshake ends the transaction, a BDAT message
    // in progress with it.
  },
  AUTH: {
    handler: handleAuth,
    pipelining: "group",
    // As Postfix's smtpd_sasl_auth_cmd_wrapper: every AUTH command counts
    // against smtpd_client_auth_rate_limit before any other check, so one
    // refused (HELO first, AUTH off or discarded, before TLS with
    // smtpd_tls_auth_only) counts too and a client cannot probe without
    // limit. Only the 530 of level encrypt comes first (Postfix's loop).
    precheck: (_arg, ctx) => clientOverRate(ctx, "auth"),
    // As Postfix: HELO first only when smtpd_helo_required is set; the
    // handler refuses the rest in Postfix's order (enabled, transaction, TLS, twice).
    greeting: "smtpd_helo_required",
  },
  HELP: { handler: handleHelp, pipelining: "group", beforeTls: "allowed" },
} as const satisfies Record<Verb, CommandSpec>;

/**
 * Whether a verb is implemented.
 * @param verb an upper-cased verb
 * @returns true for a key of {@linkcode COMMANDS}
 */
export function isVerb(verb: string): verb is Verb {
  return Object.hasOwn(COMMANDS, verb);
}

/**
 * The sequence rules of a command: whether it may run in a phase.
 * @param spec the command's table entry
 * @param phase the session's phase
 * @param config the settings the rules depend on
 * @returns the refusal, or undefined when the command may run
 */
export function sequenceRefusal(
  spec: CommandSpec,
  phase: SessionPhase,
  config: Pick<Config, "smtpd_helo_required">,
): Reply | undefined {
  const greeted = phase.kind === "greeted" || (phase.kind === "inMail" && phase.helo !== undefined);
  const needsGreeting = spec.greeting === "smtpd_helo_required" && config.smtpd_helo_required;
  if (needsGreeting && !greeted) return REPLY.sendHeloFirst;
  return spec.refusedIn?.[phase.kind];
}

/**
 * Every rule of a command, in order: TLS first (level encrypt), its precheck, then its
 * sequence rules.
 * @param spec the command's table entry
 * @param arg the argument text
 * @param ctx the session
 * @returns the refusal, or undefined when the handler may run
 */
export function commandRefusal(
  spec: CommandSpec,
  arg: string,
  ctx: SessionContext,
): Reply | undefined {
  if (!spec.beforeTls && ctx.config.smtpd_tls_security_level === "encrypt" && !ctx.tls) {
    return REPLY.starttlsFirst;
  }
  return spec.precheck?.(arg, ctx) ?? sequenceRefusal(spec, ctx.phase, ctx.config);
}
