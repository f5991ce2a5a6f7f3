/**
 * One policy stage for a session: the session's facts go to the
 * restriction evaluator, each step is logged for a debug peer
 * (debug_peer_level 2), and a refusal is logged in Postfix's shape
 * ("NOQUEUE: reject: RCPT from ..."), and so are the access actions met
 * on the way ("hold:", "discard:", "info:", "warn:") and the refusals
 * warn_if_reject turned into warnings ("reject_warning:"); those that
 * change the message are handed back for the transaction.
 *
 * @module
 */

import type { MailLog } from "../log/mod.ts";
import {
  describeTraceEvent,
  type DnsResolver,
  type Policy,
  type PolicyContext,
  type PolicyStage,
  Trace,
} from "../policy/mod.ts";
import { isRawByteChar } from "../io/wire_text.ts";
import type { Reply } from "../protocol/reply.ts";
import type { MessageEffect } from "../policy/decision.ts";
import type { ClientIdentity } from "./client.ts";
import type { PolicyFacts } from "./context.ts";
import type { Transaction } from "./transaction.ts";

/** The session's side of a policy check. */
export interface StageSession {
  readonly policy: Policy;
  readonly log: MailLog;
  readonly dns: DnsResolver;
  readonly client: ClientIdentity;
  /** 2 and more: every restriction step is logged. */
  readonly verbosity: number;
  readonly helo: string | undefined;
  readonly protocol: string;
  readonly tx: Transaction | undefined;
  readonly unauthPipelining: boolean;
  /** The command at hand (or CONNECT), as reject_unauth_pipelining sees it. */
  readonly command: string;
  /** Facts for policy services (check_policy_service). */
  readonly more?: Partial<PolicyContext>;
  /** smtputf8_enable (default true); off, a refusal's text is printable ASCII. */
  readonly utf8?: boolean;
}

/** A stage's outcome for the session. */
export interface StageOutcome {
  /** The refusal, or undefined when allowed. */
  readonly refused: Reply | undefined;
  /** HOLD, DISCARD and PREPEND met on the way, in order. */
  readonly effects: readonly MessageEffect[];
}

/**
 * Runs a policy stage and logs a refusal and the access actions.
 * @param stage the stage
 * @param verb the command, for the log ("RCPT")
 * @param facts the command's facts
 * @param s the session
 * @returns the refusal reply, if any, and the message actions
 */
export async function checkStage(
  stage: PolicyStage,
  verb: string,
  facts: PolicyFacts,
  s: StageSession,
): Promise<StageOutcome> {
  const { client: c, log } = s;
  const trace = s.verbosity >= 2 ? new Trace() : undefined;
  const decision = await s.policy.check(stage, {
    clientAddress: c.address,
    clientName: c.name,
    reverseName: c.reverseName,
    nameStatus: c.local ? "ok" : c.nameStatus,
    reverseStatus: c.local ? "ok" : c.reverseStatus,
    local: c.local,
    helo: s.helo,
    sender: facts.sender ?? s.tx?.sender,
    recipient: facts.recipient,
    etrnDomain: facts.etrnDomain,
    ...(facts.queueId ? { queueId: facts.queueId } : {}),
    unauthPipelining: s.unauthPipelining,
    command: s.command,
    ...s.more,
    ...(facts.size !== undefined ? { size: facts.size } : {}),
  }, { dns: s.dns, ...(trace ? { trace } : {}) });
  for (const ev of trace?.events ?? []) {
    log.logger.debug(`${verb} from ${c.name}[${c.address}]: ${describeTraceEvent(ev)}`, 0);
  }
  const effects = decision.effects ?? [];
  for (const e of effects) {
    if (e.kind === "prepend") continue;
    log.whatsup({
      id: facts.queueId,
      action: e.kind,
      stage: verb,
      peer: c,
      text: e.text,
      from: facts.from ?? s.tx?.senderText,
      to: facts.to,
      proto: s.protocol,
      helo: s.helo,
    });
  }
  const changes = effects.filter((e) =>
    e.kind !== "info" && e.kind !== "warn" && e.kind !== "reject_warning"
  );
  if (decision.kind !== "reject" && decision.kind !== "defer") {
    return { refused: undefined, effects: changes };
  }
  const refused = s.utf8 === false ? asciiReply(decision.reply) : decision.reply;
  log.reject({
    id: facts.queueId,
    stage: verb,
    peer: c,
    reply: refused,
    from: facts.from ?? s.tx?.senderText,
    to: facts.to,
    proto: s.protocol,
    helo: s.helo,
  });
  if (s.verbosity >= 1) log.logger.debug(`NOQUEUE: decided by ${decision.by}`, 0);
  return { refused, effects: changes };
}

const NOT_PRINTABLE_ASCII = /[^\x20-\x7e]/gu;
const encoder = new TextEncoder();

/**
 * A refusal as Postfix's smtpd_check_reject sends and logs it with
 * smtputf8_enable off: printable(text, ' ') then keeps printable ASCII
 * only, each other byte a space (`<j\xc3\xb6@x>` is `<j  @x>`). The
 * client's 8-bit address in "<...>: Relay access denied" goes back so.
 * @param r the refusal
 * @returns it with printable ASCII text
 */
function asciiReply(r: Reply): Reply {
  NOT_PRINTABLE_ASCII.lastIndex = 0;
  if (!NOT_PRINTABLE_ASCII.test(r.text)) return r;
  const text = r.text.replace(
    NOT_PRINTABLE_ASCII,
    (ch) => " ".repeat(isRawByteChar(ch) ? 1 : encoder.encode(ch).length),
  );
  return { ...r, text };
}
