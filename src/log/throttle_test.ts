import assert from "node:assert/strict";
import { throttled } from "./throttle.ts";

Deno.test("throttled() writes the first event, then one a interval with the count held back", () => {
  let clock = 0;
  const lines: string[] = [];
  const log = throttled(
    (held: number, what: string) => {
      lines.push(`${what} +${held}`);
    },
    10_000,
    () => clock,
  );
  log("a");
  log("b");
  log("c");
  clock = 9_999;
  log("d");
  assert.deepEqual(lines, ["a +0"]);
  clock = 10_000;
  log("e");
  assert.deepEqual(lines, ["a +0", "e +3"]);
  clock = 30_000;
  log("f");
  assert.deepEqual(lines, ["a +0", "e +3", "f +0"]);
});
