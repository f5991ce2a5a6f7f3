/**
 * What a command handler sees of its session: the client (read-only), the
 * phase and transaction (read-only), and the few operations a handler
 * needs. The session owns its fields; a handler changes them only through
 * these operations. Handlers import this module, never session.ts.
 *
 * @module
 */

import type { MessageDraft } from "../cleanup/mod.ts";
import type { Config } from "../config/mod.ts";
import type { BdatBody } from "../io/bdat_reader.ts";
import type { BodySink, DotBodyResult } from "../io/dot_reader.ts";
import type { MailLog } from "../log/mod.ts";
import type { PolicyStage } from "../policy/mod.ts";
import type { Address } from "../protocol/address.ts";
import type { Reply } from "../protocol/reply.ts";
import type { SaslClientInfo, SecretLine } from "../sasl/mod.ts";
import type { LimitedEvent } from "../transport/rate_limits.ts";
import type { TlsInfo } from "../transport/types.ts";
import type { ClientIdentity } from "./client.ts";
import type { SessionDeps } from "./deps.ts";
import type { SessionLimits } from "./limits.ts";
import type { MemoryHold } from "./memory_budget.ts";
import type { SessionPhase } from "./phase.ts";
import type { RecipientDsn, Transaction, TransactionStart } from "./transaction.ts";

/** What a command handler returns. */
export type CommandResult =
  /** Send the reply (an error reply counts against the error limits). */
  | { readonly kind: "reply"; readonly reply: Reply }
  /** Send the reply, then close the connection. */
  | { readonly kind: "close"; readonly reply: Reply }
  /** The client is gone: send nothing, end the session. */
  | { readonly kind: "gone" }
  /** The handler already answered (STARTTLS's 220): send nothing, go on. */
  | { readonly kind: "silent" };

/** A command's handler: the argument text and the session's context. */
export type CommandHandler = (
  arg: string,
  ctx: SessionContext,
) => CommandResult | Promise<CommandResult>;

/**
 * The usual result: a reply to send.
 * @param reply the reply
 * @returns the result
 */
export function answer(reply: Reply): CommandResult {
  return { kind: "reply", reply };
}

/**
 * Counts one of this session's client's events against its rate limit
 * (the warning names the client as Postfix's name[address]).
 * @param ctx the session
 * @param event what happened
 * @returns the refusal when the client is over the limit
 */
export function clientOverRate(ctx: SessionContext, event: LimitedEvent): Reply | undefined {
  return ctx.services.overRate?.(event, ctx.client.address, ctx.client.name);
}

/** The facts of the command at hand, for a policy stage and its log line. */
export interface PolicyFacts {
  readonly sender?: Address;
  readonly recipient?: Address;
  /** The sender as logged ("from=<...>"); default: the transaction's. */
  readonly from?: string;
  /** The recipient as logged ("to=<...>"). */
  readonly to?: string;
  readonly etrnDomain?: string;
  /** A HELO/EHLO name being checked, before it is accepted. */
  readonly helo?: string;
  /** The message's queue ID (end of data). */
  readonly queueId?: string;
  /** The message's size once it is in (end of data; Postfix's act_size), not MAIL's SIZE=. */
  readonly size?: number;
}

/** A refusal for the log ("NOQUEUE: reject: RCPT from ..."); the session adds client, proto and helo. */
export interface RejectEntry {
  /** The queue ID, when a message has one. */
  readonly id?: string;
  readonly stage: string;
  readonly reply: Reply;
  readonly from?: string;
  readonly to?: string;
}

/** How a STARTTLS handshake ended. */
export type TlsUpgrade = { readonly kind: "done" } | {
  readonly kind: "failed";
  readonly error: unknown;
};

/**
 * A message arriving in BDAT chunks: the queue file being written, or, once
 * a chunk was refused, every chunk up to LAST or RSET is read and dropped.
 */
export type BdatProgress =
  | {
    readonly kind: "receiving";
    readonly draft: MessageDraft;
    readonly body: BdatBody;
    /** The message's share of the memory budget. */
    readonly memory: MemoryHold;
  }
  | {
    readonly kind: "failed";
    /**
     * The octets the client announced for this message so far, stored or
     * dropped (Postfix's act_size, which skip_bdat keeps adding to): the
     * 1.5 x message_size_limit cut-off counts them all.
     */
    readonly octets: number;
    /** The message's queue ID, when it had one before it failed (for the log, as Postfix). */
    readonly id?: string;
  };

/** The services a handler may use. */
export type HandlerServices = Pick<
  SessionDeps,
  "cleanup" | "clock" | "freeSpace" | "queue" | "flush" | "memory" | "overRate" | "sasl"
>;

/** The login an AUTH command established. */
export interface SaslLogin {
  /** The mechanism, as the client wrote it ("PLAIN", "plain"), as Postfix records it. */
  readonly method: string;
  /** The user name the server gave. */
  readonly username: string;
}

/** A session as its command handlers see it. */
export interface SessionContext {
  readonly config: Config;
  readonly limits: SessionLimits;
  readonly log: MailLog;
  readonly services: HandlerServices;
  /** Who the client is; fixed before the greeting. */
  readonly client: ClientIdentity;
  readonly phase: SessionPhase;
  /** The transaction, in the inMail phase. */
  readonly tx: Transaction | undefined;
  /** The HELO/EHLO name, if any. */
  readonly helo: string | undefined;
  /** SMTP or ESMTP, with TLS as without (for Received:, the log and policy requests). */
  readonly protocol: string;
  /** What TLS negotiated, once the connection is encrypted. */
  readonly tls: TlsInfo | undefined;
  /** The EHLO keywords this client is not offered (upper case). */
  readonly ehloDiscard: ReadonlySet<string>;
  /** Whether STARTTLS is offered now (possible, and not done yet). */
  readonly tlsOffered: boolean;
  /** The AUTH login, once the client authenticated (STARTTLS forgets it). */
  readonly sasl: SaslLogin | undefined;

  /**
   * Queues a reply ahead of the command's result (DATA's 354, STARTTLS's 220).
   * @param reply the reply
   */
  send(reply: Reply): void;
  /**
   * Runs a policy stage; a refusal is logged in Postfix's shape.
   * @param stage the stage
   * @param verb the command, for the log
   * @param facts the command's facts
   * @returns the refusal, or undefined when allowed: at once when no
   *   restriction runs (or the client was refused at connect), else a promise
   */
  checkPolicy(
    stage: PolicyStage,
    verb: string,
    facts: PolicyFacts,
  ): Reply | undefined | Promise<Reply | undefined>;
  /**
   * Logs a refusal that was not a policy stage's (memory, size, cleanup).
   * @param entry what was refused
   */
  logReject(entry: RejectEntry): void;
  /**
   * Logs a refusal for a bare LF as Postfix's log_whatsup words it:
   * `reject: STAGE from host[addr]: bare <LF> received; from=<...>
   * to=<first recipient> ...` (no reply in the line).
   * @param stage the command stage (END-OF-MESSAGE, BDAT content, the last verb)
   * @param message the queue ID and transaction of a refused message
   */
  logBareLf(stage: string, message?: { id: string; tx: Transaction }): void;
  /**
   * HELO/EHLO accepted: the session is greeted and any transaction ends.
   * @param helo the name
   * @param protocol SMTP or ESMTP
   */
  greet(helo: string, protocol: string): void;
  /**
   * MAIL accepted: a transaction starts.
   * @param start the transaction's sender and parameters
   */
  beginTransaction(start: TransactionStart): void;
  /** Ends the transaction (RSET, end of DATA). */
  endTransaction(): void;
  /**
   * Adds a recipient to the transaction, reserved against the memory budget.
   * @param recipient the address in internal form
   * @param dsn its DSN facts (NOTIFY, ORCPT)
   * @param address the address as the RCPT command gave it (the data and
   *   end-of-data lists see it when it is the only recipient)
   * @returns false when the budget has no room
   */
  addRecipient(recipient: string, dsn?: RecipientDsn, address?: Address): boolean;
  /**
   * Reserves the line buffer's growth for a message body.
   * @returns false when the budget has no room
   */
  reserveBodyBuffer(): boolean;
  /** Gives back what the line buffer no longer holds after a body. */
  trimBodyBuffer(): void;
  /**
   * Reads a message body (up to CRLF.CRLF) into a sink.
   * @param sink where the body goes
   * @returns how the body ended
   */
  readBody(sink: BodySink): Promise<DotBodyResult>;
  /** BDAT in progress (Postfix's SMTPD_PROCESSING_BDAT), if any. */
  readonly bdat: BdatProgress | undefined;
  /**
   * Sets the BDAT progress. A message being received that is replaced is
   * thrown away (queue file removed, memory given back) unless `keep`.
   * RSET, HELO/EHLO, STARTTLS and the end of a transaction clear it.
   * @param next the new progress
   * @param keep whether the replaced draft lives on (BDAT LAST commits it)
   */
  setBdat(next: BdatProgress | undefined, keep?: boolean): void;
  /**
   * A body that takes BDAT chunks into a sink, with the DATA limits.
   * @param sink where the lines go
   * @returns the body
   */
  bdatBody(sink: BodySink): BdatBody;
  /**
   * Reads one BDAT chunk into a body.
   * @param body the message's body
   * @param size the chunk's octets
   * @returns false when the client is gone
   */
  readChunk(body: BdatBody, size: number): Promise<boolean>;
  /**
   * Reads and drops one BDAT chunk.
   * @param size the chunk's octets
   * @returns false when the client is gone
   */
  discardChunk(size: number): Promise<boolean>;
  /**
   * AUTH succeeded: the session is authenticated from now on.
   * @param login the mechanism and the user name
   */
  authenticated(login: SaslLogin): void;
  /**
   * Reads one AUTH response line. It never reaches the transcript or a
   * debug log; a lost connection is "closed", smtpd_timeout throws
   * ReadTimeoutError.
   * @param maxLength the longest line accepted, in bytes
   * @returns the line, "tooLong" or "closed"
   */
  readSecretLine(maxLength: number): Promise<SecretLine>;
  /**
   * Sends the queued replies now (an AUTH challenge before its response).
   */
  flush(): Promise<void>;
  /** What the authentication server is told about the connection. */
  saslClientInfo(): SaslClientInfo;
  /** A message was queued: the queue manager is woken, error counts start over. */
  messageQueued(): void;
  /**
   * Flushes the replies, drops plaintext pipelined after STARTTLS, and runs
   * the handshake; once done, the session starts over (no HELO, no
   * transaction).
   * @returns how the handshake ended
   */
  startTls(): Promise<TlsUpgrade>;
}
