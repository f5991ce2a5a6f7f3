import assert from "node:assert/strict";
import {
  eachLine,
  forgetPrepared,
  preparedResult,
  preparedText,
  prepareFile,
  runSliced,
  runSteps,
  type Steps,
} from "./prepared.ts";

/** Scratch directory for table files (git-ignored var/). */
const SCRATCH = new URL("../../../var/tests/", import.meta.url).pathname;

/** Steps that each take about 1 ms, n of them; the result is how many ran. */
function* busy(n: number): Steps<number> {
  for (let i = 0; i < n; i++) {
    const end = performance.now() + 1;
    while (performance.now() < end) { /* work */ }
    yield;
  }
  return n;
}

Deno.test("runSliced() lets a timer run between slices; runSteps() runs at once", async () => {
  let fired = 0;
  const timer = setInterval(() => fired++, 1);
  try {
    assert.equal(await runSliced(busy(200), 10), 200);
    // 200 ms of work in slices of 10 ms: the timer got many turns (none at once).
    assert.ok(fired >= 5, `the timer ran ${fired} times`);
    fired = 0;
    assert.equal(runSteps(busy(50)), 50);
    assert.equal(fired, 0);
  } finally {
    clearInterval(timer);
  }
});

Deno.test("eachLine() gives the lines split() gives", () => {
  for (const text of ["", "a", "a\n", "a\nb", "\n\n", "a\r\nb\n\n"]) {
    assert.deepEqual([...eachLine(text)], text.split("\n"), JSON.stringify(text));
  }
});

Deno.test("preparedResult(): the prepared parse while the file is as read; read again once it changed", async () => {
  Deno.mkdirSync(SCRATCH, { recursive: true });
  const path = Deno.makeTempFileSync({ dir: SCRATCH, prefix: "prepared_test_" });
  let parses = 0;
  function* upper(text: string): Steps<string> {
    parses++;
    yield;
    if (text.includes("bad")) throw new Error("bad table");
    return text.toUpperCase();
  }
  const read = () => Deno.readTextFileSync(path);
  try {
    Deno.writeTextFileSync(path, "\uFEFFone");
    await prepareFile(path, { upper });
    assert.equal(parses, 1);
    assert.equal(preparedResult(path, "upper", upper, read), "ONE");
    assert.equal(parses, 1);
    // Another file now (a new inode, as an editor or rename leaves it).
    Deno.removeSync(path);
    Deno.writeTextFileSync(path, "two");
    assert.equal(preparedResult(path, "upper", upper, read), "TWO");
    assert.equal(parses, 2);
    // A prepared parse's error is the open's error.
    Deno.writeTextFileSync(path, "bad");
    await prepareFile(path, { upper });
    assert.throws(() => preparedResult(path, "upper", upper, read), /bad table/);
    forgetPrepared();
    Deno.writeTextFileSync(path, "three");
    assert.equal(preparedResult(path, "upper", upper, read), "THREE");
  } finally {
    forgetPrepared();
    Deno.removeSync(path);
  }
});

Deno.test("prepareFile(): a FIFO put at the path between the stat and the read is given up on, not waited on for ever", async () => {
  Deno.mkdirSync(SCRATCH, { recursive: true });
  const dir = Deno.makeTempDirSync({ dir: SCRATCH, prefix: "prepared_fifo_" });
  const path = `${dir}/access`;
  Deno.writeTextFileSync(path, "a@example.org REJECT\n");
  // The race made certain: the file the stat saw is replaced by a FIFO
  // just before the read opens the path.
  const read = Deno.readFile;
  Deno.readFile = (file, options) => {
    Deno.removeSync(path);
    new Deno.Command("mkfifo", { args: [path] }).outputSync();
    return read(file, options);
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const prepared = prepareFile(path, {}, 200);
  try {
    const outcome = await Promise.race([
      prepared.then(() => "returned"),
      new Promise((r) => (timer = setTimeout(() => r("still reading after 5 s"), 5_000))),
    ]);
    assert.equal(outcome, "returned");
    // Nothing prepared: the compilation reads the path itself, and
    // readRegularFile refuses a FIFO.
    assert.equal(preparedText(path), undefined);
  } finally {
    clearTimeout(timer);
    Deno.readFile = read;
    // A writer that comes and goes ends the open still waiting on the FIFO.
    await new Deno.Command("timeout", { args: ["5", "sh", "-c", `: > "$1"`, "sh", path] })
      .output();
    await prepared;
    forgetPrepared();
    Deno.removeSync(dir, { recursive: true });
  }
});
