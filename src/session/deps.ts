/**
 * What a session needs from outside. Only the runtime and the daemon build
 * the real ones; tests build fakes.
 *
 * @module
 */

import type { Cleanup } from "../cleanup/mod.ts";
import type { Config } from "../config/mod.ts";
import type { FlushTrigger } from "../flush/mod.ts";
import type { MailLog } from "../log/mod.ts";
import type { CommandMatcher, PeerMatcher, Policy } from "../policy/mod.ts";
import type { Reply } from "../protocol/reply.ts";
import type { QueueName } from "../queue/mod.ts";
import type { IoBuffers } from "../io/io_buffers.ts";
import type { Network } from "../policy/mod.ts";
import type { LimitedEvent, RateUse } from "../transport/rate_limits.ts";
import type { SessionSasl } from "../sasl/mod.ts";
import type { MemoryBudget } from "./memory_budget.ts";

/** Everything a session needs from outside; the runtime builds the real ones. */
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
  /**
   * Whether a client is in smtpd_forbid_bare_newline_exclusions (its bare
   * LF is treated as CRLF even with reject). Absent: no client is.
   */
  readonly bareNewlineExcluded?: PeerMatcher;
  /** Whether smtpd_forbidden_commands has an unknown command's first word (throws on a table failure). */
  readonly forbiddenCommand: CommandMatcher;
  /**
   * Whether a session looks for a client that talks before its greeting
   * (only when a restriction list names reject_unauth_pipelining: the look
   * costs each connection a turn of the event loop).
   */
  readonly earlyTalk?: boolean;
  /** Whether the service is under stress now (stress mode's lower limits apply). */
  readonly stressed: () => boolean;
  /**
   * Behind a PROXY balancer: counts the client from the header against
   * smtpd_client_connection_count_limit and its connection rate, and at
   * default_process_limit makes room for it (or waits for a place); a reply
   * means refused (send it and hang up). Absent when the client was
   * counted at accept.
   */
  readonly admitClient?: (address: string) => Reply | undefined | Promise<Reply | undefined>;
  /**
   * Asked once the client has been judged at connect (the client
   * restrictions with smtpd_delay_reject = no, smtpd_greeting_delay), just
   * before the greeting: a connection that came at default_process_limit
   * takes its place only now, so that a client refused at connect makes no
   * room (closes nobody's session); an early talker is refused before. Resolves to
   * undefined once the session has its place, else to the listener's
   * refusal (421): the session then sends the client its own refusal, or
   * that one, and ends. Absent, or resolving at once, when the session has
   * its place already.
   */
  readonly seat?: (refused: boolean) => Promise<Reply | undefined>;
  /**
   * Told once, when the session has nothing left to do with its client
   * but write its last reply (221 to QUIT, a 421) and close: the listener
   * gives the session's connection slots back then, before a client that
   * reconnects as soon as it reads that reply can be counted against them.
   * A session with a notify_classes transcript to mail tells it only once
   * the transcript is queued (that work is the slot's too).
   */
  readonly ending?: () => void;
  /** The process's memory budget for messages in progress (smtpd_memory_budget). */
  readonly memory: MemoryBudget;
  /** The thread's reusable line buffers (its runtime's); absent: the session's own. */
  readonly buffers?: IoBuffers;
  /** smtpd_upstream_proxy_networks, compiled once (the runtime's); absent: compiled per use. */
  readonly proxyNetworks?: readonly Network[];
  /**
   * Counts a client event against its smtpd_client_*_rate_limit; the
   * refusal when the client is over it; `name`, when known, goes into the
   * warning as Postfix's name[address]; `use` "count": counted, never
   * refused nor logged (an event refused already); "peek": the refusal the
   * next event would get, not counted nor logged. Absent: no rate limits
   * (stand-alone).
   */
  readonly overRate?: (
    event: LimitedEvent,
    address: string,
    name?: string,
    use?: RateUse,
  ) => Reply | undefined;
  /**
   * smtpd_discard_ehlo_keyword_address_maps: the keyword list for a client
   * address, or undefined when no table has it. Absent: no such tables.
   */
  readonly ehloDiscardFor?: (address: string) => Promise<string | undefined>;
  /**
   * SMTP AUTH (smtpd_sasl_auth_enable, daemon mode only, as Postfix).
   * Absent: AUTH is not offered and gets 503 5.5.1.
   */
  readonly sasl?: SessionSasl;
}
