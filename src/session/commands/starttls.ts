/**
 * STARTTLS (RFC 3207): 220, then the TLS handshake. Anything the client
 * pipelined after STARTTLS in plaintext is discarded, never executed (the
 * STARTTLS command-injection class of bugs). After the handshake the
 * session starts over: no HELO, no transaction (§4.2). The handshake has
 * smtpd_starttls_timeout to finish; a failed one ends the session.
 *
 * @module
 */

import { formatReply, REPLY, reply } from "../../protocol/reply.ts";
import { TlsHandshakeError } from "../../transport/types.ts";
import type { CommandResult, Session } from "../session.ts";

/** STARTTLS */
export async function handleStarttls(arg: string, s: Session): Promise<CommandResult> {
  const upgrade = s.transport.startTls;
  if (!upgrade || s.transport.tls) {
    return {
      reply: s.transport.tls
        ? reply(554, "5.1", "Error: TLS already active")
        : REPLY.unknownCommand,
    };
  }
  if (arg.trim() !== "") return { reply: reply(501, "5.4", "Syntax: STARTTLS") };
  if (s.phase.kind === "inMail") {
    return { reply: reply(503, "5.1", "Error: MAIL transaction in progress") };
  }
  s.writer.push(formatReply(reply(220, "0.0", "Ready to start TLS")));
  await s.writer.flush();
  const injected = s.reader.peek().length;
  s.reader.discardBuffered();
  if (injected > 0) {
    s.deps.log.warning(
      `${s.peer.name}[${s.peer.address}]: discarded ${injected} bytes of plaintext pipelined after STARTTLS`,
    );
  }
  let secure;
  try {
    secure = await upgrade(s.limits.starttlsTimeoutMs);
  } catch (err) {
    logHandshakeFailure(s, err);
    return { reply: REPLY.localError, gone: true };
  }
  s.transport = secure;
  s.reader.setSource(secure);
  s.writer.setSink(secure);
  s.helo = undefined;
  s.protocol = "ESMTP";
  s.endTransaction();
  const t = secure.tls;
  s.deps.log.info(
    `Anonymous TLS connection established from ${s.peer.name}[${s.peer.address}]: ${t?.protocol} with cipher ${t?.cipher} (${t?.bits}/${t?.bits} bits)`,
  );
  return { reply: REPLY.ok, gone: false, silent: true };
}

/**
 * Logs a failed handshake as Postfix does: "SSL_accept error from
 * name[addr]: Connection timed out" (or ": lost connection", or ": -1" and
 * the TLS library's complaint), then "lost connection after STARTTLS".
 */
function logHandshakeFailure(s: Session, err: unknown): void {
  const who = `${s.peer.name}[${s.peer.address}]`;
  const why = err instanceof TlsHandshakeError ? err.why : "protocol";
  const message = (err as Error)?.message ?? String(err);
  if (why === "protocol") {
    s.deps.log.info(`SSL_accept error from ${who}: -1`);
    s.deps.log.warning(`TLS library problem: ${message}`);
  } else {
    s.deps.log.info(`SSL_accept error from ${who}: ${message}`);
  }
  s.deps.log.lostConnection(s.peer, "STARTTLS");
}
