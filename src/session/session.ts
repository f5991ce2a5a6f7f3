/**
 * The SMTP session loop (RFC 5321): settle who the client is (PROXY
 * header, name lookup), greet, then read a command, parse it, look it up
 * in the command table, apply the table's sequence rules, run its handler,
 * and queue the reply; replies go out when the client's input runs dry
 * (RFC 2920). Errors are counted and tarpitted here, in one place
 * ({@linkcode ErrorCounter}), and smtpd_timeout ends a silent session.
 * Handlers see the session only through {@linkcode SessionContext}.
 *
 * @module
 */

import type { CommandCount } from "../log/mod.ts";
import { type DnsResolver, isHeaderLabel } from "../policy/mod.ts";
import { type Line, LineReader, ReadTimeoutError } from "../io/line_reader.ts";
import { ReplyWriter, WriteTimeoutError } from "../io/reply_writer.ts";
import { parseCommand } from "../protocol/parse_command.ts";
import {
  formatReply,
  greeting,
  isError,
  REPLY,
  type Reply,
  reply,
  timeoutExceeded,
  tooManyErrors,
} from "../protocol/reply.ts";
import { authCommandForLog } from "../sasl/mod.ts";
import type { Transport } from "../transport/types.ts";
import { startImplicitTls } from "./commands/starttls.ts";
import { clientFromPeer, type ClientIdentity, nameClient, readProxyClient } from "./client.ts";
import { commandRefusal, COMMANDS, isVerb } from "./command_table.ts";
import { malformedBdat } from "./commands/bdat.ts";
import { bareLfReply } from "./commands/_message.ts";
import { answer, type CommandResult } from "./context.ts";
import type { SessionDeps } from "./deps.ts";
import { ErrorCounter } from "./error_counter.ts";
import { type SessionLimits, sessionLimits } from "./limits.ts";
import { SessionNotices } from "./notices.ts";
import { SessionState } from "./state.ts";
import { ehloDiscards } from "./ehlo_keywords.ts";
import { clientWasHeard, pause, sessionEnded, sessionStarted, turnOver } from "../io/turns.ts";
import {
  bdatArguments,
  escaped,
  isConnectionError,
  pipelinedForLog,
  printable,
  printableText,
} from "./_wire.ts";

export type { SessionDeps } from "./deps.ts";
export type { CommandResult, SessionContext } from "./context.ts";

/** Queued reply text past which the session writes before the next command. */
const REPLY_FLUSH_LENGTH = 4096;

/** The most commands a client sends at once that still counts as a pipelined group (RFC 2920). */
const PIPELINED_GROUP = 8;

/** One SMTP session over one transport. */
export class Session {
  readonly #deps: SessionDeps;
  /** Timeouts and error limits, lowered when the session starts under stress. */
  readonly #limits: SessionLimits;
  readonly #transport: Transport;
  readonly #reader: LineReader;
  readonly #writer: ReplyWriter;
  readonly #dns: DnsResolver;
  readonly #errors: ErrorCounter;
  /** The transcript and the notify_classes hit. */
  readonly #notices = new SessionNotices();
  /** Per verb (lower case): commands seen, and those that did not fail. */
  readonly #counts = new Map<string, CommandCount>();
  /** The same counts by the verb #count is given (a verb of the table, or "unknown"). */
  readonly #countOf = new Map<string, CommandCount>();
  #client: ClientIdentity;
  /** -v, plus debug_peer_level for a client in debug_peer_list: 1 logs the dialog. */
  #verbosity = 0;
  /** Made once the client is known. */
  #state: SessionState | undefined;
  #closed = false;
  /** The improper pipelining line is logged (once a session). */
  #illPipelining = false;
  /**
   * The last command was AUTH: a line that is no command the client sent
   * next may be a response it pipelined (see {@linkcode looksLikeAuthResponse}).
   */
  #afterAuth = false;
  #pendingFirst: Promise<void> | undefined;
  #first: Promise<boolean> | undefined;
  /** Aborted when the client hangs up during its name lookup: its DNS lookups end. */
  #gone = new AbortController();
  /** The reader went to the client for more bytes (a read that may wait: a new turn). */
  #waitedForClient = false;

  /**
   * @param transport the connection
   * @param deps configuration and services
   */
  constructor(transport: Transport, deps: SessionDeps) {
    this.#deps = deps;
    this.#transport = transport;
    this.#limits = sessionLimits(deps.config, deps.stressed());
    const timeoutMs = this.#limits.timeoutMs;
    this.#writer = new ReplyWriter(transport, timeoutMs, (text) => this.#sent(text));
    this.#reader = new LineReader(transport, {
      timeoutMs,
      beforeBlock: () => {
        this.#waitedForClient = true;
        return this.#writer.flush();
      },
      buffers: deps.buffers,
    });
    // The listener learns how long the session waits on DNS (a slow one
    // gives way at the cap, as a slow client does).
    this.#dns = deps.policy.sessionResolver(
      this.#gone.signal,
      transport.waitingOnDns && ((on) => transport.waitingOnDns?.(on)),
    );
    this.#errors = new ErrorCounter(this.#limits, deps.config);
    this.#client = clientFromPeer(transport.peer);
  }

  /** Runs the session to its end; never throws. */
  async run(): Promise<void> {
    const { config, log } = this.#deps;
    // A local submission (stand-alone mode on a pipe or terminal) has no
    // balancer in front of it: it reads no header, as Postfix's stand-alone
    // smtpd reads none, so that one configuration serves the daemon behind
    // HAProxy and `sendmail -bs`-style submissions.
    if (config.smtpd_upstream_proxy_protocol === "haproxy" && !this.#client.local) {
      // Before implicit TLS the header is read to its last byte and no
      // further: the ClientHello behind it belongs to the TLS layer.
      const proxied = await readProxyClient(this.#client, this.#reader, {
        ...this.#deps,
        exact: this.#transport.implicitTls === true,
      });
      if (!proxied) return this.#hangUp();
      this.#client = proxied;
    }
    const overLimit = await this.#deps.admitClient?.(this.#client.address);
    if (overLimit) return await this.#hangUp(overLimit);
    if (!this.#client.local && config.smtpd_peername_lookup && !(await this.#lookUpName())) {
      log.connect(this.#client);
      log.lostConnection(this.#client, "CONNECT");
      log.disconnect(this.#client, this.#counts);
      return await this.#hangUp();
    }
    const client = this.#client;
    log.connect(client);
    try {
      this.#verbosity = log.logger.verbosity;
      if (await this.#deps.debugPeer(client.name, client.address)) {
        this.#verbosity += config.debug_peer_level;
      }
    } catch (err) {
      log.warning(`debug_peer_list lookup failed: ${(err as Error).message}`);
    }
    const ehloDiscard = await this.#ehloDiscard(client.address);
    const bareNewline = await this.#bareNewline(client);
    const state = this.#state = new SessionState({
      deps: this.#deps,
      limits: this.#limits,
      transport: this.#transport,
      reader: this.#reader,
      writer: this.#writer,
      client,
      dns: this.#dns,
      verbosity: this.#verbosity,
      bareNewline,
      errors: this.#errors,
      notices: this.#notices,
      ...(ehloDiscard ? { ehloDiscard } : {}),
    });
    try {
      if (this.#transport.implicitTls && !(await startImplicitTls(state))) {
        this.#closed = true;
        return;
      }
      await this.#talkedFirst(state);
      await state.checkClient();
      // A client refused at connect (smtpd_delay_reject = no) gets the
      // refusal instead of the greeting, counted as an error, as in Postfix.
      const refusal = state.connectRefusal;
      if (!(await this.#greetingDelay())) return;
      // At the cap the listener makes room only now, and not for a client
      // it would refuse: without a place, that one gets its refusal and
      // the session ends.
      const unseated = await this.#deps.seat?.(refusal !== undefined);
      if (unseated) {
        state.send(refusal ?? unseated);
        return;
      }
      if (refusal) this.#errors.reply(refusal);
      state.send(refusal ?? greeting(config.smtpd_banner));
      if (refusal && hangsUp(refusal)) return;
      await this.#loop(state);
    } catch (err) {
      if (err instanceof ReadTimeoutError) {
        log.timeout(client, state.lastVerb, err.bytes);
        state.send(timeoutExceeded(config.myhostname));
      } else if (err instanceof WriteTimeoutError) {
        log.timeout(client, state.lastVerb); // a client that does not read gets no 421 either
      } else if (!this.#closed && isConnectionError(err)) {
        log.lostConnection(client, state.lastVerb);
      } else {
        this.#notices.add("software");
        log.logger.error(
          `session with ${client.name}[${client.address}] failed: ${(err as Error)?.stack ?? err}`,
        );
        state.send(REPLY.localError);
      }
    } finally {
      // Its slot is free before the last reply leaves: a client that
      // connects again as soon as it reads the 221 finds room. A
      // transcript still to be mailed keeps the slot until it is queued.
      const notice = this.#notices.due(this.#deps);
      if (!notice) this.#deps.ending?.();
      // The last replies get a second to leave.
      await this.#writer.flush(1000).catch(() => {});
      this.#writer.close();
      this.#reader.close();
      state.close();
      this.#closed = true;
      log.disconnect(client, this.#counts);
      if (notice) {
        await this.#notices.send(this.#deps, client);
        this.#deps.ending?.();
      }
    }
  }

  /**
   * The client's name lookups (PTR, then forward confirmation), with the
   * first read under way meanwhile: a client that hangs up during them
   * ends its session at once, where it held its slot for up to twice
   * dns_timeout (a reverse zone that never answers, a connect and a close:
   * a few such clients a second kept everyone out), and its wait counts as
   * the client's silence, so at the cap the session gives way as an idle
   * one does. What the client sends meanwhile stays buffered (improper
   * pipelining). Not before implicit TLS: those bytes are the TLS layer's.
   * @returns false when the client hung up first
   */
  async #lookUpName(): Promise<boolean> {
    const { log } = this.#deps;
    const named = nameClient(this.#client, this.#dns, log, this.#gone.signal);
    if (this.#transport.implicitTls) {
      this.#client = await named;
      return true;
    }
    const first = this.#firstRead();
    // Bytes keep the lookup going; the end of the input, a closed
    // connection (closed to make room) or a read error end it.
    const hungUp = first.then(
      (more) => more ? new Promise<never>(() => {}) : false as const,
      () => false as const,
    );
    const client = await Promise.race([named, hungUp]);
    if (client === false) {
      this.#gone.abort();
      return false;
    }
    this.#client = client;
    // smtpd_timeout runs from the greeting, not from the connect.
    this.#reader.renewDeadline();
    return true;
  }

  /**
   * The session's first read, started once: the name lookup, the early
   * talker checks and the command loop share it (two reads at once would
   * fill the same buffer).
   * @returns whether bytes came (false: the input ended)
   */
  #firstRead(): Promise<boolean> {
    if (!this.#first) {
      this.#first = this.#reader.ensure(1);
      // The command loop awaits it (and reports a timeout); should the
      // session end before, its failure must not go unhandled.
      this.#first.catch(() => {});
      this.#pendingFirst = this.#first.then(() => {});
      this.#pendingFirst.catch(() => {});
    }
    return this.#first;
  }

  /**
   * smtpd_discard_ehlo_keyword_address_maps: the client's own list, when a
   * table has its address (looked up at connect, as Postfix does). A table
   * that fails is logged and the smtpd_discard_ehlo_keywords list applies.
   * @param address the client address
   * @returns the client's discarded keywords, or undefined for the default
   */
  async #ehloDiscard(address: string): Promise<ReadonlySet<string> | undefined> {
    const find = this.#deps.ehloDiscardFor;
    if (!find) return undefined;
    try {
      const words = await find(address);
      return words === undefined ? undefined : ehloDiscards([words]);
    } catch (err) {
      this.#deps.log.warning(
        `don't know what EHLO features to announce to ${address}: ${(err as Error).message}`,
      );
      return undefined;
    }
  }

  /**
   * What a bare LF gets from this client, decided at connect as Postfix's
   * smtpd decides it: smtpd_forbid_bare_newline, except that a local
   * submission (Postfix's stand-alone mode) and a client in
   * smtpd_forbid_bare_newline_exclusions get normalize. A table that fails
   * is logged and the client is not excluded.
   * @param client the client
   * @returns normalize or reject
   */
  async #bareNewline(client: ClientIdentity): Promise<"normalize" | "reject"> {
    if (this.#deps.config.smtpd_forbid_bare_newline !== "reject") return "normalize";
    if (client.local) return "normalize";
    const excluded = this.#deps.bareNewlineExcluded;
    try {
      if (excluded && await excluded(client.name, client.address)) return "normalize";
    } catch (err) {
      this.#deps.log.warning(
        `smtpd_forbid_bare_newline_exclusions: cannot look up ${client.name}[${client.address}]: ${
          (err as Error).message
        }`,
      );
    }
    return "reject";
  }

  /**
   * Ends a session that never started (no greeting, nothing logged as a
   * session): the reply, if any, gets a second to leave.
   * @param reply a last word (a 421), or none
   */
  async #hangUp(reply?: Reply): Promise<void> {
    this.#deps.ending?.();
    // Never a plaintext reply before implicit TLS: its client reads TLS
    // records (see refuseConnection in daemon/listener.ts).
    if (reply && !this.#transport.implicitTls) {
      this.#writer.push(formatReply(reply));
      await this.#writer.flush(1000).catch(() => {});
    }
    this.#reader.close();
    this.#writer.close();
    this.#transport.close();
  }

  /**
   * As Postfix before its greeting (and before the client restrictions): a
   * client that has sent something already pipelined improperly. It is
   * logged once (`improper command pipelining after CONNECT`) and
   * reject_unauth_pipelining refuses it later. Looking costs one turn of the
   * event loop: the first read starts and races a zero timer, which it wins
   * only when bytes are waiting; otherwise it goes on, and the command loop
   * waits for it. Only when a restriction list names
   * reject_unauth_pipelining (that turn costs about 7% of the CPU of a
   * one-message connection, and without the restriction only the log line
   * would come of it); not for a stand-alone submission, implicit TLS (the
   * bytes are a ClientHello) or with smtpd_greeting_delay (which refuses
   * such a client itself).
   * @param state the session
   */
  async #talkedFirst(state: SessionState): Promise<void> {
    const cfg = this.#deps.config;
    if (!this.#deps.earlyTalk) return;
    if (this.#client.local || this.#transport.implicitTls || cfg.smtpd_greeting_delay > 0) return;
    if (!this.#reader.hasBuffered()) {
      const first = this.#firstRead();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const talked = await Promise.race([
        first,
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(false), 0);
        }),
      ]);
      clearTimeout(timer);
      if (!talked) return; // the command loop waits for it
    }
    this.#illPipelining = true;
    state.commandSeen("CONNECT", true);
    this.#deps.log.improperPipelining(
      this.#client,
      "CONNECT",
      pipelinedForLog(this.#reader.peekBuffered(100)),
    );
  }

  /**
   * smtpd_greeting_delay: waits before the greeting; a client that talks
   * first is refused (554) and disconnected.
   * @returns false when the client was refused
   */
  async #greetingDelay(): Promise<boolean> {
    const ms = this.#deps.config.smtpd_greeting_delay * 1000;
    if (ms <= 0 || this.#client.local) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const first = this.#firstRead();
    const talked = await Promise.race([
      first.then(() => true),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), ms);
      }),
    ]);
    clearTimeout(timer);
    // The pending read goes on; the command loop's first read waits for it.
    if (!talked) return true;
    this.#deps.log.info(
      `reject: early talker ${this.#client.name}[${this.#client.address}] sent before the greeting`,
    );
    this.#notices.add("protocol");
    this.#writer.push(formatReply(REPLY.earlyTalker));
    this.#closed = true;
    return false;
  }

  async #loop(state: SessionState): Promise<void> {
    if (this.#pendingFirst) {
      await this.#writer.flush(); // the greeting goes out while the first read is pending
      await this.#pendingFirst;
    }
    sessionStarted();
    try {
      await this.#commands(state);
    } finally {
      sessionEnded();
    }
  }

  /** Reads and runs commands until the session ends. */
  async #commands(state: SessionState): Promise<void> {
    const cfg = this.#deps.config;
    let turnStart = performance.now();
    let sinceWait = 0;
    for (;;) {
      // As Postfix does before each command: a long transcript is mailed (if
      // it holds a notify_classes problem) and dropped, so a session that
      // sends many messages does not keep every command it ever sent.
      if (this.#notices.transcript.lineCount > cfg.smtpd_history_flush_threshold) {
        await this.#notices.flush(this.#deps, this.#client);
      }
      // A read that waits for the client ends the turn by itself; commands
      // already here are run for a turn, then the others get theirs (io/turns.ts).
      const buffered = this.#reader.hasBuffered();
      if (buffered && turnOver(turnStart)) {
        await pause();
        turnStart = performance.now();
      }
      // A line partly buffered (a read ends mid-line) is finished by a read
      // that may wait too: that also begins a new turn.
      this.#waitedForClient = false;
      // A line already here is taken without a promise, and so is a command
      // whose handler does not wait, and its reply: 200,000 pipelined NOOPs
      // made 600,000 promises and turns of the microtask queue.
      let line = this.#reader.bufferedLine(cfg.line_length_limit);
      if (line === undefined) line = await this.#reader.readLine(cfg.line_length_limit);
      if (this.#waitedForClient) {
        turnStart = performance.now();
        // A client that sent more than a pipelined group with its last
        // bytes sends in bulk: its next bytes are not what the thread's
        // looks for I/O are for (io/turns.ts).
        if (sinceWait <= PIPELINED_GROUP) clientWasHeard();
        sinceWait = 0;
      }
      sinceWait++;
      if (line === null) {
        if (state.lastVerb !== "QUIT") this.#deps.log.lostConnection(this.#client, state.lastVerb);
        this.#closed = true;
        return;
      }
      const running = this.#command(line, state);
      const result = running instanceof Promise ? await running : running;
      if (result.kind === "gone") {
        this.#closed = true;
        return;
      }
      if (result.kind === "silent") continue;
      const tarpit = this.#respond(result.reply);
      if (tarpit) await tarpit;
      // Replies to a long pipelined burst go out once they pile up, as
      // Postfix's 4 KB stream buffer does: 64 KiB of "EHLO x" lines would
      // otherwise queue 8,192 EHLO replies (1.2 MB) before the next read.
      if (this.#writer.pendingLength > REPLY_FLUSH_LENGTH) await this.#writer.flush();
      // As Postfix: any 421 or 521 reply (a table's "421 text" too) ends the session.
      if (result.kind === "close" || hangsUp(result.reply)) return;
      if (this.#errors.atHardLimit) {
        this.#deps.log.tooManyErrors(this.#client, state.lastVerb);
        state.send(tooManyErrors(cfg.myhostname));
        return;
      }
    }
  }

  /**
   * One command line: parsed, held to the command table's rules, run.
   * @returns the result, or a promise of it when the command waits
   */
  #command(line: Line, state: SessionState): CommandResult | Promise<CommandResult> {
    if (line.end === "partial") {
      // A BDAT line too long to read whole is followed by a chunk of a size
      // not known: 521 and the connection closed, as for a malformed one.
      // "500 line too long" and the next line read as a command made the
      // chunk's bytes commands.
      const bdat = bdatArguments(line.bytes);
      if (bdat !== undefined) return malformedBdat(bdat.slice(0, 100), state);
      return this.#tooLong();
    }
    // As Postfix with smtpd_forbid_bare_newline = reject: a command line
    // that ends in a bare LF is refused and the session ends (not for an
    // excluded client, which has normalize).
    if (line.end === "lf" && state.bareNewline === "reject") {
      state.logBareLf(state.lastVerb);
      return { kind: "close", reply: bareLfReply(state) };
    }
    let parsed = parseCommand(line.bytes, this.#deps.config.smtputf8_enable);
    // A BDAT line holding a byte no command may hold (a control character,
    // bytes that are not UTF-8) is still followed by its chunk. As Postfix,
    // BDAT's own syntax check judges it (521 and the connection closed, or
    // the chunk read when the byte was white space to Postfix's tokenizer:
    // "BDAT\v31 LAST"): "500 bad syntax" and the next line read as a
    // command made the chunk's bytes commands.
    const bdat = "error" in parsed ? bdatArguments(line.bytes) : undefined;
    if (bdat !== undefined) parsed = { verb: "BDAT", arg: bdat };
    // A client that pipelined its AUTH responses sends them as commands when
    // the exchange ends before they are read (AUTH refused, the server
    // failing on the user name, or deciding before the client expected):
    // like AUTH's initial response, they reach neither the transcript nor
    // a log line.
    const secret = this.#afterAuth && looksLikeAuthResponse(parsed);
    this.#afterAuth = secret;
    // AUTH's initial response holds credentials: the transcript and a debug
    // peer's log get "AUTH PLAIN ****" instead.
    this.#received(
      "error" in parsed
        ? "(unparsable command)"
        : secret
        ? "****"
        : parsed.verb === "AUTH"
        ? authCommandForLog(parsed.arg)
        : parsed.text !== undefined
        ? printableText(parsed.text)
        : printable(line.bytes),
    );
    if ("error" in parsed) {
      // Postfix 3.7 answers a line that is not UTF-8 (smtputf8_enable) or
      // holds no word before it looks the command up, and counts it
      // nowhere in the disconnect line; other lines we cannot parse (a
      // control character) count as an unknown command.
      const uncounted = parsed.error === REPLY.badUtf8 || isBlank(line.bytes);
      if (!uncounted) this.#count("unknown");
      return answer(parsed.error);
    }
    if (!isVerb(parsed.verb)) {
      state.commandSeen("UNKNOWN");
      this.#count("unknown");
      // (The line's bytes stay valid: nothing reads before they are used.)
      return this.#unknown(parsed.verb, secret ? "****" : line.bytes, state);
    }
    const { verb, arg } = parsed;
    const spec = COMMANDS[verb];
    // RFC 2920 §3.1: only ESMTP clients may pipeline, and never past a "last" command.
    const early = this.#reader.hasBuffered() && verb !== "QUIT" &&
      (state.protocol !== "ESMTP" || spec.pipelining === "last");
    if (early && !this.#illPipelining && !this.#client.local) {
      // Once a session, as Postfix 3.7 logs it (not for a stand-alone submission).
      this.#illPipelining = true;
      this.#deps.log.improperPipelining(
        this.#client,
        verb,
        pipelinedForLog(this.#reader.peekBuffered(100), verb),
      );
    }
    state.commandSeen(verb, early);
    const count = this.#count(verb);
    const refused = (verb === "QUIT" ? undefined : this.#accessDenied(state)) ??
      commandRefusal(spec, arg, state);
    const result = refused ? answer(refused) : spec.handler(arg, state);
    return result instanceof Promise
      ? result.then((r) => this.#ran(verb, count, r))
      : this.#ran(verb, count, result);
  }

  /** What follows a command that ran: its success and junk counted, AUTH noted. */
  #ran(verb: string, count: CommandCount, result: CommandResult): CommandResult {
    // As Postfix's: a command whose (last) reply is not 4xx or 5xx succeeded.
    if (result.kind === "silent" || (result.kind !== "gone" && result.reply.code < 400)) {
      count.ok++;
    }
    this.#errors.command(verb);
    this.#afterAuth = verb === "AUTH";
    return result;
  }

  /** A line longer than line_length_limit: the rest is read and dropped, then 500. */
  async #tooLong(): Promise<CommandResult> {
    return (await this.#reader.skipLine()) ? answer(REPLY.lineTooLong) : { kind: "gone" };
  }

  /**
   * An unknown command: a client that does not speak SMTP is hung up on.
   * @param verb its first word
   * @param line the line, for the log ("****" when it may be a credential)
   */
  async #unknown(
    verb: string,
    line: Uint8Array | "****",
    state: SessionState,
  ): Promise<CommandResult> {
    if (await this.#nonSmtp(verb)) {
      this.#deps.log.nonSmtpCommand(this.#client, line === "****" ? line : escaped(line));
      return { kind: "close", reply: REPLY.nonSmtpCommand };
    }
    return answer(this.#accessDenied(state) ?? REPLY.unknownCommand);
  }

  /**
   * The answer to every command but QUIT from a client refused at connect
   * (smtpd_delay_reject = no), as Postfix's: `503 5.7.0 Error: access
   * denied for name[addr]` (a 421 or 521 refusal has closed the session).
   */
  #accessDenied(state: SessionState): Reply | undefined {
    const refusal = state.connectRefusal;
    if (!refusal) return undefined;
    return reply(
      503,
      "7.0",
      `Error: access denied for ${this.#client.name}[${this.#client.address}]`,
    );
  }

  /**
   * Whether an unknown command comes from a client that does not speak SMTP
   * (a header line, or a word of smtpd_forbidden_commands such as POST): as
   * in Postfix, whatever the phase, before any other rule. A table that
   * cannot answer is logged and the word counts as allowed (Postfix's choice).
   * @param verb the command's first word
   */
  async #nonSmtp(verb: string): Promise<boolean> {
    if (isHeaderLabel(verb)) return true;
    try {
      return await this.#deps.forbiddenCommand(verb);
    } catch (err) {
      this.#deps.log.warning(`smtpd_forbidden_commands: ${(err as Error).message}`);
      return false;
    }
  }

  /**
   * Queues a reply, counting errors and applying the tarpit.
   * @returns the tarpit's wait, when the reply must wait
   */
  #respond(r: Reply): Promise<void> | undefined {
    const wait = this.#errors.reply(r);
    if (isError(r)) this.#notices.classify(r);
    if (wait !== undefined) return this.#tarpit(wait, r);
    this.#writer.push(formatReply(r));
    return undefined;
  }

  /** Sends what is queued, waits, then queues the reply. */
  async #tarpit(ms: number, r: Reply): Promise<void> {
    await this.#writer.flush();
    await this.#deps.sleep(ms);
    this.#writer.push(formatReply(r));
  }

  /** Records a client line in the transcript and, for debug peers, the log. */
  #received(text: string): void {
    this.#notices.transcript.received(text);
    if (this.#verbosity >= 1) {
      this.#deps.log.info(`< ${this.#client.name}[${this.#client.address}]: ${text}`);
    }
  }

  #sent(text: string): void {
    this.#notices.transcript.sent(text);
    if (this.#verbosity < 1) return;
    for (const line of text.split("\r\n")) {
      if (line !== "") {
        this.#deps.log.info(`> ${this.#client.name}[${this.#client.address}]: ${line}`);
      }
    }
  }

  #count(verb: string): CommandCount {
    // By the verb as given first: no lower-case copy of it per command.
    let count = this.#countOf.get(verb);
    if (!count) {
      const name = verb.toLowerCase();
      count = this.#counts.get(name);
      if (!count) this.#counts.set(name, count = { ok: 0, total: 0 });
      this.#countOf.set(verb, count);
    }
    count.total++;
    return count;
  }
}

/**
 * Whether a command line could be an AUTH response sent early: any line
 * whose first word is no SMTP verb. Not only a base64 word: a client that
 * sends its password in clear text (AUTH LOGIN's second line, spaces and
 * all) sent a credential too, and a digit or a colon in it made the
 * default smtpd_forbidden_commands log the whole line as a non-SMTP
 * command. A line that cannot be parsed (a name in Latin-1, a blank line)
 * is one too: it is logged as "(unparsable command)" anyway, and the lines
 * after it stay hidden. QUIT, NOOP, DATA... stay commands, and show as such.
 * @param parsed the parsed line
 * @returns true for a line to keep out of the logs
 */
function looksLikeAuthResponse(parsed: ReturnType<typeof parseCommand>): boolean {
  return "error" in parsed || !isVerb(parsed.verb);
}

/**
 * Runs one SMTP session over a transport.
 * @param transport the connection
 * @param deps configuration and services
 */
export async function runSession(transport: Transport, deps: SessionDeps): Promise<void> {
  await new Session(transport, deps).run();
}

/** Whether a reply ends the session after it is sent (421, 521), as Postfix's smtpd_chat_reply. */
function hangsUp(r: Reply): boolean {
  return r.code === 421 || r.code === 521;
}

/** Whether a command line holds nothing but blanks and tabs. */
function isBlank(bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 32 || b === 9);
}
