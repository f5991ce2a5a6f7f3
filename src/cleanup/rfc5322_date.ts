/**
 * RFC 5322 §3.3 date-time, as Postfix writes it in Date: and Received:
 * headers: "Thu, 26 Nov 2026 10:22:05 +0000 (UTC)" (zone name left out).
 *
 * @module
 */

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function two(n: number): string {
  return String(n).padStart(2, "0");
}

/**
 * Formats a date in local time with its numeric offset.
 * @param d the time
 * @returns the RFC 5322 date-time
 */
export function formatRfc5322Date(d: Date): string {
  const offsetMin = -d.getTimezoneOffset();
  const sign = offsetMin >= 0 ? "+" : "-";
  const abs = Math.abs(offsetMin);
  return `${DAYS[d.getDay()]}, ${d.getDate()} ${MONTHS[d.getMonth()]} ${d.getFullYear()} ${
    two(d.getHours())
  }:${two(d.getMinutes())}:${two(d.getSeconds())} ${sign}${two(Math.floor(abs / 60))}${
    two(abs % 60)
  }`;
}

/**
 * The compact stamp Postfix uses in Message-IDs: YYYYMMDDhhmmss (UTC).
 * @param d the time
 * @returns the stamp
 */
export function compactStamp(d: Date): string {
  return `${d.getUTCFullYear()}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${
    two(d.getUTCHours())
  }${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}`;
}
