/**
 * Postfix's client rate limits over a {@linkcode RateLimiter}:
 * smtpd_client_connection_rate_limit (421 4.7.0), _message_rate_limit
 * (450 4.7.1 at MAIL), _recipient_rate_limit (450 4.7.1 at RCPT) and
 * _new_tls_session_rate_limit (454 4.7.0 at STARTTLS) and _auth_rate_limit
 * (450 4.7.1 at AUTH), each counted per
 * client address over anvil_rate_time_unit, with
 * smtpd_client_event_limit_exceptions exempt. Each refusal is logged with
 * Postfix's warning text.
 *
 * @module
 */

import { configuredClientRange } from "./client_range.ts";
import type { Config } from "../config/mod.ts";
import type { Logger } from "../log/mod.ts";
import {
  type Reply,
  tooManyAuths,
  tooManyConnections,
  tooManyRecipientsFrom,
  tooManyTlsSessions,
  tooMuchMail,
} from "../protocol/reply.ts";
import type { RateEvent, RateLimiter } from "./rate_limiter.ts";

/** The events with a limit. */
export type LimitedEvent = RateEvent;

/**
 * How an event is taken: counted and checked (the default); counted only
 * (the event was refused for another reason: its concurrency limit); or
 * checked without counting it (whether the client is over its limit
 * already, before anyone makes room for the event). Only "check" logs.
 */
export type RateUse = "check" | "count" | "peek";

/** Per event: its limit parameter, Postfix's warning, the refusal. */
const EVENTS: Readonly<
  Record<
    LimitedEvent,
    {
      limit: keyof Config;
      what: string;
      /** The refusal, from our host name, the client's address and its name[address]. */
      refuse: (c: Config, a: string, who: string) => Reply;
    }
  >
> = {
  connection: {
    limit: "smtpd_client_connection_rate_limit",
    what: "Connection rate limit exceeded",
    refuse: (c, a) => tooManyConnections(c.myhostname, a),
  },
  message: {
    limit: "smtpd_client_message_rate_limit",
    what: "Message delivery request rate limit exceeded",
    refuse: (_c, a) => tooMuchMail(a),
  },
  recipient: {
    limit: "smtpd_client_recipient_rate_limit",
    what: "Recipient address rate limit exceeded",
    refuse: (_c, a) => tooManyRecipientsFrom(a),
  },
  newTls: {
    limit: "smtpd_client_new_tls_session_rate_limit",
    what: "New TLS session rate limit exceeded",
    // Postfix's STARTTLS refusal names the client as name[address].
    refuse: (_c, _a, who) => tooManyTlsSessions(who),
  },
  auth: {
    limit: "smtpd_client_auth_rate_limit",
    what: "AUTH command rate limit exceeded",
    refuse: (_c, a) => tooManyAuths(a),
  },
};

/**
 * The rate check a session and the listener call.
 * @param config the limits and our host name
 * @param rates the shared counts
 * @param exempt smtpd_client_event_limit_exceptions
 * @param logger where refusals are logged
 * @returns a function that counts an event and gives the refusal when over
 *   the limit; given the client's name, the warning names the client as
 *   Postfix's does (name[address]); without it (a connection, counted
 *   before the name is looked up) as [address]. `use` (see {@linkcode RateUse}):
 *   "count" counts a connection refused for its concurrency limit toward the
 *   rate, as anvil counts every connection, with that refusal's warning
 *   alone; "peek" gives the refusal the next event would get, unlogged.
 */
export function rateLimits(
  config: Config,
  rates: RateLimiter,
  exempt: (address: string) => boolean,
  logger: Logger,
): (event: LimitedEvent, address: string, name?: string, use?: RateUse) => Reply | undefined {
  // Counted per address, or per network block (client_range.ts).
  const range = configuredClientRange(config);
  return (event, address, name, use = "check") => {
    const e = EVENTS[event];
    const limit = config[e.limit] as number;
    if (limit <= 0 || exempt(address)) return undefined;
    const who = `${name ?? ""}[${address}]`;
    if (use === "peek") {
      return rates.peek(event, range(address)) + 1 > limit
        ? e.refuse(config, address, who)
        : undefined;
    }
    const n = rates.count(event, range(address));
    if (n <= limit || use === "count") return undefined;
    logger.warning(`${e.what}: ${n} from ${who} for service smtp`);
    return e.refuse(config, address, who);
  };
}
