/**
 * The lines of Dovecot's authentication protocol, client side (the protocol
 * behind Postfix's `smtpd_sasl_type = dovecot`): what we send (VERSION,
 * CPID, AUTH, CONT, CANCEL) and what the server answers (the handshake's
 * VERSION, MECH, SPID, CUID, COOKIE, DONE; then OK, CONT, FAIL per request).
 * Lines end in LF; fields are separated by TAB; optional fields are `name`
 * or `name=value`, with Dovecot's tab-escaping (\x01 then 0, 1, t, r, n/l).
 * Pure functions only: the connection lives in `dovecot_client.ts`.
 *
 * @module
 */

/** The protocol major version we speak; a server with another is refused. */
export const AUTH_PROTOCOL_MAJOR = 1;
/** The minor version we announce (1.2: CANCEL, and `resp=` last). */
export const AUTH_PROTOCOL_MINOR = 2;

/** One mechanism the server offers, with its security flags (lower case). */
export interface SaslMechanism {
  readonly name: string;
  /** Dovecot's flags: anonymous, plaintext, dictionary, active, forward-secrecy, mutual-auth, private. */
  readonly flags: ReadonlySet<string>;
}

/** Facts about the SMTP connection that Dovecot's policies may use. */
export interface SaslClientInfo {
  /** The SMTP client's address (rip). */
  readonly clientAddress?: string;
  /** The SMTP client's port (rport). */
  readonly clientPort?: number;
  /** Our address on the connection (lip). */
  readonly serverAddress?: string;
  /** Our port on the connection (lport). */
  readonly serverPort?: number;
  /** Whether the session runs over TLS (secured=tls). */
  readonly tls: boolean;
}

/** A server line after the handshake, parsed. */
export type ServerReply =
  | { kind: "ok"; id: number; fields: ReadonlyMap<string, string> }
  | { kind: "cont"; id: number; challenge: string }
  | { kind: "fail"; id: number; fields: ReadonlyMap<string, string> }
  | { kind: "other" };

/** A handshake line from the server, parsed. */
export type HandshakeLine =
  | { kind: "version"; major: number; minor: number }
  | { kind: "mech"; mechanism: SaslMechanism }
  | { kind: "spid" }
  | { kind: "done" }
  | { kind: "bad"; what: string }
  | { kind: "other" };

/**
 * Dovecot's auth server reads a client line into a buffer of 16384 bytes
 * (its AUTH_CLIENT_MAX_LINE_LENGTH); a longer line makes it drop the whole
 * connection, with every request on it. Our lines, LF included, stay below.
 */
export const MAX_REQUEST_LINE = 16_384;

/** A request line that Dovecot would not read: the request must fail alone. */
export class RequestTooLongError extends RangeError {
  constructor(length: number) {
    super(`Cannot send a request line of ${length} bytes: must be below ${MAX_REQUEST_LINE}`);
    this.name = "RequestTooLongError";
  }
}

const MECH_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const ADDRESS = /^[0-9A-Fa-f:.]{1,64}$/;
const SERVICE = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * The client's half of the handshake.
 * @param pid our process id (CPID)
 * @returns the two lines, LF-terminated
 */
export function encodeHandshake(pid: number): string {
  return `VERSION\t${AUTH_PROTOCOL_MAJOR}\t${AUTH_PROTOCOL_MINOR}\nCPID\t${pid}\n`;
}

/**
 * Parses one line of the server's handshake.
 * @param line the line without its LF
 * @returns what it says
 */
export function parseHandshakeLine(line: string): HandshakeLine {
  const fields = line.split("\t");
  switch (fields[0]) {
    case "VERSION": {
      const major = Number(fields[1]);
      const minor = Number(fields[2]);
      if (!/^\d{1,9}$/.test(fields[1] ?? "") || !/^\d{1,9}$/.test(fields[2] ?? "")) {
        return { kind: "bad", what: "Protocol version error" };
      }
      return { kind: "version", major, minor };
    }
    case "MECH": {
      const name = fields[1] ?? "";
      if (!MECH_NAME.test(name)) return { kind: "bad", what: "bad mechanism name" };
      const flags = new Set(fields.slice(2).map((f) => f.toLowerCase()));
      return { kind: "mech", mechanism: { name: name.toUpperCase(), flags } };
    }
    case "SPID":
      return { kind: "spid" };
    case "DONE":
      return { kind: "done" };
    default:
      return { kind: "other" };
  }
}

/**
 * An AUTH request line. `resp=` comes last: Dovecot refuses fields after it.
 * @param id the request id, unique on the connection
 * @param mechanism the mechanism, as the server named it
 * @param options service, connection facts and the base64 initial response
 * @returns the line, LF-terminated
 * @throws {TypeError} for a mechanism, service or response that cannot be sent
 * @throws {RequestTooLongError} for a line Dovecot would not read
 */
export function encodeAuth(
  id: number,
  mechanism: string,
  options: { service: string; info: SaslClientInfo; initialResponse?: string | undefined },
): string {
  const { service, info, initialResponse } = options;
  if (!MECH_NAME.test(mechanism)) throw new TypeError("bad mechanism name");
  if (!SERVICE.test(service)) throw new TypeError("bad service name");
  let line = `AUTH\t${id}\t${mechanism}\tservice=${service}\tnologin`;
  if (info.serverAddress && ADDRESS.test(info.serverAddress)) line += `\tlip=${info.serverAddress}`;
  if (info.clientAddress && ADDRESS.test(info.clientAddress)) line += `\trip=${info.clientAddress}`;
  if (isPort(info.serverPort)) line += `\tlport=${info.serverPort}`;
  if (isPort(info.clientPort)) line += `\trport=${info.clientPort}`;
  if (info.tls) line += "\tsecured=tls";
  if (initialResponse !== undefined) {
    if (!BASE64.test(initialResponse)) throw new TypeError("initial response is not base64");
    line += `\tresp=${initialResponse}`;
  }
  return bounded(line + "\n");
}

/**
 * A CONT line: the client's next response (base64) for a request.
 * @param id the request id
 * @param response the base64 response, possibly empty
 * @returns the line, LF-terminated
 * @throws {TypeError} for a response that is not base64
 * @throws {RequestTooLongError} for a line Dovecot would not read
 */
export function encodeCont(id: number, response: string): string {
  if (!BASE64.test(response)) throw new TypeError("response is not base64");
  return bounded(`CONT\t${id}\t${response}\n`);
}

/** The line (all ASCII: one byte a character), or the error when too long. */
function bounded(line: string): string {
  if (line.length >= MAX_REQUEST_LINE) throw new RequestTooLongError(line.length);
  return line;
}

/**
 * A CANCEL line: forget a request in progress.
 * @param id the request id
 * @returns the line, LF-terminated
 */
export function encodeCancel(id: number): string {
  return `CANCEL\t${id}\n`;
}

/**
 * Parses a server line after the handshake. A line that is not OK, CONT or
 * FAIL with a numeric id, or a CONT whose challenge is not base64, is
 * "other" (unknown commands are ignored, as the protocol asks).
 * @param line the line without its LF
 * @returns the reply
 */
export function parseServerReply(line: string): ServerReply {
  const fields = line.split("\t");
  const command = fields[0];
  const idText = fields[1] ?? "";
  if (!/^\d{1,10}$/.test(idText)) return { kind: "other" };
  const id = Number(idText);
  switch (command) {
    case "OK":
      return { kind: "ok", id, fields: parseFields(fields.slice(2)) };
    case "FAIL":
      return { kind: "fail", id, fields: parseFields(fields.slice(2)) };
    case "CONT": {
      const challenge = fields[2];
      if (challenge === undefined || !BASE64.test(challenge)) return { kind: "other" };
      return { kind: "cont", id, challenge };
    }
    default:
      return { kind: "other" };
  }
}

/**
 * Optional fields (`name` or `name=value`) into a map; a bare name maps to "".
 * The first occurrence of a name wins.
 * @param fields the raw fields
 * @returns name → unescaped value
 */
export function parseFields(fields: readonly string[]): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  for (const f of fields) {
    const eq = f.indexOf("=");
    const name = eq < 0 ? f : f.slice(0, eq);
    if (name === "" || out.has(name)) continue;
    out.set(name, eq < 0 ? "" : tabUnescape(f.slice(eq + 1)));
  }
  return out;
}

/**
 * Undoes Dovecot's tab-escaping: \x01 followed by 0 (NUL), 1 (\x01), t (TAB),
 * r (CR), n or l (LF); \x01 before anything else stands for that character.
 * @param text the escaped value
 * @returns the value
 */
export function tabUnescape(text: string): string {
  if (!text.includes("\x01")) return text;
  const map: Record<string, string> = {
    "0": "\0",
    "1": "\x01",
    t: "\t",
    r: "\r",
    n: "\n",
    l: "\n",
  };
  // deno-lint-ignore no-control-regex
  return text.replace(/\x01([\s\S]?)/g, (_m, c: string) => map[c] ?? c);
}

/**
 * A server-supplied text made safe for a log line or an SMTP reply: every
 * character outside printable ASCII becomes "?", and the text is cut at
 * `max` characters (as Postfix's printable() and "%.100s").
 * @param text the text
 * @param max the longest result
 * @returns the printable text
 */
export function printable(text: string, max = 100): string {
  return text.slice(0, max).replace(/[^\x20-\x7e]/g, "?");
}

/**
 * A user name from the server made safe for a log line, an SMTP reply, a
 * header comment and the queue file, as Postfix's printable() treats it
 * with smtputf8_enable (its default): control characters (C0, DEL, C1),
 * the Unicode line and paragraph separators and U+FFFD (a byte that was
 * not UTF-8) become "?", every other character stays. A UTF-8 login
 * ("straße") keeps its name for reject_sender_login_mismatch, the log and
 * the Received: header. Cut at `max` characters, never inside one.
 * @param text the name
 * @param max the longest result, in characters
 * @returns the printable name
 */
export function printableName(text: string, max = 255): string {
  return Array.from(text).slice(0, max).join("").replace(NOT_IN_NAME, "?");
}

/** What {@linkcode printableName} replaces. */
// deno-lint-ignore no-control-regex
const NOT_IN_NAME = /[\x00-\x1f\x7f-\x9f\u2028\u2029\ufffd]/g;

function isPort(port: number | undefined): port is number {
  return port !== undefined && Number.isInteger(port) && port >= 0 && port <= 65535;
}
