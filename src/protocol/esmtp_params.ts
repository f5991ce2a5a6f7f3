/**
 * MAIL FROM parameters: SIZE= (RFC 1870) and BODY= (RFC 6152, formerly
 * 1652). Anything else is refused with 555 (RFC 5321 §4.1.1.11).
 *
 * @module
 */

import { type Reply, reply, unsupportedOption } from "./reply.ts";

/** Parsed MAIL parameters. */
export interface MailParams {
  readonly size: number | undefined;
  readonly body: "7BIT" | "8BITMIME" | undefined;
}

/**
 * Parses the parameter text after the reverse-path.
 * @param text e.g. "SIZE=1000 BODY=8BITMIME"
 * @returns the parameters, or the error reply
 */
export function parseMailParams(text: string): MailParams | Reply {
  let size: number | undefined;
  let body: MailParams["body"];
  for (const item of text.split(/[ \t]+/)) {
    if (item === "") continue;
    const eq = item.indexOf("=");
    const name = (eq < 0 ? item : item.slice(0, eq)).toUpperCase();
    const value = eq < 0 ? undefined : item.slice(eq + 1);
    if (name === "SIZE") {
      if (value === undefined || !/^\d{1,15}$/.test(value)) {
        return reply(501, "5.4", "Bad message size syntax");
      }
      size = Number(value);
    } else if (name === "BODY") {
      const v = value?.toUpperCase();
      if (v !== "7BIT" && v !== "8BITMIME") {
        return reply(501, "5.4", "Unsupported BODY parameter value");
      }
      body = v;
    } else {
      return unsupportedOption(item);
    }
  }
  return { size, body };
}

/**
 * Parses RCPT TO parameters: none are supported.
 * @param text the parameter text
 * @returns undefined when empty, else the 555 reply
 */
export function checkRcptParams(text: string): Reply | undefined {
  const first = text.split(/[ \t]+/).find((s) => s !== "");
  return first === undefined ? undefined : unsupportedOption(first);
}
