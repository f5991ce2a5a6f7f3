/**
 * One method per mail event, each producing the line Postfix writes for it,
 * so log tools that read Postfix logs (pflogsumm, exporters) read ours.
 *
 * @module
 */

import { type Reply, replyForLog } from "../protocol/reply.ts";
import type { Logger } from "./logger.ts";
import { quoteAddress } from "./quote_address.ts";

/** A client as logs show it: `name[address]`. */
export interface LogPeer {
  readonly name: string;
  readonly address: string;
}

function who(p: LogPeer): string {
  return `${p.name}[${p.address}]`;
}

/** Postfix-shaped mail event lines. */
export class MailLog {
  readonly logger: Logger;

  /** @param logger the line logger */
  constructor(logger: Logger) {
    this.logger = logger;
  }

  /** `connect from host[addr]` */
  connect(p: LogPeer): void {
    this.logger.info(`connect from ${who(p)}`);
  }

  /**
   * `disconnect from host[addr] ehlo=1 mail=1 rcpt=0/1 ... commands=N[/M]`,
   * as Postfix's: each command's successes, then `/total` when some failed
   * (an unknown command never succeeds), in Postfix's command table order;
   * the total is written `0/0` for a session that sent no command.
   * @param p the client
   * @param counts per lower-case verb, the commands seen and those that succeeded
   */
  disconnect(p: LogPeer, counts: ReadonlyMap<string, CommandCount>): void {
    let ok = 0;
    let total = 0;
    let text = "";
    const order = (v: string) => {
      const i = COMMAND_ORDER.indexOf(v);
      return i < 0 ? COMMAND_ORDER.length : i;
    };
    for (const verb of [...counts.keys()].sort((a, b) => order(a) - order(b))) {
      const c = counts.get(verb) as CommandCount;
      text += ` ${verb}=${fraction(c.ok, c.total)}`;
      ok += c.ok;
      total += c.total;
    }
    const all = total === 0 ? "0/0" : fraction(ok, total);
    this.logger.info(`disconnect from ${who(p)}${text} commands=${all}`);
  }

  /**
   * `lost connection after CMD from host[addr]`; after DATA with the bytes
   * of message content received, as Postfix: `after DATA (N bytes) from`.
   */
  lostConnection(p: LogPeer, after: string, bytes?: number): void {
    const size = bytes === undefined ? "" : ` (${bytes} bytes)`;
    this.logger.info(`lost connection after ${after}${size} from ${who(p)}`);
  }

  /**
   * `improper command pipelining after CMD from host[addr]: NEXT`, NEXT
   * being the start of what the client sent too early (escaped).
   */
  improperPipelining(p: LogPeer, after: string, next: string): void {
    this.logger.info(`improper command pipelining after ${after} from ${who(p)}: ${next}`);
  }

  /**
   * `warning: Illegal address syntax from host[addr] in CMD command: <...>`,
   * Postfix's line for an address its parser refuses.
   */
  illegalAddress(p: LogPeer, command: string, address: string): void {
    this.logger.warning(
      `Illegal address syntax from ${who(p)} in ${command} command: ${address}`,
    );
  }

  /** `timeout after CMD from host[addr]`; in DATA or BDAT with `(N bytes)`, as Postfix. */
  timeout(p: LogPeer, after: string, bytes?: number): void {
    const size = bytes === undefined ? "" : ` (${bytes} bytes)`;
    this.logger.info(`timeout after ${after}${size} from ${who(p)}`);
  }

  /** `too many errors after CMD from host[addr]` */
  tooManyErrors(p: LogPeer, after: string): void {
    this.logger.info(`too many errors after ${after} from ${who(p)}`);
  }

  /**
   * `warning: non-SMTP command from host[addr]: LINE`, the line (escaped as
   * Postfix's escape() does, see the session's `escaped`) cut at 100
   * characters as Postfix's.
   */
  nonSmtpCommand(p: LogPeer, line: string): void {
    this.logger.warning(`non-SMTP command from ${who(p)}: ${line.slice(0, 100)}`);
  }

  /**
   * `ID: client=host[addr]`, with `, sasl_method=M, sasl_username=U` after
   * AUTH and `, sasl_sender=S` after MAIL FROM's AUTH=, each when known (as
   * Postfix: AUTH= is logged whether or not the client logged in)
   */
  client(
    id: string,
    p: LogPeer,
    sasl: { method?: string; username?: string; sender?: string | undefined } = {},
  ): void {
    const auth = [
      sasl.method !== undefined ? `, sasl_method=${sasl.method}` : "",
      sasl.username !== undefined ? `, sasl_username=${sasl.username}` : "",
      sasl.sender !== undefined ? `, sasl_sender=${sasl.sender}` : "",
    ].join("");
    this.logger.info(`${id}: client=${who(p)}${auth}`);
  }

  /** `ID: message-id=<...>` */
  messageId(id: string, messageId: string): void {
    this.logger.info(`${id}: message-id=${messageId}`);
  }

  /** `ID: from=<a>, size=N, nrcpt=N (queue active)` */
  queued(id: string, from: string, size: number, nrcpt: number): void {
    this.logger.info(
      `${id}: from=<${quoteAddress(from)}>, size=${size}, nrcpt=${nrcpt} (queue active)`,
    );
  }

  /**
   * `NOQUEUE: reject: RCPT from host[addr]: 554 5.7.1 ...; from=<a> to=<b> proto=ESMTP helo=<h>`
   */
  reject(
    event: {
      id?: string;
      stage: string;
      peer: LogPeer;
      reply: Reply;
      from?: string;
      to?: string;
      proto: string;
      helo?: string;
    },
  ): void {
    this.whatsup({ ...event, action: "reject", text: replyForLog(event.reply) });
  }

  /**
   * Postfix's log_whatsup: `ID: action: STAGE from host[addr]: text;
   * from=<...> to=<...> proto=... helo=<...>` (reject, hold, discard, info).
   */
  whatsup(
    event: {
      id?: string;
      action: string;
      stage: string;
      peer: LogPeer;
      text: string;
      from?: string;
      to?: string;
      proto: string;
      helo?: string;
    },
  ): void {
    let tail = "";
    if (event.from !== undefined) tail += ` from=<${quoteAddress(event.from)}>`;
    if (event.to !== undefined) tail += ` to=<${quoteAddress(event.to)}>`;
    tail += ` proto=${event.proto}`;
    if (event.helo !== undefined) tail += ` helo=<${event.helo}>`;
    this.logger.info(
      `${event.id ?? "NOQUEUE"}: ${event.action}: ${event.stage} from ${
        who(event.peer)
      }: ${event.text};${tail}`,
    );
  }

  /** `warning: text` */
  warning(text: string): void {
    this.logger.warning(text);
  }

  /** Plain informational line. */
  info(text: string): void {
    this.logger.info(text);
  }
}

/** One verb's commands in a session: all of them, and those that succeeded. */
export interface CommandCount {
  ok: number;
  total: number;
}

/** Postfix's smtpd command table order, which its disconnect line follows; unknown last. */
const COMMAND_ORDER = [
  "helo",
  "ehlo",
  "xclient",
  "xforward",
  "starttls",
  "auth",
  "mail",
  "rcpt",
  "data",
  "bdat",
  "rset",
  "noop",
  "vrfy",
  "etrn",
  "quit",
  "help",
  "unknown",
];

/** `n`, or `n/total` when some failed. */
function fraction(ok: number, total: number): string {
  return ok === total ? `${ok}` : `${ok}/${total}`;
}
