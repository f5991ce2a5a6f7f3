/**
 * The EHLO keyword list (RFC 1869/5321 §4.1.1.1): PIPELINING (RFC 2920),
 * SIZE (RFC 1870), VRFY, ENHANCEDSTATUSCODES (RFC 2034), 8BITMIME (RFC 6152),
 * CHUNKING (RFC 3030; last, as Postfix 3.4+). BINARYMIME is not offered:
 * the Postfix behind us cannot deliver binary content.
 *
 * @module
 */

/**
 * Builds the lines after the greeting line of the EHLO reply.
 * @param options the settings that shape the list
 * @returns the keyword lines
 */
export function ehloKeywords(
  options: { messageSizeLimit: number; vrfy: boolean; etrn: boolean; starttls?: boolean },
): string[] {
  const out = ["PIPELINING", `SIZE ${options.messageSizeLimit}`];
  if (options.vrfy) out.push("VRFY");
  if (options.etrn) out.push("ETRN");
  if (options.starttls) out.push("STARTTLS");
  out.push("ENHANCEDSTATUSCODES", "8BITMIME", "CHUNKING");
  return out;
}
