/**
 * Turns on the thread that every session of a listener shares. A session
 * runs the commands it has already read with only promise waits between
 * them, so a client that pipelines would keep the thread for all it sent
 * in one read (64 KiB of 1.7 KB RCPT lines with UTF-8 addresses: about
 * 2 ms; of short ones, 20 ms and more), and everyone else's next step (a
 * reply, a write of a queue file) waits. Postfix has a process per session,
 * and the kernel shares the CPUs among them.
 *
 * So a session with more input waiting pauses after {@linkcode TURN_MS} of
 * commands. A pause through the event loop's immediate queue is cheap, but
 * Deno's runtime looks for new I/O only when it has nothing left to run or
 * after 61 such rounds, so a pause through a timer, which fires only after
 * that look, is taken once the thread has gone {@linkcode POLL_MS} without
 * one. A listener that accepts clients on the thread needs those looks
 * too: without them a lone client that pipelines megabytes kept every new
 * client from its greeting until it was done (2.5 s for 300,000 HELO). A
 * timer costs up to 2 ms of idle time when the sessions that have work are
 * all paused, so the wait between timers doubles (up to
 * {@linkcode MAX_POLL_MS}) while no client was heard from during one (a new
 * connection, or a command that had to wait for its client's bytes: what
 * the look for I/O is for). So clients that pipeline thousands of
 * commands, alone or beside idle sessions, lose a few percent of their
 * speed, and a client heard from again waits for one look at most. A
 * session with neither another session nor a listener on its thread (the
 * stand-alone mode) never pauses.
 *
 * @module
 */

import { setImmediate } from "node:timers";

/** How long (ms) a session runs read-ahead commands before others get a turn. */
export const TURN_MS = 0.5;
/** How long (ms) the thread may go without looking for new I/O while sessions pause. */
export const POLL_MS = 5;
/** The longest such time, reached while no client is heard from. */
export const MAX_POLL_MS = 40;

let live = 0;
let listeners = 0;
let lastPoll = 0;
let pollEvery = POLL_MS;
let heard = 0;
let pauses = { cheap: 0, polled: 0 };

/** A session starts reading commands on this thread. */
export function sessionStarted(): void {
  live++;
}

/** A session stopped reading commands. */
export function sessionEnded(): void {
  live--;
}

/** A listener starts accepting clients on this thread (it needs looks for I/O too). */
export function listenerOpened(): void {
  listeners++;
}

/** A listener stopped accepting. */
export function listenerClosed(): void {
  listeners--;
}

/** A client was heard from: a new connection, or a command the session had waited for (I/O the thread had to look for). */
export function clientWasHeard(): void {
  heard++;
}

/**
 * Whether a session that has run read-ahead commands since `since` should
 * pause now.
 * @param since when its turn began (performance.now())
 * @returns true when its turn is over and another session or a listener could use one
 */
export function turnOver(since: number): boolean {
  if (live + listeners <= 1) return false;
  const now = performance.now();
  if (now - since < TURN_MS) return false;
  // Alone with a listener, only the look for I/O is owed: no cheap pauses.
  return live > 1 || lookOwed(now);
}

/** Whether the thread has gone long enough without a look for I/O that a pause must wait for one. */
function lookOwed(now: number): boolean {
  return now - lastPoll >= pollEvery;
}

/**
 * Lets the thread's other sessions run (and, when it is due, the runtime
 * look for new I/O). Paused sessions wait in line and go on one at a
 * time, one per round of the event loop, so that many of them cannot
 * fill a round between two looks for I/O.
 * @returns a promise settled when this session may go on
 */
export function pause(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    if (!scheduled) schedule();
  });
}

const waiting: (() => void)[] = [];
let scheduled = false;

/** Lets the next paused session go on at the next round, or after the next look for I/O. */
function schedule(): void {
  scheduled = true;
  if (!lookOwed(performance.now())) {
    pauses.cheap++;
    setImmediate(next);
    return;
  }
  pauses.polled++;
  const before = heard;
  setTimeout(() => {
    lastPoll = performance.now();
    pollEvery = heard !== before ? POLL_MS : Math.min(2 * pollEvery, MAX_POLL_MS);
    next();
  }, 0);
}

function next(): void {
  scheduled = false;
  // It runs when this callback has returned (a promise's continuation).
  waiting.shift()?.();
  if (waiting.length > 0) schedule();
}

/**
 * The pauses taken so far on this thread (for tests).
 * @returns how many were cheap and how many waited for the runtime's I/O look
 */
export function pausesTaken(): { cheap: number; polled: number } {
  return { ...pauses };
}

/**
 * The wait between looks for I/O now, and a way to make the next pause
 * look (for tests, which cannot count on a loaded host's timing).
 * @returns the wait in ms
 */
export function lookEvery(): number {
  return pollEvery;
}

/** Makes the next pause wait for a look for I/O (for tests). */
export function lookDue(): void {
  lastPoll = -Infinity;
}

/** Forgets the counts and the last look (for tests). */
export function resetTurns(): void {
  live = 0;
  listeners = 0;
  lastPoll = 0;
  pollEvery = POLL_MS;
  heard = 0;
  pauses = { cheap: 0, polled: 0 };
}
