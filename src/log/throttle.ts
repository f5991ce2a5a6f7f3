/**
 * Log lines for events that come in floods (refusals at the connection
 * limit, idle sessions closed, stress mode that comes and goes): the first
 * is logged, then at most one every interval, which says how many were
 * held back since the last.
 *
 * @module
 */

/**
 * Wraps a line writer so that it runs at most once every `intervalMs`.
 * @param write writes the line; `heldBack` is how many events since the
 *   last line were not logged
 * @param intervalMs the least time between two lines
 * @param now the clock (tests)
 * @returns the event function: call it for every event
 */
export function throttled<A extends unknown[]>(
  write: (heldBack: number, ...args: A) => void,
  intervalMs: number,
  now: () => number = Date.now,
): (...args: A) => void {
  let events = 0;
  let logged = -Infinity;
  return (...args: A) => {
    events++;
    const t = now();
    if (t - logged < intervalMs) return;
    write(events - 1, ...args);
    events = 0;
    logged = t;
  };
}
