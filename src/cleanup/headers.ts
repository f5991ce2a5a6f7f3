/**
 * Recognizes header lines (RFC 5322 §2.2) and the fields cleanup cares
 * about, working on raw bytes so 8-bit headers pass unchanged.
 *
 * @module
 */

/** What the header block contained. */
export interface HeaderFacts {
  received: number;
  messageId: string | undefined;
  hasDate: boolean;
  hasFrom: boolean;
}

const COLON = 58;

/**
 * Whether a line starts a header field: a name of printable ASCII except ":", then ":".
 * @param line the line bytes
 * @returns true for "Name:" lines
 */
export function isHeaderStart(line: Uint8Array): boolean {
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as number;
    if (c === COLON) return i > 0;
    if (c < 33 || c > 126) return false;
  }
  return false;
}

/**
 * Whether a line continues the previous header (starts with SP or HTAB).
 * @param line the line bytes
 * @returns true for folded continuation lines
 */
export function isContinuation(line: Uint8Array): boolean {
  return line.length > 0 && (line[0] === 32 || line[0] === 9);
}

/**
 * The lower-cased field name of a header line.
 * @param line a line for which {@linkcode isHeaderStart} holds
 * @returns the name
 */
export function headerName(line: Uint8Array): string {
  const colon = line.indexOf(COLON);
  let name = "";
  for (let i = 0; i < colon; i++) name += String.fromCharCode((line[i] as number) | 0x20);
  return name;
}

/**
 * Scans complete header fields (each possibly multi-line, joined) for the facts cleanup needs.
 * @param fields each field's first line name and full text
 * @returns the facts
 */
export function scanHeaders(fields: readonly { name: string; value: string }[]): HeaderFacts {
  const facts: HeaderFacts = { received: 0, messageId: undefined, hasDate: false, hasFrom: false };
  for (const f of fields) {
    if (f.name === "received") facts.received++;
    else if (f.name === "message-id") facts.messageId ??= f.value.trim();
    else if (f.name === "date") facts.hasDate = true;
    else if (f.name === "from") facts.hasFrom = true;
  }
  return facts;
}
