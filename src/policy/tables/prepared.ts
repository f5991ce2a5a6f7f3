/**
 * Table files read and parsed ahead of a reload's compilation, a slice at a
 * time. Compiling a configuration is synchronous, and a table of a million
 * lines takes seconds to parse: done at once, a reload would leave every
 * session of the thread without replies, and new clients without a
 * greeting, for that long. So a reload first reads each table file the
 * configuration names (asynchronously) and parses it in slices of at most
 * {@linkcode SLICE_MS} between which the thread serves its sessions; the
 * compilation that follows takes the parsed contents from here.
 *
 * A parse is written once, as steps ({@linkcode Steps}: a generator that
 * yields now and then), and run either at once ({@linkcode runSteps}, at
 * start and by `config --check`) or in slices ({@linkcode runSliced}).
 * What is kept here is taken only while the file's inode, size and times
 * are those it had when read; otherwise the file is read again at once, as
 * without this. {@linkcode forgetPrepared} lets go of it all once the
 * compilation is over.
 *
 * @module
 */

import { resolve } from "node:path";
import { readFileWithin } from "../../config/paths.ts";

/** A computation that yields between small pieces of its work. */
export type Steps<T> = Generator<void, T, void>;

/** The longest run of parsing between two turns of the event loop, in milliseconds. */
export const SLICE_MS = 10;

/**
 * Runs steps to their end at once.
 * @param steps the computation
 * @returns its result
 */
export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * Runs steps in slices of at most `sliceMs`, letting the event loop run
 * (timers, sockets) between slices.
 * @param steps the computation
 * @param sliceMs the longest slice
 * @returns its result
 */
export async function runSliced<T>(steps: Steps<T>, sliceMs = SLICE_MS): Promise<T> {
  let start = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - start >= sliceMs) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      start = performance.now();
    }
  }
}

/** How many lines a parse handles between two yields. */
export const LINES_PER_STEP = 512;

/**
 * The lines of a text as `text.split("\n")` has them, one at a time: a
 * split of a large file at once was a pause of its own.
 * @param text the text
 * @returns the lines
 */
export function* eachLine(text: string): Generator<string, void, void> {
  let pos = 0;
  for (;;) {
    const end = text.indexOf("\n", pos);
    if (end < 0) {
      yield text.slice(pos);
      return;
    }
    yield text.slice(pos, end);
    pos = end + 1;
  }
}

/** A file as it was read, and what was computed from its text so far. */
interface PreparedFile {
  readonly stamp: string;
  readonly text: string;
  /** Kind of result (the parse it is of) → the result, or the error it threw. */
  readonly results: Map<string, { value: unknown } | { error: unknown }>;
}

const prepared = new Map<string, PreparedFile>();

/** How a file looks now: inode, size and times; "" when it cannot be seen. */
function stampOf(path: string): string {
  try {
    const st = Deno.statSync(path);
    return st.isFile ? `${st.ino} ${st.size} ${st.mtime?.getTime()} ${st.ctime?.getTime()}` : "";
  } catch {
    return "";
  }
}

/** The prepared file at a path, when the file is still the one read. */
function current(path: string): PreparedFile | undefined {
  const abs = resolve(path);
  const p = prepared.get(abs);
  if (p === undefined) return undefined;
  if (stampOf(abs) === p.stamp) return p;
  prepared.delete(abs);
  return undefined;
}

/**
 * How long a reload waits for a table file's text. A regular file is read
 * in far less; a FIFO put at the path between the stat and the open (the
 * stat saw a regular file) has its open wait for a writer for ever, and
 * with it this reload and every later one (each waits for the one before).
 */
export const READ_WAIT_MS = 10_000;

/**
 * Reads a file and computes from its text, in slices, the results a
 * compilation will ask for ({@linkcode preparedResult}). A file that cannot
 * be read (within `waitMs`), or that changes while it is read, is left
 * out: the compilation reads it itself and says what is wrong with it.
 * @param path the file
 * @param parses kind → the parse of the text
 * @param waitMs how long the read may take
 */
export async function prepareFile(
  path: string,
  parses: Readonly<Record<string, (text: string) => Steps<unknown>>>,
  waitMs = READ_WAIT_MS,
): Promise<void> {
  const abs = resolve(path);
  const before = stampOf(abs);
  if (before === "") return;
  let text;
  try {
    // As Deno.readTextFile: not-UTF-8 bytes as U+FFFD, a BOM kept (cut below).
    text = new TextDecoder("utf-8", { ignoreBOM: true }).decode(await readFileWithin(abs, waitMs));
  } catch {
    return;
  }
  if (stampOf(abs) !== before) return;
  if (text.startsWith("\uFEFF")) text = text.slice(1);
  const file: PreparedFile = { stamp: before, text, results: new Map() };
  prepared.set(abs, file);
  for (const [kind, parse] of Object.entries(parses)) {
    try {
      file.results.set(kind, { value: await runSliced(parse(text)) });
    } catch (error) {
      file.results.set(kind, { error });
    }
  }
}

/**
 * The text of a prepared file (without a byte-order mark), when it is still
 * as read.
 * @param path the file
 * @returns its text, or undefined
 */
export function preparedText(path: string): string | undefined {
  return current(path)?.text;
}

/**
 * A parse of a file: the prepared one when the file is still as read,
 * else run at once (on the prepared text, or on `text()`).
 * @param path the file
 * @param kind which parse
 * @param parse the parse
 * @param text reads the file (when it was not prepared)
 * @returns the result
 * @throws what the parse throws (also a prepared parse's error)
 */
export function preparedResult<T>(
  path: string,
  kind: string,
  parse: (text: string) => Steps<T>,
  text: () => string,
): T {
  const file = current(path);
  const done = file?.results.get(kind);
  if (done === undefined) return runSteps(parse(file?.text ?? text()));
  if ("error" in done) throw done.error;
  return done.value as T;
}

/** Lets go of every prepared file (the compilation that used them is over). */
export function forgetPrepared(): void {
  prepared.clear();
}
