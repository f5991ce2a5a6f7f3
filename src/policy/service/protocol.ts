/**
 * Postfix's SMTPD access policy delegation protocol (SMTPD_POLICY_README):
 * a request is `name=value` lines ended by an empty line; the reply is
 * `action=...` and an empty line. Values a client controls never forge an
 * attribute: a CR, LF or NUL in a value becomes "?" (Postfix itself never
 * sends one: its command reader ends a line at LF). Replies are bounded
 * ({@linkcode REPLY_LIMIT}) and must be UTF-8.
 *
 * @module
 */

import { encodeWireText } from "../../io/wire_text.ts";

/** The largest reply accepted, in bytes; a longer one is a broken server. */
export const REPLY_LIMIT = 8192;

/** One request: attribute names and values, in order. */
export type Attributes = readonly (readonly [name: string, value: string])[];

/**
 * Encodes a request.
 * @param attrs the attributes
 * @returns the bytes to send
 */
export function encodeRequest(attrs: Attributes): Uint8Array {
  let text = "";
  for (const [name, value] of attrs) text += `${name}=${safeValue(value)}\n`;
  // With smtputf8_enable off a client's byte that is not UTF-8 goes on as
  // that byte, as Postfix's smtpd sends it (not as U+FFFD).
  return encodeWireText(`${text}\n`);
}

/**
 * A value as it may go on the wire: CR, LF and NUL become "?".
 * @param value the value
 * @returns the value without line breaks
 */
export function safeValue(value: string): string {
  return value.replace(/[\r\n\0]/g, "?");
}

/** What a reply said. */
export type ParsedReply =
  | { kind: "action"; action: string }
  | { kind: "incomplete" }
  | { kind: "error"; reason: string };

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses the bytes received so far. The first `action=` attribute counts;
 * other attributes are skipped (as Postfix's attr_scan_plain does); bytes
 * after the empty line mean the server is out of step.
 * @param bytes what the server sent
 * @returns the action, "incomplete" (read more), or an error
 */
export function parseReply(bytes: Uint8Array): ParsedReply & { trailing?: boolean } {
  let end = -1;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 10) continue;
    // An empty line: LF at the start, or LF after LF (or after CR LF).
    const prev = i > 0 && bytes[i - 1] === 13 ? i - 2 : i - 1;
    if (prev < 0 || bytes[prev] === 10) {
      end = i;
      break;
    }
  }
  if (end < 0) {
    return bytes.length > REPLY_LIMIT
      ? { kind: "error", reason: `reply longer than ${REPLY_LIMIT} bytes` }
      : { kind: "incomplete" };
  }
  if (end + 1 > REPLY_LIMIT) {
    return { kind: "error", reason: `reply longer than ${REPLY_LIMIT} bytes` };
  }
  let text: string;
  try {
    text = decoder.decode(bytes.subarray(0, end + 1));
  } catch {
    return { kind: "error", reason: "malformed UTF-8 in reply" };
  }
  const trailing = end + 1 < bytes.length;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "");
    if (line.startsWith("action=")) {
      const action = line.slice("action=".length).trim();
      if (!action) return { kind: "error", reason: "empty action attribute", trailing };
      return { kind: "action", action, trailing };
    }
  }
  return { kind: "error", reason: "missing attribute action", trailing };
}
