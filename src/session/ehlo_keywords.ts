/**
 * The EHLO keyword list (RFC 1869/5321 §4.1.1.1): PIPELINING (RFC 2920),
 * SIZE (RFC 1870), VRFY, STARTTLS (RFC 3207), AUTH (RFC 4954),
 * ENHANCEDSTATUSCODES (RFC 2034), 8BITMIME (RFC 6152), in Postfix's order.
 *
 * @module
 */

/**
 * Builds the lines after the greeting line of the EHLO reply.
 * @param options the settings that shape the list
 * @returns the keyword lines
 */
export function ehloKeywords(
  options: {
    messageSizeLimit: number;
    vrfy: boolean;
    etrn: boolean;
    starttls?: boolean;
    /** The AUTH lines ("AUTH PLAIN LOGIN", and "AUTH=PLAIN LOGIN" for broken clients). */
    auth?: readonly string[];
  },
): string[] {
  const out = ["PIPELINING", `SIZE ${options.messageSizeLimit}`];
  if (options.vrfy) out.push("VRFY");
  if (options.etrn) out.push("ETRN");
  if (options.starttls) out.push("STARTTLS");
  if (options.auth) out.push(...options.auth);
  out.push("ENHANCEDSTATUSCODES", "8BITMIME");
  return out;
}
