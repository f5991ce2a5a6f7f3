/**
 * A session's state once its client is known: the phase and transaction,
 * the protocol name, the connection (which STARTTLS replaces), and the
 * operations command handlers use, as {@linkcode SessionContext}. Every
 * field is private; handlers change the state only through the
 * operations, and the session loop through the few methods outside that
 * interface.
 *
 * @module
 */

import { type Address, addressText } from "../protocol/address.ts";
import type { Config } from "../config/mod.ts";
import { BdatBody, discardChunk } from "../io/bdat_reader.ts";
import { type BodySink, type DotBodyResult, readDotBody } from "../io/dot_reader.ts";
import type { LineReader } from "../io/line_reader.ts";
import type { ReplyWriter } from "../io/reply_writer.ts";
import type { MailLog } from "../log/mod.ts";
import type { DnsResolver, MessageEffect, PolicyContext, PolicyStage } from "../policy/mod.ts";
import { formatReply, type Reply } from "../protocol/reply.ts";
import type { SaslClientInfo, SecretLine } from "../sasl/mod.ts";
import type { TlsInfo, Transport } from "../transport/types.ts";
import type { ClientIdentity } from "./client.ts";
import type {
  BdatProgress,
  HandlerServices,
  PolicyFacts,
  RejectEntry,
  SaslLogin,
  SessionContext,
  TlsUpgrade,
} from "./context.ts";
import type { SessionDeps } from "./deps.ts";
import type { ErrorCounter } from "./error_counter.ts";
import type { SessionLimits } from "./limits.ts";
import type { MemoryHold } from "./memory_budget.ts";
import type { SessionNotices } from "./notices.ts";
import { heloName, outsideTransaction, type SessionPhase } from "./phase.ts";
import { checkStage } from "./policy_check.ts";
import {
  type MessageActions,
  noActions,
  type RecipientDsn,
  type Transaction,
  type TransactionStart,
} from "./transaction.ts";
import { ehloDiscards } from "./ehlo_keywords.ts";

/** What a session's state is made of. */
export interface SessionStateInit {
  readonly deps: SessionDeps;
  readonly limits: SessionLimits;
  readonly transport: Transport;
  readonly reader: LineReader;
  readonly writer: ReplyWriter;
  readonly client: ClientIdentity;
  /** The session's DNS cache (the client name lookup filled it). */
  readonly dns: DnsResolver;
  /** -v, plus debug_peer_level for a client in debug_peer_list. */
  readonly verbosity: number;
  /**
   * What a bare LF in DATA or BDAT gets from this client:
   * smtpd_forbid_bare_newline, or normalize for an excluded client and a
   * local submission. Absent: smtpd_forbid_bare_newline.
   */
  readonly bareNewline?: "normalize" | "reject";
  readonly errors: ErrorCounter;
  readonly notices: SessionNotices;
  /** The EHLO keywords this client is not offered (smtpd_discard_ehlo_keyword*). */
  readonly ehloDiscard?: ReadonlySet<string>;
}

/** What one recipient costs beyond its text (the array slot, the string's header). */
const RECIPIENT_OVERHEAD = 32;

/** The state of one session, and the operations of its command handlers. */
export class SessionState implements SessionContext {
  readonly config: Config;
  readonly log: MailLog;
  readonly services: HandlerServices;
  readonly limits: SessionLimits;
  readonly client: ClientIdentity;
  readonly ehloDiscard: ReadonlySet<string>;
  readonly #deps: SessionDeps;
  #transport: Transport;
  readonly #reader: LineReader;
  readonly #writer: ReplyWriter;
  readonly #verbosity: number;
  readonly #bareNewline: "normalize" | "reject";
  readonly #errors: ErrorCounter;
  readonly #notices: SessionNotices;
  /** The session's DNS cache. */
  readonly #dns: DnsResolver;
  #phase: SessionPhase = { kind: "connected" };
  /** The transaction's recipient list (the transaction shows it read-only). */
  #recipients: string[] = [];
  /** What access actions asked of the transaction's message. */
  #actions: MessageActions = noActions();
  /** Actions the sender list met at MAIL (smtpd_delay_reject = no), for the transaction MAIL opens. */
  #atMail: readonly MessageEffect[] = [];
  #recipientDsn: (RecipientDsn | undefined)[] = [];
  /**
   * "SMTP" until EHLO says otherwise; HELO sets it back. STARTTLS keeps it,
   * as Postfix's helo_reset() does: a client that said HELO, or nothing,
   * before STARTTLS and no EHLO after it is an SMTP client (Received: "with
   * SMTP", no RFC 3848 "S"), and may not pipeline.
   */
  #protocol = "SMTP";
  /** The client sent commands ahead of time where that is not allowed. */
  #unauthPipelining = false;
  /** With smtpd_delay_reject = no: the client stage's refusal, repeated to every command. */
  #clientRefusal: Reply | undefined;
  #lastVerb = "CONNECT";
  /** The session's share of the memory budget (its line buffer grown for DATA). */
  readonly #memory: MemoryHold;
  /** The transaction's recipient list, reserved against the memory budget. */
  readonly #envelopeMemory: MemoryHold;
  #envelopeBytes = 0;
  /**
   * Postfix's policy "instance": this session (random), then its MAIL
   * transactions; sent only inside a transaction (see #policyFacts).
   */
  readonly #instance = [...crypto.getRandomValues(new Uint32Array(2))].map((n) => n.toString(16))
    .join(".");
  #transactions = 0;
  /** The transaction's first accepted recipient, as its RCPT command gave it. */
  #firstRecipient: Address | undefined;
  #bdat: BdatProgress | undefined;
  /** The AUTH login, if any. */
  #sasl: SaslLogin | undefined;

  /** @param init the session's parts */
  constructor(init: SessionStateInit) {
    this.#deps = init.deps;
    this.config = init.deps.config;
    this.log = init.deps.log;
    this.services = init.deps;
    this.limits = init.limits;
    this.client = init.client;
    this.#transport = init.transport;
    this.#reader = init.reader;
    this.#writer = init.writer;
    this.#verbosity = init.verbosity;
    // "yes" is Postfix's name for normalize from before 3.9.
    this.#bareNewline = init.bareNewline ??
      (this.config.smtpd_forbid_bare_newline === "reject" ? "reject" : "normalize");
    this.#errors = init.errors;
    this.#notices = init.notices;
    this.#dns = init.dns;
    this.ehloDiscard = init.ehloDiscard ?? ehloDiscards(this.config.smtpd_discard_ehlo_keywords);
    this.#memory = init.deps.memory.hold();
    this.#envelopeMemory = init.deps.memory.hold();
  }

  get phase(): SessionPhase {
    return this.#phase;
  }
  get tx(): Transaction | undefined {
    return this.#phase.kind === "inMail" ? this.#phase.tx : undefined;
  }
  get helo(): string | undefined {
    return heloName(this.#phase);
  }
  get protocol(): string {
    return this.#protocol;
  }
  get tls(): TlsInfo | undefined {
    return this.#transport.tls;
  }
  get tlsOffered(): boolean {
    return this.#transport.startTls !== undefined && this.#transport.tls === undefined &&
      !this.ehloDiscard.has("STARTTLS");
  }
  /** What a bare LF gets from this client (see SessionStateInit.bareNewline). */
  get bareNewline(): "normalize" | "reject" {
    return this.#bareNewline;
  }
  get sasl(): SaslLogin | undefined {
    return this.#sasl;
  }
  /** The last command's verb (CONNECT before the first, UNKNOWN for an unknown one). */
  get lastVerb(): string {
    return this.#lastVerb;
  }

  // ---- For the session loop only (not part of SessionContext).

  /**
   * Notes the command at hand, for the policy and the log.
   * @param verb the verb, or UNKNOWN
   * @param early whether the client sent it ahead of time where it may not
   */
  commandSeen(verb: string, early = false): void {
    this.#lastVerb = verb;
    if (early) this.#unauthPipelining = true;
  }

  /** Runs the client stage; with smtpd_delay_reject = no its refusal answers every later stage. */
  async checkClient(): Promise<void> {
    this.#clientRefusal = await this.checkPolicy("client", "CONNECT", {});
  }

  /**
   * The client stage's refusal at connect (smtpd_delay_reject = no), if
   * any: sent instead of the greeting, as Postfix does.
   */
  get connectRefusal(): Reply | undefined {
    return this.#clientRefusal;
  }

  /** Gives back the memory held and closes the connection (the current one, after STARTTLS). */
  close(): void {
    this.setBdat(undefined);
    this.#memory.release();
    this.#envelopeMemory.release();
    this.#transport.close();
  }

  // ---- SessionContext.

  send(reply: Reply): void {
    this.#writer.push(formatReply(reply));
  }

  checkPolicy(
    stage: PolicyStage,
    verb: string,
    facts: PolicyFacts,
  ): Reply | undefined | Promise<Reply | undefined> {
    if (this.#clientRefusal && stage !== "client") return this.#clientRefusal;
    if (this.#deps.policy.runsNothing(stage)) {
      // As after a check that met no access action (see #runStage).
      if (!this.tx && stage === "sender") this.#atMail = [];
      return undefined;
    }
    return this.#runStage(stage, verb, facts);
  }

  async #runStage(
    stage: PolicyStage,
    verb: string,
    facts: PolicyFacts,
  ): Promise<Reply | undefined> {
    // As Postfix's smtpd_check_data and smtpd_check_eod: the data and
    // end-of-data lists (and a policy server's "recipient") see the
    // recipient when the transaction has only one.
    const only = (stage === "data" || stage === "eod") && this.tx?.recipients.length === 1
      ? this.#firstRecipient
      : undefined;
    if (only && !facts.recipient) facts = { ...facts, recipient: only };
    const { refused, effects } = await checkStage(stage, verb, facts, {
      policy: this.#deps.policy,
      log: this.log,
      dns: this.#dns,
      client: this.client,
      verbosity: this.#verbosity,
      helo: facts.helo ?? this.helo,
      protocol: this.#protocol,
      tx: this.tx,
      unauthPipelining: this.#unauthPipelining,
      command: this.#lastVerb,
      more: this.#policyFacts(),
      utf8: this.config.smtputf8_enable,
    });
    if (refused) this.#notices.refusal(refused);
    // As Postfix: the actions stay with the transaction even when this
    // command is refused (they need a sender). With smtpd_delay_reject =
    // no the sender list runs at MAIL, before the transaction it opens:
    // its actions wait for beginTransaction (a refused MAIL opens none, and
    // the next MAIL's check replaces them).
    if (this.tx) this.#apply(effects);
    else if (stage === "sender") this.#atMail = effects;
    return refused;
  }

  /** Adds access actions to the transaction's. */
  #apply(effects: readonly MessageEffect[]): void {
    for (const e of effects) {
      if (e.kind === "hold") this.#actions.hold = true;
      else if (e.kind === "discard") this.#actions.discard = true;
      else if (e.kind === "prepend") this.#actions.prepend.push(e.header);
      // As Postfix: the last FILTER and REDIRECT win, every BCC counts.
      else if (e.kind === "filter") this.#actions.filter = e.target;
      else if (e.kind === "redirect") this.#actions.redirect = e.target;
      // (Met again at each RCPT when the sender list runs again: the queue
      // file writes each address once, see MessageDraft.finish.)
      else if (e.kind === "bcc") this.#actions.bcc.push(e.target);
    }
  }

  /** What a policy service is told beyond the restriction facts. */
  #policyFacts(): Partial<PolicyContext> {
    const server = this.client.server;
    return {
      protocolName: this.#protocol,
      clientPort: this.client.port,
      ...(server ? { server } : {}),
      size: this.tx?.declaredSize,
      recipientCount: this.tx?.recipients.length ?? 0,
      held: this.tx?.actions.hold ?? false,
      // As Postfix: empty outside a mail transaction (the client and HELO
      // lists, MAIL with smtpd_delay_reject = no, VRFY, ETRN). A policy
      // server that caches per instance (policyd-spf) would otherwise take
      // MAIL's new sender for the last transaction's, or for EHLO's check.
      instance: this.tx ? `${this.#instance}.${this.#transactions.toString(16)}` : "",
      stress: this.#deps.stressed(),
      tls: this.#transport.tls,
      ...(this.#sasl ? { sasl: this.#sasl } : {}),
      ...(this.tx?.authSender !== undefined ? { saslSender: this.tx.authSender } : {}),
    };
  }

  logReject(entry: RejectEntry): void {
    this.log.reject({ ...entry, peer: this.client, proto: this.#protocol, helo: this.helo });
  }

  logBareLf(stage: string, message?: { id: string; tx: Transaction }): void {
    // As Postfix's log_whatsup: the sender and first recipient of the
    // transaction refused, or of the one in progress.
    const tx = message?.tx ?? this.tx;
    const first = tx && this.#firstRecipient;
    this.log.whatsup({
      action: "reject",
      stage,
      peer: this.client,
      text: "bare <LF> received",
      ...(message ? { id: message.id } : {}),
      ...(tx ? { from: tx.senderText } : {}),
      ...(first ? { to: addressText(first) } : {}),
      proto: this.#protocol,
      helo: this.helo,
    });
  }

  greet(helo: string, protocol: string): void {
    this.#protocol = protocol;
    this.#leaveTransaction({ kind: "greeted", helo });
  }

  beginTransaction(start: TransactionStart): void {
    this.#recipients = [];
    this.#firstRecipient = undefined;
    this.#actions = noActions();
    this.#apply(this.#atMail);
    this.#atMail = [];
    this.#recipientDsn = [];
    const tx = {
      ...start,
      recipients: this.#recipients,
      actions: this.#actions,
      recipientDsn: this.#recipientDsn,
    };
    this.#transactions++;
    this.#phase = { kind: "inMail", helo: this.helo, tx };
    this.#transport.inTransaction?.(true);
  }

  endTransaction(): void {
    this.#leaveTransaction(outsideTransaction(this.#phase));
  }

  #leaveTransaction(next: SessionPhase): void {
    this.setBdat(undefined);
    this.#phase = next;
    this.#transport.inTransaction?.(false);
    this.#envelopeBytes = 0;
    this.#envelopeMemory.release();
  }

  addRecipient(recipient: string, dsn?: RecipientDsn, address?: Address): boolean {
    const held = this.#envelopeBytes + RECIPIENT_OVERHEAD + 2 * recipient.length +
      2 * (dsn?.orcpt.length ?? 0) + 2 * (dsn?.original?.length ?? 0);
    if (!this.#envelopeMemory.ensure(held)) return false;
    this.#envelopeBytes = held;
    this.#recipients.push(recipient);
    this.#recipientDsn.push(dsn);
    if (this.#recipients.length === 1) this.#firstRecipient = address;
    return true;
  }

  reserveBodyBuffer(): boolean {
    // 64 KiB, or twice a line when line_length_limit is larger.
    return this.#memory.ensure(Math.max(65536, 2 * (this.config.line_length_limit + 2)));
  }

  trimBodyBuffer(): void {
    this.#memory.trim(this.#reader.buffer.byteLength);
  }

  readBody(sink: BodySink): Promise<DotBodyResult> {
    return readDotBody(this.#reader, sink, {
      maxBytes: this.config.message_size_limit,
      maxLine: this.config.line_length_limit,
      bareNewline: this.#bareNewline,
    });
  }

  get bdat(): BdatProgress | undefined {
    return this.#bdat;
  }

  setBdat(next: BdatProgress | undefined, keep = false): void {
    const prev = this.#bdat;
    this.#bdat = next;
    if (keep || prev?.kind !== "receiving" || prev === next) return;
    prev.draft.abort().catch((err) => {
      this.log.warning(`${prev.draft.id}: cannot remove queue file: ${(err as Error).message}`);
    });
    prev.memory.release();
    this.trimBodyBuffer();
  }

  bdatBody(sink: BodySink): BdatBody {
    return new BdatBody(sink, {
      maxBytes: this.config.message_size_limit,
      maxLine: this.config.line_length_limit,
      bareNewline: this.#bareNewline,
    });
  }

  readChunk(body: BdatBody, size: number): Promise<boolean> {
    return body.readChunk(this.#reader, size);
  }

  discardChunk(size: number): Promise<boolean> {
    return discardChunk(this.#reader, size);
  }

  authenticated(login: SaslLogin): void {
    this.#sasl = login;
  }

  async readSecretLine(maxLength: number): Promise<SecretLine> {
    const line = await this.#reader.readLine(maxLength);
    if (line === null) return { kind: "closed" };
    if (line.end === "partial") {
      return (await this.#reader.skipLine()) ? { kind: "tooLong" } : { kind: "closed" };
    }
    return { kind: "line", text: new TextDecoder().decode(line.bytes) };
  }

  flush(): Promise<void> {
    return this.#writer.flush();
  }

  saslClientInfo(): SaslClientInfo {
    const server = this.client.server;
    const port = Number(this.client.port);
    return {
      ...(this.client.local ? {} : { clientAddress: this.client.address }),
      ...(Number.isInteger(port) && port > 0 ? { clientPort: port } : {}),
      ...(server ? { serverAddress: server.hostname, serverPort: server.port } : {}),
      tls: this.#transport.tls !== undefined,
    };
  }

  messageQueued(): void {
    this.#deps.queued();
    this.#errors.reset();
  }

  async startTls(): Promise<TlsUpgrade> {
    const upgrade = this.#transport.startTls;
    if (!upgrade) throw new Error("STARTTLS is not offered on this connection");
    // The 220 may wait in the writer: from now on nothing goes to this
    // client in plaintext (no 421 from a listener making room).
    this.#transport.tlsBegins?.();
    await this.#writer.flush();
    const injected = this.#reader.peek().length;
    this.#reader.discardBuffered();
    if (injected > 0) {
      this.log.warning(
        `${this.client.name}[${this.client.address}]: discarded ${injected} bytes of plaintext pipelined after STARTTLS`,
      );
    }
    let secure;
    try {
      secure = await upgrade(this.limits.starttlsTimeoutMs);
    } catch (error) {
      return { kind: "failed", error };
    }
    this.#transport = secure;
    this.#reader.setSource(secure);
    this.#writer.setSink(secure);
    // RFC 3207 §4.2 and Postfix: what was learned before TLS is forgotten, AUTH too.
    this.#sasl = undefined;
    this.#leaveTransaction({ kind: "connected" });
    return { kind: "done" };
  }
}
