/**
 * STARTTLS (RFC 3207): 220, then the TLS handshake. Anything the client
 * pipelined after STARTTLS in plaintext is discarded, never executed (the
 * STARTTLS command-injection class of bugs). After the handshake the
 * session starts over: no HELO, no transaction (§4.2). The handshake has
 * smtpd_starttls_timeout to finish; a failed one ends the session. The
 * command table refuses STARTTLS when it is not offered (TLS off or the
 * keyword discarded: 502 5.5.1, as Postfix) or already
 * done (554), and with an argument (501). Inside a transaction it is
 * taken, as Postfix takes it: the transaction ends with the handshake (a
 * BDAT message in progress is removed).
 *
 * @module
 */

import { REPLY } from "../../protocol/reply.ts";
import { TlsHandshakeError } from "../../transport/types.ts";
import { clientOverRate, type CommandResult, type SessionContext } from "../context.ts";

/** STARTTLS */
export async function handleStarttls(_arg: string, ctx: SessionContext): Promise<CommandResult> {
  // smtpd_client_new_tls_session_rate_limit: refused before the handshake costs us anything.
  const overRate = clientOverRate(ctx, "newTls");
  if (overRate) return { kind: "reply", reply: overRate };
  ctx.send(REPLY.readyForTls);
  const upgrade = await ctx.startTls();
  if (upgrade.kind === "failed") {
    logHandshakeFailure(ctx, upgrade.error, "STARTTLS");
    return { kind: "gone" };
  }
  logEstablished(ctx);
  return { kind: "silent" };
}

/**
 * Implicit TLS (smtpd_tls_wrappermode, RFC 8314): the handshake before the
 * greeting, within smtpd_starttls_timeout, as Postfix's smtpd does on a
 * wrapper-mode service. A client over smtpd_client_new_tls_session_rate_limit
 * is dropped before the handshake costs anything ("Refusing TLS service
 * request"); a failed handshake ends the session ("lost connection after
 * CONNECT").
 * @param ctx the session, before its greeting
 * @returns whether the session goes on (encrypted)
 */
export async function startImplicitTls(ctx: SessionContext): Promise<boolean> {
  const who = `${ctx.client.name}[${ctx.client.address}]`;
  if (clientOverRate(ctx, "newTls")) {
    ctx.log.warning(`Refusing TLS service request from ${who} for service smtp`);
    return false;
  }
  const upgrade = await ctx.startTls();
  if (upgrade.kind === "failed") {
    logHandshakeFailure(ctx, upgrade.error, "CONNECT");
    return false;
  }
  logEstablished(ctx);
  return true;
}

/** Logs a handshake that went well, with smtpd_tls_loglevel 1 or more (Postfix's summary). */
function logEstablished(ctx: SessionContext): void {
  if (ctx.config.smtpd_tls_loglevel < 1) return;
  const t = ctx.tls;
  ctx.log.info(
    `Anonymous TLS connection established from ${ctx.client.name}[${ctx.client.address}]: ${t?.protocol} with cipher ${t?.cipher} (${t?.bits}/${t?.bits} bits)`,
  );
}

/**
 * Logs a failed handshake as Postfix does: "SSL_accept error from
 * name[addr]: Connection timed out" (or ": lost connection", or ": -1" and
 * the TLS library's complaint), then "lost connection after STARTTLS".
 */
function logHandshakeFailure(ctx: SessionContext, err: unknown, after: string): void {
  const who = `${ctx.client.name}[${ctx.client.address}]`;
  const why = err instanceof TlsHandshakeError ? err.why : "protocol";
  const message = (err as Error)?.message ?? String(err);
  if (why === "protocol") {
    ctx.log.info(`SSL_accept error from ${who}: -1`);
    ctx.log.warning(`TLS library problem: ${message}`);
  } else {
    ctx.log.info(`SSL_accept error from ${who}: ${message}`);
  }
  ctx.log.lostConnection(ctx.client, after);
}
