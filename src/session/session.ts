/**
 * The SMTP session loop (RFC 5321): greet, then read a command, parse it,
 * look it up in the command table, run its handler, and queue the reply;
 * replies go out when the client's input runs dry (RFC 2920). Error
 * counting and tarpitting (smtpd_error_sleep_time, smtpd_soft_error_limit,
 * smtpd_hard_error_limit) and smtpd_timeout live here, in one place.
 *
 * @module
 */

import type { Cleanup } from "../cleanup/mod.ts";
import type { FlushTrigger } from "../flush/mod.ts";
import type { Config } from "../config/mod.ts";
import { LineReader, ReadTimeoutError } from "../io/line_reader.ts";
import { ReplyWriter, WriteTimeoutError } from "../io/reply_writer.ts";
import type { LogPeer, MailLog } from "../log/mod.ts";
import {
  type ClientNameStatus,
  describeTraceEvent,
  type DnsResolver,
  lookupClientName,
  type PeerMatcher,
  type Policy,
  type PolicyContext,
  type PolicyStage,
  Trace,
} from "../policy/mod.ts";
import { sendTranscript, Transcript } from "./transcript.ts";
import { type ProxyResult, readProxyHeader, upstreamAllowed } from "../transport/proxy_protocol.ts";
import type { Address } from "../protocol/address.ts";
import { parseCommand } from "../protocol/parse_command.ts";
import { closing, formatReply, isError, REPLY, type Reply, reply } from "../protocol/reply.ts";
import type { QueueName } from "../queue/mod.ts";
import type { Transport } from "../transport/types.ts";
import { COMMANDS, isVerb } from "./command_table.ts";
import type { SessionPhase } from "./phase.ts";
import type { Transaction } from "./transaction.ts";
import { type SessionLimits, sessionLimits } from "./limits.ts";
import type { MemoryBudget, MemoryHold } from "./memory_budget.ts";

/** Everything a session needs from outside; only app.ts builds the real ones. */
export interface SessionDeps {
  readonly config: Config;
  readonly policy: Policy;
  readonly cleanup: Cleanup;
  readonly log: MailLog;
  readonly clock: () => Date;
  /** Free bytes in the queue file system, or undefined when unknown. */
  readonly freeSpace: () => number | undefined;
  readonly sleep: (ms: number) => Promise<void>;
  /** incoming (daemon) or maildrop (stand-alone). */
  readonly queue: QueueName;
  /** ETRN's flush trigger. */
  readonly flush: FlushTrigger;
  /** Called after each committed queue file (wakes Postfix's qmgr or pickup). */
  readonly queued: () => void;
  /** Whether a client is in debug_peer_list. */
  readonly debugPeer: PeerMatcher;
  /** Whether the service is under stress now (stress mode's lower limits apply). */
  readonly stressed: () => boolean;
  /**
   * Behind a PROXY balancer: counts the client from the header against
   * smtpd_client_connection_count_limit; a reply means over the limit
   * (send it and hang up). Absent when the client was counted at accept.
   */
  readonly admitClient?: (address: string) => Reply | undefined;
  /** The process's memory budget for messages in progress (smtpd_memory_budget). */
  readonly memory: MemoryBudget;
}

/** Sessions of this thread so far, and a random prefix that tells threads apart. */
let sessionSerial = 0;
const INSTANCE_PREFIX = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(16);

/** The notify_classes a session can hit. */
export type NoticeClass = "policy" | "protocol" | "resource" | "software";

/** What a command handler returns. */
export interface CommandResult {
  readonly reply: Reply;
  /** Close the connection after this reply. */
  readonly close?: boolean;
  /** The error already counted / nothing to count (e.g. DATA body errors). */
  readonly noErrorCount?: boolean;
  /** The client is gone: send nothing, end the session. */
  readonly gone?: boolean;
  /** The handler already answered (STARTTLS's 220): send nothing, go on. */
  readonly silent?: boolean;
}

/** One SMTP session over one transport. */
export class Session {
  readonly deps: SessionDeps;
  readonly config: Config;
  /** Timeouts and error limits, lowered when the session starts under stress. */
  readonly limits: SessionLimits;
  transport: Transport;
  readonly reader: LineReader;
  readonly writer: ReplyWriter;
  peer: LogPeer;
  reverseName = "unknown";
  nameStatus: ClientNameStatus = "notFound";
  reverseStatus: ClientNameStatus = "notFound";
  /** The session's DNS cache. */
  readonly dns: DnsResolver;
  /** The client sent commands ahead of time where that is not allowed. */
  unauthPipelining = false;
  /** With smtpd_delay_reject = no: the client stage's refusal, repeated to every command. */
  clientRefusal: Reply | undefined;
  /** True for stand-alone submissions without a network peer. */
  local: boolean;
  clientPort: string;
  phase: SessionPhase = { kind: "ready" };
  helo: string | undefined;
  /** "SMTP" after HELO, "ESMTP" after EHLO. */
  protocol = "SMTP";
  errorCount = 0;
  /** NOOP/VRFY/ETRN/RSET/HELP commands since the last message (smtpd_junk_command_limit). */
  junkCommands = 0;
  lastVerb = "CONNECT";
  readonly counts = new Map<string, number>();
  /** Every command and reply (message bodies left out), for notify_classes. */
  readonly transcript = new Transcript();
  /** The notify_classes this session hit. */
  readonly notices = new Set<NoticeClass>();
  /** Log every command and reply (debug_peer_list, -v). */
  chat = false;
  /**
   * The session's log verbosity: -v, plus debug_peer_level for a client in
   * debug_peer_list. 1: every command and reply; 2: every restriction step.
   */
  verbosity = 0;
  /** The session's share of the memory budget (its line buffer grown for DATA). */
  readonly memory: MemoryHold;
  /**
   * The transaction's recipient list, reserved against the memory budget
   * (smtpd_recipient_limit addresses of up to line_length_limit bytes each).
   */
  readonly envelopeMemory: MemoryHold;
  /** Bytes the transaction's recipient list holds, as reserved in envelopeMemory. */
  envelopeBytes = 0;
  #closed = false;
  /** Postfix's policy "instance": this session, then the MAIL count. */
  readonly #instance = `${INSTANCE_PREFIX}.${(++sessionSerial).toString(16)}`;
  #pendingFirst: Promise<void> | undefined;

  /**
   * @param transport the connection
   * @param deps configuration and services
   */
  constructor(transport: Transport, deps: SessionDeps) {
    this.deps = deps;
    this.config = deps.config;
    this.transport = transport;
    this.limits = sessionLimits(deps.config, deps.stressed());
    const timeoutMs = this.limits.timeoutMs;
    this.writer = new ReplyWriter(transport, timeoutMs, (text) => this.#sent(text));
    this.reader = new LineReader(transport, {
      timeoutMs,
      beforeBlock: () => this.writer.flush(),
    });
    this.dns = deps.policy.sessionResolver();
    this.memory = deps.memory.hold();
    this.envelopeMemory = deps.memory.hold();
    const p = transport.peer;
    if (p.kind === "network") {
      this.peer = { name: p.name, address: p.address };
      this.local = false;
      this.clientPort = p.port;
    } else {
      this.peer = { name: "localhost", address: "127.0.0.1" };
      this.local = true;
      this.clientPort = "0";
    }
  }

  /** The current transaction, if any. */
  get tx(): Transaction | undefined {
    return this.phase.kind === "inMail" ? this.phase.tx : undefined;
  }

  /** Starts a transaction (after MAIL FROM is accepted). */
  beginTransaction(tx: Transaction): void {
    this.phase = { kind: "inMail", tx };
    this.transport.inTransaction?.(true);
  }

  /** Drops the transaction (RSET, HELO, end of DATA). */
  endTransaction(): void {
    this.phase = { kind: "ready" };
    this.transport.inTransaction?.(false);
    this.envelopeBytes = 0;
    this.envelopeMemory.release();
  }

  /**
   * Session facts for a policy stage.
   * @param extra the sender/recipient of the command at hand
   * @returns the policy context
   */
  policyContext(
    extra: { sender?: Address; recipient?: Address; etrnDomain?: string } = {},
  ): PolicyContext {
    const p = this.transport.peer;
    return {
      clientAddress: this.peer.address,
      clientName: this.peer.name,
      reverseName: this.reverseName,
      nameStatus: this.local ? "ok" : this.nameStatus,
      reverseStatus: this.local ? "ok" : this.reverseStatus,
      local: this.local,
      helo: this.helo,
      sender: extra.sender ?? this.tx?.sender,
      recipient: extra.recipient,
      etrnDomain: extra.etrnDomain,
      unauthPipelining: this.unauthPipelining,
      command: this.lastVerb,
      protocolName: this.protocol,
      clientPort: this.clientPort,
      ...(p.kind === "network" && p.server ? { server: p.server } : {}),
      size: this.tx?.declaredSize,
      instance: `${this.#instance}.${(this.counts.get("MAIL") ?? 0).toString(16)}`,
      stress: this.deps.stressed(),
      tls: this.transport.tls,
    };
  }

  /**
   * Runs a policy stage and logs a refusal in Postfix's shape.
   * @param stage the stage
   * @param verb the command, for the log ("RCPT")
   * @param extra sender/recipient
   * @returns the refusal reply, or undefined when allowed
   */
  async checkPolicy(
    stage: PolicyStage,
    verb: string,
    extra: {
      sender?: Address;
      recipient?: Address;
      from?: string;
      to?: string;
      etrnDomain?: string;
    },
  ): Promise<Reply | undefined> {
    if (this.clientRefusal && stage !== "client") return this.clientRefusal;
    const trace = this.verbosity >= 2 ? new Trace() : undefined;
    const decision = await this.deps.policy.check(stage, this.policyContext(extra), {
      dns: this.dns,
      ...(trace ? { trace } : {}),
    });
    if (trace) {
      const who = `${this.peer.name}[${this.peer.address}]`;
      for (const ev of trace.events) {
        this.deps.log.logger.debug(`${verb} from ${who}: ${describeTraceEvent(ev)}`, 0);
      }
    }
    if (decision.kind !== "reject" && decision.kind !== "defer") return undefined;
    this.deps.log.reject({
      stage: verb,
      peer: this.peer,
      reply: decision.reply,
      from: extra.from ?? this.tx?.senderText,
      to: extra.to,
      proto: this.protocol,
      helo: this.helo,
    });
    if (this.verbosity >= 1) this.deps.log.logger.debug(`NOQUEUE: decided by ${decision.by}`, 0);
    this.notices.add("policy");
    return decision.reply;
  }

  /**
   * Records a client line in the transcript and, for debug peers, the log.
   * @param text the command as received (message bodies are never passed here)
   */
  received(text: string): void {
    this.transcript.received(text);
    if (this.chat) this.deps.log.info(`< ${this.peer.name}[${this.peer.address}]: ${text}`);
  }

  #sent(text: string): void {
    this.transcript.sent(text);
    if (!this.chat) return;
    for (const line of text.split("\r\n")) {
      if (line !== "") this.deps.log.info(`> ${this.peer.name}[${this.peer.address}]: ${line}`);
    }
  }

  #classify(r: Reply): void {
    if ([500, 501, 502, 503, 555].includes(r.code) || (r.code === 550 && r.detail === "5.2")) {
      this.notices.add("protocol");
    } else if ((r.code === 451 || r.code === 452) && r.detail?.startsWith("3.")) {
      this.notices.add("resource");
    }
  }

  /** Queues a reply, counting errors and applying the tarpit. */
  async respond(result: CommandResult): Promise<void> {
    const r = result.reply;
    if (isError(r) && !result.noErrorCount && r.code !== 421) this.errorCount++;
    if (isError(r)) this.#classify(r);
    const cfg = this.config;
    if (this.errorCount >= cfg.smtpd_soft_error_limit) {
      await this.writer.flush();
      await this.deps.sleep(this.errorCount * 1000);
    } else if (isError(r) && cfg.smtpd_error_sleep_time > 0) {
      await this.writer.flush();
      await this.deps.sleep(cfg.smtpd_error_sleep_time * 1000);
    }
    this.writer.push(formatReply(r));
  }

  /** Runs the session to its end; never throws. */
  async run(): Promise<void> {
    const log = this.deps.log;
    if (this.config.smtpd_upstream_proxy_protocol === "haproxy" && !(await this.#readProxy())) {
      return this.#hangUp();
    }
    const overLimit = this.deps.admitClient?.(this.peer.address);
    if (overLimit) return await this.#hangUp(overLimit);
    try {
      if (!this.local && this.config.smtpd_peername_lookup) {
        const n = await lookupClientName(this.peer.address, this.dns, (t) => log.warning(t));
        this.peer = { name: n.name, address: this.peer.address };
        this.reverseName = n.reverseName;
        this.nameStatus = n.nameStatus;
        this.reverseStatus = n.reverseStatus;
      }
    } catch (err) {
      log.warning(`client name lookup failed: ${(err as Error).message}`);
    }
    log.connect(this.peer);
    try {
      this.verbosity = log.logger.verbosity;
      if (await this.deps.debugPeer(this.peer.name, this.peer.address)) {
        this.verbosity += this.config.debug_peer_level;
      }
      this.chat = this.verbosity >= 1;
    } catch (err) {
      log.warning(`debug_peer_list lookup failed: ${(err as Error).message}`);
    }
    try {
      this.clientRefusal = await this.checkPolicy("client", "CONNECT", {});
      if (!(await this.#greetingDelay())) return;
      this.writer.push(
        formatReply({ code: 220, detail: undefined, text: this.config.smtpd_banner }),
      );
      await this.#loop();
    } catch (err) {
      if (err instanceof ReadTimeoutError) {
        log.timeout(this.peer, this.lastVerb);
        this.writer.push(
          formatReply(closing(this.config.myhostname, "4.2", "Error: timeout exceeded")),
        );
      } else if (err instanceof WriteTimeoutError) {
        log.timeout(this.peer, this.lastVerb); // a client that does not read gets no 421 either
      } else if (!this.#closed && isConnectionError(err)) {
        log.lostConnection(this.peer, this.lastVerb);
      } else {
        this.notices.add("software");
        log.logger.error(
          `session with ${this.peer.name}[${this.peer.address}] failed: ${
            (err as Error)?.stack ?? err
          }`,
        );
        this.writer.push(formatReply(REPLY.localError));
      }
    } finally {
      // The last replies get a second to leave.
      await this.writer.flush(1000).catch(() => {});
      this.writer.close();
      this.reader.close();
      this.memory.release();
      this.envelopeMemory.release();
      this.transport.close();
      this.#closed = true;
      log.disconnect(this.peer, this.counts);
      await this.#notify();
    }
  }

  /**
   * Ends a session that never started (no greeting, nothing logged as a
   * session): the reply, if any, gets a second to leave.
   * @param reply a last word (a 421), or none
   */
  async #hangUp(reply?: Reply): Promise<void> {
    if (reply) {
      this.writer.push(formatReply(reply));
      await this.writer.flush(1000).catch(() => {});
    }
    this.reader.close();
    this.writer.close();
    this.transport.close();
  }

  /**
   * smtpd_greeting_delay: waits before the greeting; a client that talks
   * first is refused (554) and disconnected.
   * @returns false when the client was refused
   */
  async #greetingDelay(): Promise<boolean> {
    const ms = this.config.smtpd_greeting_delay * 1000;
    if (ms <= 0 || this.local) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const first = this.reader.ensure(1);
    const talked = await Promise.race([
      first.then(() => true),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), ms);
      }),
    ]);
    clearTimeout(timer);
    if (!talked) {
      // The pending read goes on; the command loop's first read waits for it.
      this.#pendingFirst = first.then(() => {});
      return true;
    }
    this.deps.log.info(
      `reject: early talker ${this.peer.name}[${this.peer.address}] sent before the greeting`,
    );
    this.notices.add("protocol");
    this.writer.push(
      formatReply(
        reply(554, "5.1", "Error: SMTP protocol synchronization: you talked before the greeting"),
      ),
    );
    this.#closed = true;
    return false;
  }

  /** Reads the PROXY header; false when the connection must be dropped. */
  async #readProxy(): Promise<boolean> {
    // Only a balancer in smtpd_upstream_proxy_networks may say who the client is.
    if (!upstreamAllowed(this.config, this.peer.address)) {
      this.deps.log.warning(
        `haproxy read: connection from [${this.peer.address}]:${this.clientPort} is not in smtpd_upstream_proxy_networks: dropping connection`,
      );
      return false;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<ProxyResult>((r) => {
      timer = setTimeout(
        () => r({ kind: "error", reason: "timeout" }),
        this.config.smtpd_upstream_proxy_timeout * 1000,
      );
    });
    let result: ProxyResult;
    try {
      result = await Promise.race([readProxyHeader(this.reader), timeout]);
    } catch (err) {
      result = { kind: "error", reason: (err as Error).message };
    } finally {
      clearTimeout(timer);
    }
    if (result.kind === "error") {
      this.deps.log.warning(
        `haproxy read: ${result.reason} from [${this.peer.address}]:${this.clientPort}: dropping connection`,
      );
      return false;
    }
    if (result.kind === "proxied") {
      // Canonical text from protocol/ip.ts: nothing of the header's own bytes.
      this.peer = { name: "unknown", address: result.address };
      this.clientPort = result.port;
      this.local = false;
    }
    return true;
  }

  /** Mails the transcript if it holds a problem, then starts a new one. */
  async #flushHistory(): Promise<void> {
    await this.#notify();
    this.notices.clear();
    this.transcript.clear();
  }

  async #notify(): Promise<void> {
    const wanted = this.config.notify_classes.filter((c) => this.notices.has(c as NoticeClass));
    if (wanted.length === 0) return;
    try {
      const id = await sendTranscript(this, wanted);
      if (id) {
        this.deps.log.info(
          `${id}: notice of ${
            wanted.join(", ")
          } problems sent to ${this.config.error_notice_recipient}`,
        );
      }
    } catch (err) {
      this.deps.log.warning(`cannot queue the session transcript: ${(err as Error).message}`);
    }
  }

  async #loop(): Promise<void> {
    const cfg = this.config;
    if (this.#pendingFirst) {
      await this.writer.flush(); // the greeting goes out while the first read is pending
      await this.#pendingFirst;
    }
    for (;;) {
      // As Postfix does before each command: a long transcript is mailed (if
      // it holds a notify_classes problem) and dropped, so a session that
      // sends many messages does not keep every command it ever sent.
      if (this.transcript.lineCount > cfg.smtpd_history_flush_threshold) await this.#flushHistory();
      const line = await this.reader.readLine(cfg.line_length_limit);
      if (line === null) {
        if (this.lastVerb !== "QUIT") this.deps.log.lostConnection(this.peer, this.lastVerb);
        this.#closed = true;
        return;
      }
      let result: CommandResult;
      if (line.end === "partial") {
        if (!(await this.reader.skipLine())) return;
        result = { reply: REPLY.lineTooLong };
      } else {
        const parsed = parseCommand(line.bytes);
        this.received("error" in parsed ? "(unparsable command)" : printable(line.bytes));
        if ("error" in parsed) {
          result = { reply: parsed.error };
        } else if (!isVerb(parsed.verb)) {
          this.lastVerb = "UNKNOWN";
          this.#count("unknown");
          result = { reply: REPLY.unknownCommand };
        } else {
          this.lastVerb = parsed.verb;
          this.#count(parsed.verb);
          // RFC 2920 §3.1: only ESMTP clients may pipeline, and never past a "last" command.
          if (
            this.reader.hasBuffered() &&
            (this.protocol !== "ESMTP" || COMMANDS[parsed.verb].pipelining === "last") &&
            parsed.verb !== "QUIT"
          ) {
            this.unauthPipelining = true;
          }
          result = await COMMANDS[parsed.verb].handler(parsed.arg, this);
          // As Postfix: past smtpd_junk_command_limit, each junk command is an error.
          if (
            JUNK_COMMANDS.has(parsed.verb) && this.junkCommands++ > this.limits.junkCommandLimit
          ) {
            this.errorCount++;
          }
        }
      }
      if (result.gone) {
        this.#closed = true;
        return;
      }
      if (result.silent) continue;
      await this.respond(result);
      // Replies to a long pipelined burst go out once they pile up, as
      // Postfix's 4 KB stream buffer does: 64 KiB of "EHLO x" lines would
      // otherwise queue 8,192 EHLO replies (1.2 MB) before the next read.
      if (this.writer.pendingLength > REPLY_FLUSH_LENGTH) await this.writer.flush();
      if (result.close) return;
      if (this.errorCount >= this.limits.hardErrorLimit) {
        this.deps.log.tooManyErrors(this.peer, this.lastVerb);
        this.writer.push(formatReply(closing(cfg.myhostname, "7.0", "Error: too many errors")));
        return;
      }
    }
  }

  #count(verb: string): void {
    this.counts.set(verb, (this.counts.get(verb) ?? 0) + 1);
  }
}

/**
 * The commands smtpd_junk_command_limit counts (cost the client nothing, us
 * something): Postfix's NOOP, VRFY, ETRN and RSET, and HELP, which Postfix
 * does not implement (there a HELP is a 502 error, so a flood meets the
 * tarpit; here it would be answered 214 without end).
 */
const JUNK_COMMANDS: ReadonlySet<string> = new Set(["NOOP", "VRFY", "ETRN", "RSET", "HELP"]);

/** Queued reply text past which the session writes before the next command. */
const REPLY_FLUSH_LENGTH = 4096;

/** Connection-level failures: the client went away or the socket broke. */
function isConnectionError(err: unknown): boolean {
  return err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BrokenPipe ||
    err instanceof Deno.errors.ConnectionAborted || err instanceof Deno.errors.NotConnected ||
    err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted ||
    (err instanceof Error && /timed out writing|closed|reset|broken pipe/i.test(err.message));
}

const decoder = new TextDecoder();

/** A command line as log-safe text. */
function printable(bytes: Uint8Array): string {
  return decoder.decode(bytes).replace(/[^\x20-\x7e\u00a0-\uffff]/g, "?");
}

/**
 * Runs one SMTP session over a transport.
 * @param transport the connection
 * @param deps configuration and services
 */
export async function runSession(transport: Transport, deps: SessionDeps): Promise<void> {
  await new Session(transport, deps).run();
}
