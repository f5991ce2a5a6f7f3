/**
 * A stand-in listener thread for serve_test.ts (folder-private): it writes
 * one message to the end and one half, through a queue store that lists
 * its files as a listener thread's does, then stops hearing anything (as a
 * thread compiling a reload's tables does).
 *
 * @module
 */

import { QueueStore, SharedFileList } from "../queue/mod.ts";

/** What the test sends. */
export interface StuckWriterInit {
  directory: string;
  unfinished: SharedArrayBuffer;
}

/** What the thread answers once both files are on disk. */
export interface StuckWriterFiles {
  complete: string;
  half: string;
}

const self = globalThis as unknown as {
  onmessage: ((e: MessageEvent<StuckWriterInit>) => void) | null;
  postMessage(m: unknown): void;
};

self.onmessage = async (e) => {
  const store = new QueueStore(e.data.directory);
  store.shareUnfinished(new SharedFileList(e.data.unfinished));
  const write = async (commit: boolean) => {
    const file = store.create("incoming", new Date());
    file.writeEnvelope({
      arrival: new Date(),
      sender: "a@example.org",
      recipients: ["b@example.net"],
      attributes: [],
    });
    // Past 256 KiB: the file is on disk before its end.
    const line = new TextEncoder().encode("y".repeat(998));
    for (let i = 0; i < 400; i++) await file.line(line, 0, line.length, false);
    if (commit) await file.commit();
    return file.path;
  };
  const files: StuckWriterFiles = { complete: await write(true), half: await write(false) };
  self.onmessage = () => {
    for (;;) { /* deaf to the stop, as while compiling */ }
  };
  self.postMessage(files);
};
