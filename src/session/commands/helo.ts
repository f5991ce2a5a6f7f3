/**
 * HELO and EHLO (RFC 5321 §4.1.1.1): record the client's name, reset any
 * transaction, and answer with our name (plus the EHLO keywords). As
 * Postfix's printable(), characters that are unsafe to show (C1 and bidi
 * controls, invisible ones, invalid UTF-16: sanitizeLogText) become "?" in the name kept
 * (with smtputf8_enable off, every byte outside printable ASCII); and, as Postfix's
 * smtpd neuters it, so do the characters that would let the name close the
 * comment of Received: or the brackets of a log field (`<>()\";@`). The
 * name kept goes into Received:, the queue file's helo_name, log lines
 * (`helo=<...>`) and the restrictions that run later.
 *
 * @module
 */

import { asciiLogText, sanitizeLogText } from "../../log/mod.ts";
import { advertisedMechanisms } from "../../sasl/mod.ts";
import { heloOk, REPLY, type Reply } from "../../protocol/reply.ts";
import { describeDiscards, ehloKeywords } from "../ehlo_keywords.ts";
import { answer, type CommandResult, type SessionContext } from "../context.ts";

/** Characters Postfix's smtpd replaces in the HELO name it keeps (NEUTER_CHARACTERS). */
const NEUTER = /[<>()\\";@]/g;

/**
 * Checks the name and runs smtpd_helo_restrictions (when not delayed)
 * with it; an accepted name greets the session.
 * @returns the refusal, or undefined when the session is greeted (a
 *   promise when the restrictions run)
 */
function greet(
  ctx: SessionContext,
  arg: string,
  verb: "HELO" | "EHLO",
): Reply | undefined | Promise<Reply | undefined> {
  // Blanks are space and tab only, as Postfix's tokens (parseCommand took
  // those around the argument): U+00A0 and the like are part of the name.
  const name = arg;
  if (name === "" || /[ \t]/.test(name)) {
    return verb === "HELO" ? REPLY.heloSyntax : REPLY.ehloSyntax;
  }
  // As Postfix: the check made now sees the name as sent (made printable);
  // the name kept, which later checks see, is neutered too.
  const shown = ctx.config.smtputf8_enable ? sanitizeLogText(name) : asciiLogText(name);
  const greeted = (refused: Reply | undefined) => {
    if (refused) return refused;
    // Kept for Received:, the queue file and the log: Postfix's neutered characters as "?".
    // The protocol is SMTP or ESMTP, TLS or not (as Postfix's): the "S" of
    // RFC 3848 is Received:'s alone, and "ESMTP" is what allows pipelining.
    ctx.greet(shown.replace(NEUTER, "?"), verb === "EHLO" ? "ESMTP" : "SMTP");
    return undefined;
  };
  const refused = ctx.checkPolicy("helo", verb, { helo: shown });
  return refused instanceof Promise ? refused.then(greeted) : greeted(refused);
}

/** HELO hostname (no promise when no restriction runs: see the session loop) */
export function handleHelo(
  arg: string,
  ctx: SessionContext,
): CommandResult | Promise<CommandResult> {
  const heloAnswer = (refused: Reply | undefined) =>
    answer(refused ?? heloOk(ctx.config.myhostname));
  const refused = greet(ctx, arg, "HELO");
  return refused instanceof Promise ? refused.then(heloAnswer) : heloAnswer(refused);
}

/**
 * The AUTH keyword lines, as Postfix's EHLO: none without AUTH, before
 * TLS with smtpd_tls_auth_only, for a client in
 * smtpd_sasl_exceptions_networks, or when no mechanism may be offered.
 */
async function authKeywords(ctx: SessionContext): Promise<string[]> {
  const sasl = ctx.services.sasl;
  if (!sasl?.settings.enabled) return [];
  if (sasl.settings.tlsAuthOnly && !ctx.tls) return [];
  if (await sasl.hiddenFrom(ctx.client.name, ctx.client.address)) return [];
  const mechanisms = advertisedMechanisms(await sasl.mechanisms(ctx.tls !== undefined) ?? []);
  if (mechanisms.length === 0) return [];
  const list = mechanisms.join(" ");
  return ctx.config.broken_sasl_auth_clients ? [`AUTH ${list}`, `AUTH=${list}`] : [`AUTH ${list}`];
}

/** EHLO hostname */
export async function handleEhlo(arg: string, ctx: SessionContext): Promise<CommandResult> {
  const refused = await greet(ctx, arg, "EHLO");
  if (refused) return answer(refused);
  const discard = ctx.ehloDiscard;
  // As Postfix: not logged with silent-discard, nor (a quirk of its
  // milter handling) when ENHANCEDSTATUSCODES itself is discarded.
  if (discard.size > 0 && !discard.has("SILENT-DISCARD") && !discard.has("ENHANCEDSTATUSCODES")) {
    ctx.log.info(`discarding EHLO keywords: ${describeDiscards(discard)}`);
  }
  const keywords = ehloKeywords({
    messageSizeLimit: ctx.config.message_size_limit,
    vrfy: !ctx.config.disable_vrfy_command,
    etrn: true,
    starttls: ctx.tlsOffered,
    smtputf8: ctx.config.smtputf8_enable,
    discard,
    auth: await authKeywords(ctx),
  });
  return answer(heloOk(ctx.config.myhostname, keywords));
}
