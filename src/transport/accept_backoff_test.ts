import assert from "node:assert/strict";
import { AcceptBackoff, describeAcceptError } from "./accept_backoff.ts";
import { resourceShortage } from "../io/os_error.ts";

const emfile = new Error("Too many open files (os error 24)");

function recorder() {
  const lines: string[] = [];
  return {
    lines,
    log: {
      warning: (t: string) => lines.push(`warning: ${t}`),
      info: (t: string) => lines.push(t),
    },
  };
}

Deno.test("resourceShortage: EMFILE, ENFILE, ENOBUFS, ENOMEM by code or by OS error number", () => {
  assert.equal(resourceShortage(emfile), "EMFILE");
  assert.equal(
    resourceShortage(new Error("Too many open files in system (os error 23)")),
    "ENFILE",
  );
  assert.equal(resourceShortage(Object.assign(new Error("x"), { code: "ENOBUFS" })), "ENOBUFS");
  assert.equal(resourceShortage(new Error("Connection reset by peer (os error 104)")), undefined);
  assert.equal(describeAcceptError(emfile), "too many open files");
  assert.equal(
    describeAcceptError(new Error("Invalid argument (os error 22)")),
    "Invalid argument",
  );
});

Deno.test("AcceptBackoff: waits double from 10 ms to 1 s, one warning per burst", () => {
  const r = recorder();
  const b = new AcceptBackoff(r.log);
  const waits = Array.from({ length: 10 }, () => b.failed(emfile));
  assert.deepEqual(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
  assert.deepEqual(r.lines, ["warning: accept: too many open files; backing off"]);
  b.dispose();
});

Deno.test("AcceptBackoff: the burst ends once accepting has worked for the settling time", async () => {
  const r = recorder();
  let now = 1000;
  const b = new AcceptBackoff(r.log, { settleMs: 30, now: () => now });
  b.failed(emfile);
  now += 50;
  b.failed(emfile);
  now += 20;
  // One accept gets through (a session ended), and the next fails again:
  // the same burst, nothing logged, and the wait starts again from 10 ms.
  b.succeeded();
  assert.equal(b.failed(emfile), 10);
  now += 30;
  b.succeeded();
  b.succeeded();
  await new Promise((res) => setTimeout(res, 80));
  assert.deepEqual(r.lines, [
    "warning: accept: too many open files; backing off",
    "accept: recovered after 100 ms, 3 attempts",
  ]);
  assert.equal(b.failingSince, undefined);
  // A later burst is a new one, logged again.
  b.failed(emfile);
  assert.equal(r.lines.length, 3);
  b.dispose();
});
