/**
 * AUTH (RFC 4954), as Postfix's smtpd_sasl_proto.c: refused in stand-alone
 * mode, when smtpd_sasl_auth_enable is off, when AUTH is among the
 * discarded EHLO keywords and before TLS with smtpd_tls_auth_only (503
 * "authentication not enabled"), inside a transaction (503), once
 * authenticated (503); then the exchange
 * with the authentication server (src/sasl/smtp_auth.ts). A failure is a
 * 535 (or 454) error reply, so it counts against the error limits and the
 * tarpit like any other. The response lines never reach the transcript or
 * a log line; the command line itself is logged as "AUTH PLAIN ****" (see
 * session.ts). The command table counts every AUTH command against
 * smtpd_client_auth_rate_limit first, then, with smtpd_helo_required, asks
 * for HELO/EHLO.
 *
 * @module
 */

import { ReadTimeoutError } from "../../io/line_reader.ts";
import { REPLY } from "../../protocol/reply.ts";
import { runAuthCommand } from "../../sasl/mod.ts";
import { answer, type CommandResult, type SessionContext } from "../context.ts";

/** AUTH mechanism [initial-response] */
export async function handleAuth(arg: string, ctx: SessionContext): Promise<CommandResult> {
  const sasl = ctx.services.sasl;
  if (!sasl || !sasl.settings.enabled || ctx.ehloDiscard.has("AUTH")) {
    return answer(REPLY.authNotEnabled);
  }
  const tls = ctx.tls !== undefined;
  // A client silent in the middle of the exchange: the exchange is
  // abandoned (Dovecot's request cancelled), then the session ends with
  // its usual 421 timeout.
  let timedOut: ReadTimeoutError | undefined;
  const outcome = await runAuthCommand(arg, {
    enabled: true,
    tls,
    inTransaction: ctx.phase.kind === "inMail",
    username: ctx.sasl?.username,
  }, {
    io: {
      readSecretLine: async (max) => {
        try {
          return await ctx.readSecretLine(max);
        } catch (err) {
          if (!(err instanceof ReadTimeoutError)) throw err;
          timedOut = err;
          return { kind: "closed" };
        }
      },
      sendReply: (reply) => {
        ctx.send(reply);
        return ctx.flush();
      },
    },
    options: {
      server: sasl.server,
      mechanisms: await sasl.mechanisms(tls),
      tlsAuthOnly: sasl.settings.tlsAuthOnly,
      responseLimit: sasl.settings.responseLimit,
      client: ctx.saslClientInfo(),
    },
  });
  const who = `${ctx.client.name}[${ctx.client.address}]`;
  switch (outcome.kind) {
    case "authenticated":
      ctx.authenticated({ method: outcome.mechanism, username: outcome.username });
      return answer(outcome.reply);
    case "lost":
      if (timedOut) throw timedOut;
      ctx.log.lostConnection(ctx.client, "AUTH");
      return { kind: "gone" };
    default:
      if (outcome.warning) ctx.log.warning(`${who}: ${outcome.warning}`);
      return answer(outcome.reply);
  }
}
