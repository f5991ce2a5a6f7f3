/**
 * The SMTP side of AUTH (RFC 4954), as a pure function the session calls
 * for one AUTH command: checks (enabled, transaction, TLS-only, already
 * authenticated, syntax), the mechanism, the initial response ("=" is the
 * empty one), then the 334 challenge / response loop until the server
 * decides or the client cancels with "*". Replies are Postfix's (see
 * {@linkcode REPLY}), except where RFC 4954 names a code Postfix does not
 * use: an unsupported mechanism is 504 5.5.4 and undecodable base64 is
 * 501 5.5.2 (Postfix answers both with 535 5.7.8).
 *
 * Credentials never leave this module in a log text: responses are read
 * through {@linkcode AuthIo.readSecretLine} (the session keeps them out of
 * its transcript), passed to the server as the base64 they arrived in, and
 * the outcome carries only what may be logged.
 *
 * @module
 */

import {
  authChallenge,
  authFailed,
  authTemporaryFailure,
  REPLY,
  type Reply,
} from "../protocol/reply.ts";
import { printable, printableName, type SaslClientInfo } from "./dovecot_protocol.ts";
import type { SaslServer, SaslStep } from "./sasl_server.ts";

/** One client line read during the exchange. */
export type SecretLine =
  | { kind: "line"; text: string }
  | { kind: "tooLong" }
  | { kind: "closed" };

/** How the module talks to the client; the session provides it. */
export interface AuthIo {
  /**
   * Reads one line (without CRLF). It holds credentials: it must not reach
   * the transcript, a debug log or an error message. Bounded by the
   * session's own read timeout; a timeout or a lost connection is "closed".
   * @param maxLength the longest line accepted, in bytes; a longer one is
   *   read to its end and reported as "tooLong"
   */
  readSecretLine(maxLength: number): Promise<SecretLine>;
  /**
   * Sends a reply (a 334 challenge) and flushes it.
   * @param reply the reply
   */
  sendReply(reply: Reply): Promise<void>;
}

/** What the session knows at the AUTH command. */
export interface AuthSessionState {
  /** AUTH is enabled for this session (smtpd_sasl_auth_enable, daemon mode). */
  readonly enabled: boolean;
  /** The session runs over TLS. */
  readonly tls: boolean;
  /** A MAIL transaction is in progress. */
  readonly inTransaction: boolean;
  /** The name a previous AUTH established, if any. */
  readonly username: string | undefined;
}

/** What stays the same for the sessions of a process. */
export interface AuthOptions {
  /** The authentication server (Dovecot, or a fake in tests). */
  readonly server: SaslServer;
  /**
   * Mechanisms this session may use (filtered by the security options in
   * force), or undefined when the server cannot be reached.
   */
  readonly mechanisms: readonly string[] | undefined;
  /** smtpd_tls_auth_only: AUTH only over TLS. */
  readonly tlsAuthOnly: boolean;
  /** smtpd_sasl_response_limit: a client response line must be shorter, in bytes. */
  readonly responseLimit: number;
  /** The connection facts given to the server. */
  readonly client: SaslClientInfo;
}

/** The outcome of one AUTH command. */
export type AuthOutcome =
  | {
    kind: "authenticated";
    reply: Reply;
    username: string;
    /** The mechanism as the client wrote it (Postfix's sasl_method). */
    mechanism: string;
    /** For the session's log lines: "sasl_method=PLAIN, sasl_username=user". */
    logFields: string;
  }
  | { kind: "refused"; reply: Reply; warning?: string }
  | { kind: "aborted"; reply: Reply; warning: string }
  | { kind: "lost" };

/** Most 334 rounds in one exchange (a server that never decides is cut off). */
const MAX_ROUNDS = 32;
/** The reason when the server cannot be reached (the Dovecot client's words). */
const CANNOT_CONNECT = "Can't connect to authentication server";
const MECH_NAME = /^[A-Za-z0-9_-]{1,20}$/;

/**
 * The names in IANA's registry of SASL mechanisms (RFC 4422, section 8),
 * upper case as registered, obsolete and limited ones included: a client
 * may still ask for them, and an operator should see which. Names starting
 * with GS2- form a family (RFC 5801), see {@linkcode isRegisteredMechanism}.
 */
const REGISTERED_MECHANISMS: ReadonlySet<string> = new Set([
  "9798-M-DSA-SHA1",
  "9798-M-ECDSA-SHA1",
  "9798-M-RSA-SHA1-ENC",
  "9798-U-DSA-SHA1",
  "9798-U-ECDSA-SHA1",
  "9798-U-RSA-SHA1-ENC",
  "ANONYMOUS",
  "CRAM-MD5",
  "DIGEST-MD5",
  "EAP-AES128",
  "EAP-AES128-PLUS",
  "ECDH-X25519-CHALLENGE",
  "ECDSA-NIST256P-CHALLENGE",
  "EXTERNAL",
  "GSS-SPNEGO",
  "GSSAPI",
  "KERBEROS_V4",
  "KERBEROS_V5",
  "LOGIN",
  "NMAS-SAMBA-AUTH",
  "NMAS_AUTHEN",
  "NMAS_LOGIN",
  "NTLM",
  "OAUTH10A",
  "OAUTHBEARER",
  "OPENID20",
  "OTP",
  "PASSDSS-3DES-1",
  "PLAIN",
  "SAML20",
  "SCRAM-SHA-1",
  "SCRAM-SHA-1-PLUS",
  "SCRAM-SHA-256",
  "SCRAM-SHA-256-PLUS",
  "SCRAM-SHA-512",
  "SCRAM-SHA-512-PLUS",
  "SCRAM-SHA3-512",
  "SCRAM-SHA3-512-PLUS",
  "SECURID",
  "SKEY",
  "SPNEGO",
  "SPNEGO-PLUS",
  "SXOVER-PLUS",
  "XOAUTH",
  "XOAUTH2",
]);

/**
 * Whether a name (already upper case) is registered with IANA: one of the
 * list, or of the GS2- family, whose names the GS2 bridge derives from a
 * GSS-API mechanism (GS2-KRB5).
 */
function isRegisteredMechanism(upper: string): boolean {
  return REGISTERED_MECHANISMS.has(upper) || /^GS2-[A-Z0-9_-]+$/.test(upper);
}

/**
 * The mechanism word as a log line or transcript may show it. A word that
 * is no mechanism we know is most often a client's credentials sent
 * without a mechanism before them (`AUTH AGFsaWNlAHNlY3JldA==`), and base64
 * of up to 15 bytes fits RFC 4422's 1-20 characters, in upper case now and
 * then (`AGI3ZU1NAENST3R3ZEND`), so the form of a word tells nothing: it
 * is shown, in any case (`AUTH login`), only when it is a mechanism offered
 * or registered with IANA (Postfix logs every word).
 * @param word the first word after AUTH
 * @param offered the mechanisms offered, when known
 * @returns the word, or a stand-in that tells only its length
 */
function mechanismForLog(word: string, offered?: readonly string[]): string {
  return isMechanismName(word, offered)
    ? word
    : `(not a mechanism name, ${word.length} characters)`;
}

/** Whether a log may show the word as a mechanism name (see mechanismForLog). */
function isMechanismName(word: string, offered: readonly string[] = []): boolean {
  if (!MECH_NAME.test(word)) return false;
  const upper = word.toUpperCase();
  return isRegisteredMechanism(upper) || offered.some((m) => m.toUpperCase() === upper);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Runs one AUTH command.
 * @param args the text after "AUTH " (mechanism and optional initial response)
 * @param state the session's state
 * @param deps the client I/O and the process-wide options
 * @returns the outcome; the session sends its reply (none for "lost")
 */
export async function runAuthCommand(
  args: string,
  state: AuthSessionState,
  deps: { io: AuthIo; options: AuthOptions },
): Promise<AuthOutcome> {
  const { io, options } = deps;
  const refused = checkAuthAllowed(state, options);
  if (refused) return { kind: "refused", reply: refused };
  // Words between spaces and tabs only: "PLAIN\u00a0" is no PLAIN, nor is
  // a response with a U+00A0 after it base64 (String.trim() would take it).
  const words = args.split(/[ \t]+/).filter((w) => w !== "");
  if (words.length < 1 || words.length > 2) return { kind: "refused", reply: REPLY.authSyntax };
  const asked = words[0] ?? "";
  if (options.mechanisms === undefined) {
    // The server is down: whether it has this mechanism is not known, and
    // the failure is temporary (README: 454 when Dovecot is down), not a
    // 504 that tells the client to give up on the mechanism.
    return {
      kind: "refused",
      reply: authTemporaryFailure(CANNOT_CONNECT),
      warning: failedText(mechanismForLog(asked), CANNOT_CONNECT),
    };
  }
  // The server's name for it goes to the server; the name as the client
  // wrote it ("plain") is what Postfix logs and records as sasl_method.
  const mechanism = options.mechanisms.find((m) => m.toUpperCase() === asked.toUpperCase());
  if (!MECH_NAME.test(asked) || mechanism === undefined) {
    // Logged as Postfix 3.7 logs it (its Dovecot glue's reason).
    return {
      kind: "refused",
      reply: REPLY.authUnsupported,
      warning: failedText(
        mechanismForLog(asked, options.mechanisms),
        "Invalid authentication mechanism",
      ),
    };
  }
  let initial = words[1];
  if (initial === "=") initial = "";
  else if (initial !== undefined && (initial === "" || !BASE64.test(initial))) {
    return {
      kind: "refused",
      reply: REPLY.authBadBase64,
      warning: failedText(asked, "Invalid base64 data in initial response"),
    };
  }

  const exchange = options.server.start(mechanism, options.client);
  let step: SaslStep = await exchange.begin(initial);
  for (let round = 0; step.kind === "challenge"; round++) {
    if (round === MAX_ROUNDS) {
      exchange.abandon();
      step = { kind: "failure", reason: "too many authentication steps", temporary: true };
      break;
    }
    await io.sendReply(authChallenge(step.challenge));
    // As Postfix 3.7 counts it: a response of smtpd_sasl_response_limit
    // bytes is already too long.
    const line = await io.readSecretLine(options.responseLimit - 1);
    if (line.kind === "closed") {
      exchange.abandon();
      // Postfix logs only "lost connection after AUTH" (the session does).
      return { kind: "lost" };
    }
    if (line.kind === "tooLong") {
      exchange.abandon();
      return {
        kind: "refused",
        reply: REPLY.authResponseTooLong,
        warning: failedText(asked, "SASL response limit exceeded"),
      };
    }
    if (line.text === "*") {
      exchange.abandon();
      return {
        kind: "aborted",
        reply: REPLY.authAborted,
        warning: `SASL ${asked} authentication aborted`,
      };
    }
    if (!BASE64.test(line.text)) {
      exchange.abandon();
      return {
        kind: "refused",
        reply: REPLY.authBadBase64,
        warning: failedText(asked, "Invalid base64 data in continued response"),
      };
    }
    step = await exchange.respond(line.text);
  }

  if (step.kind === "success") {
    const username = printableName(step.username);
    return {
      kind: "authenticated",
      reply: REPLY.authOk,
      username,
      mechanism: asked,
      logFields: `sasl_method=${asked}, sasl_username=${username}`,
    };
  }
  const reason = step.reason === "" ? "(reason unavailable)" : printable(step.reason);
  return {
    kind: "refused",
    reply: step.temporary ? authTemporaryFailure(reason) : authFailed(reason),
    warning: failedText(asked, reason, step.username),
  };
}

/**
 * The refusal of an AUTH command before any mechanism is looked at, in
 * Postfix's order; undefined when AUTH may go ahead.
 * @param state the session's state
 * @param options the AUTH options
 * @returns the reply, or undefined
 */
export function checkAuthAllowed(state: AuthSessionState, options: AuthOptions): Reply | undefined {
  // With smtpd_tls_auth_only Postfix does not turn SASL on before TLS, so
  // AUTH there gets the same answer as with AUTH off.
  if (!state.enabled || (options.tlsAuthOnly && !state.tls)) return REPLY.authNotEnabled;
  if (state.inTransaction) return REPLY.authInTransaction;
  if (state.username !== undefined) return REPLY.authAlready;
  return undefined;
}

/**
 * The AUTH command line as a transcript or debug log may show it: the
 * mechanism when it is registered with IANA (what the server offers is not
 * known here, so one only it offers shows as "****"), and "****" in place
 * of an initial response.
 * @param args the text after "AUTH "
 * @returns "AUTH PLAIN ****", "AUTH LOGIN", ...
 */
export function authCommandForLog(args: string): string {
  const words = args.trim().split(/[ \t]+/).filter((w) => w !== "");
  const first = words[0];
  const mech = first === undefined ? "" : isMechanismName(first) ? first : "****";
  return `AUTH${mech ? ` ${mech}` : ""}${words.length > 1 ? " ****" : ""}`;
}

function failedText(mechanism: string, reason: string, username?: string): string {
  return `SASL ${mechanism} authentication failed: ${reason}, sasl_username=${
    username === undefined ? "(unavailable)" : printableName(username)
  }`;
}
