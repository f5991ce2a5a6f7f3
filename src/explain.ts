/**
 * `smtpd explain`: runs the configured restriction lists for a hypothetical
 * session, without a socket, and shows every restriction tried, every
 * table key looked up, every DNS query and answer, and the reply each SMTP
 * stage would get. Text for people, `--json` for tools.
 *
 * @module
 */

import type { Config } from "./config/mod.ts";
import {
  type ClientNameStatus,
  type Decision,
  type DnsResolver,
  lookupClientName,
  type Policy,
  type PolicyContext,
  type PolicyStage,
  Trace,
  type TraceEvent,
} from "./policy/mod.ts";
import { type Address, parsePath } from "./protocol/address.ts";
import { formatReply } from "./protocol/reply.ts";
import { sanitizeLogText } from "./log/sanitize.ts";

/** The hypothetical session. */
export interface ExplainInput {
  client: string;
  clientName?: string;
  helo?: string;
  from?: string;
  to: string[];
  etrn?: string;
  /** The SASL login name, as if the client had authenticated (AUTH PLAIN). */
  saslUser?: string;
}

/** One stage's outcome. */
export interface ExplainStage {
  command: string;
  argument?: string;
  events: TraceEvent[];
  decision: { kind: string; reply?: string; by?: string };
  /** Access actions met (HOLD, DISCARD, PREPEND, INFO), as "kind: text". */
  actions?: string[];
}

/** The whole explanation. */
export interface Explanation {
  client: { address: string; name: string; reverseName: string; nameStatus: ClientNameStatus };
  delayReject: boolean;
  stages: ExplainStage[];
}

function parseAddress(text: string, what: string): Address {
  const p = parsePath(text.includes("<") ? text : `<${text}>`, { strict: false });
  if (!p.ok) throw new SyntaxError(`Cannot parse ${what} address "${text}"`);
  return p.address;
}

function describe(d: Decision): ExplainStage["decision"] {
  switch (d.kind) {
    case "permit":
      return { kind: "permit", by: d.by };
    case "dunno":
      return { kind: "dunno" };
    case "reject":
    case "defer":
      return { kind: d.kind, reply: formatReply(d.reply).trimEnd(), by: d.by };
  }
}

/**
 * Runs the explanation.
 * @param input the hypothetical session
 * @param deps configuration, policy and resolver
 * @returns per-stage traces and decisions
 */
export async function explain(
  input: ExplainInput,
  deps: { config: Config; policy: Policy; dns: DnsResolver },
): Promise<Explanation> {
  let name = {
    name: "unknown",
    reverseName: "unknown",
    nameStatus: "notFound" as ClientNameStatus,
    reverseStatus: "notFound" as ClientNameStatus,
  };
  if (input.clientName) {
    name = {
      name: input.clientName,
      reverseName: input.clientName,
      nameStatus: "ok",
      reverseStatus: "ok",
    };
  } else if (deps.config.smtpd_peername_lookup) {
    name = await lookupClientName(input.client, deps.dns);
  }
  const sender = input.from !== undefined ? parseAddress(input.from, "sender") : undefined;
  const base: PolicyContext = {
    clientAddress: input.client,
    clientName: name.name,
    reverseName: name.reverseName,
    nameStatus: name.nameStatus,
    reverseStatus: name.reverseStatus,
    local: false,
    helo: input.helo,
    sender: undefined,
    recipient: undefined,
    ...(input.saslUser !== undefined
      ? { sasl: { method: "PLAIN", username: input.saslUser } }
      : {}),
  };
  const stages: ExplainStage[] = [];
  const run = async (
    stage: PolicyStage,
    command: string,
    ctx: PolicyContext,
    argument?: string,
  ): Promise<boolean> => {
    const trace = new Trace();
    // The command names the protocol_state a policy server is sent.
    // sleep shows its pause in the trace; explain does not wait it out.
    const d = await deps.policy.check(stage, { ...ctx, command }, {
      trace,
      dns: deps.dns,
      sleep: () => Promise.resolve(),
    });
    const actions = (d.effects ?? []).map((e) =>
      `${e.kind}: ${e.kind === "prepend" ? e.header : e.text}`
    );
    stages.push({
      command,
      ...(argument ? { argument } : {}),
      events: trace.events,
      decision: describe(d),
      ...(actions.length ? { actions } : {}),
    });
    return d.kind !== "reject" && d.kind !== "defer";
  };
  let ok = await run("client", "CONNECT", base);
  if (ok && input.helo !== undefined) ok = await run("helo", "HELO", base, input.helo);
  const withSender = { ...base, sender };
  if (ok && sender) ok = await run("sender", "MAIL", withSender, input.from);
  if (ok) {
    let accepted = 0; // reject_multi_recipient_bounce counts the recipients accepted so far
    for (const to of input.to) {
      const recipient = parseAddress(to, "recipient");
      const ctx = { ...withSender, recipient, recipientCount: accepted };
      if (await run("recipient", "RCPT", ctx, to)) accepted++;
    }
    // DATA and the end of data, once a recipient is accepted.
    if (sender && accepted > 0) {
      const tx = { ...withSender, recipientCount: accepted };
      if (await run("data", "DATA", tx)) await run("eod", "END-OF-MESSAGE", tx);
    }
  }
  if (input.etrn !== undefined) {
    await run("etrn", "ETRN", { ...base, etrnDomain: input.etrn }, input.etrn);
  }
  return {
    client: {
      address: input.client,
      name: name.name,
      reverseName: name.reverseName,
      nameStatus: name.nameStatus,
    },
    delayReject: deps.config.smtpd_delay_reject,
    stages,
  };
}

/**
 * Renders an explanation as text. Every line is made safe as a log line
 * is: a DNS answer (a DNS list's TXT text) may hold terminal escapes, CR
 * or other controls, which must not reach the operator's terminal.
 * @param e the explanation
 * @returns the report
 */
export function formatExplanation(e: Explanation): string {
  const lines = [
    `client ${e.client.name}[${e.client.address}] (reverse name ${e.client.reverseName}, lookup ${e.client.nameStatus})`,
    `smtpd_delay_reject = ${e.delayReject}`,
  ];
  for (const s of e.stages) {
    lines.push("", `${s.command}${s.argument !== undefined ? ` ${s.argument}` : ""}`);
    if (s.events.length === 0) {
      lines.push(
        e.delayReject && !["ETRN", "DATA", "END-OF-MESSAGE"].includes(s.command)
          ? "  (nothing evaluated here: smtpd_delay_reject defers this stage's lists to RCPT)"
          : "  (no restrictions at this stage)",
      );
    }
    for (const ev of s.events) {
      switch (ev.kind) {
        case "stage":
          lines.push(`  ${ev.stage} = ${ev.list.length ? ev.list.join(", ") : "(empty)"}`);
          break;
        case "restriction":
          lines.push(`${"  ".repeat(ev.depth + 1)}try ${ev.name}`);
          break;
        case "lookup":
          lines.push(`        lookup ${ev.table} key "${ev.key}": ${ev.result}`);
          break;
        case "dns":
          lines.push(`        dns ${ev.type} ${ev.query}: ${ev.answer}`);
          break;
        case "result":
          lines.push(`        => ${ev.result}${ev.reply ? `: ${ev.reply}` : ""}`);
          break;
        case "note":
          lines.push(`        note: ${ev.text}`);
          break;
      }
    }
    const d = s.decision;
    for (const a of s.actions ?? []) lines.push(`  action ${a}`);
    lines.push(
      d.reply ? `  reply: ${d.reply}` : `  reply: accepted (${d.kind})`,
      ...(d.by ? [`  decided by: ${d.by}`] : []),
    );
  }
  return lines.map(sanitizeLogText).join("\n");
}
