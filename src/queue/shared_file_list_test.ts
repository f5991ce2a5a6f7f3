import assert from "node:assert/strict";
import { join } from "./path.ts";
import { removeLeftUnfinished, SharedFileList } from "./shared_file_list.ts";

Deno.test("SharedFileList: names listed on one side are read on the other, until unlisted", () => {
  const mine = new SharedFileList(2);
  const theirs = new SharedFileList(mine.buffer);
  const a = mine.add("incoming/uAAAAAA0000zB");
  const b = mine.add("incoming/uAAAAAA0000zC");
  assert.equal(mine.add("incoming/uAAAAAA0000zD"), undefined, "full");
  assert.deepEqual(theirs.names().sort(), ["incoming/uAAAAAA0000zB", "incoming/uAAAAAA0000zC"]);
  mine.remove(a!);
  assert.deepEqual(theirs.names(), ["incoming/uAAAAAA0000zC"]);
  assert.notEqual(mine.add("incoming/uAAAAAA0000zD"), undefined, "a slot came free");
  mine.remove(b!);
  assert.deepEqual(theirs.names(), ["incoming/uAAAAAA0000zD"]);
  assert.equal(mine.add("x".repeat(65)), undefined, "too long");
});

Deno.test("removeLeftUnfinished: removes the listed files still being written, keeps complete ones and unlisted ones", async () => {
  const dir = await Deno.makeTempDir({ prefix: "smtpd-list-" });
  try {
    for (const sub of ["incoming", "hold"]) await Deno.mkdir(join(dir, sub));
    const put = (name: string, mode: number) =>
      Deno.writeTextFile(join(dir, name), "data", { mode }).then(() =>
        Deno.chmod(join(dir, name), mode)
      );
    await put("incoming/uHALF", 0o600);
    await put("incoming/uDONE", 0o700);
    await put("hold/uHELD", 0o600); // renamed into hold/, not marked complete yet
    await put("incoming/uOTHER", 0o600); // not listed: another process's
    const list = new SharedFileList(8);
    for (const n of ["incoming/uHALF", "incoming/uDONE", "incoming/uHELD", "incoming/uGONE"]) {
      list.add(n);
    }
    const removed = removeLeftUnfinished(dir, list);
    assert.deepEqual(removed.sort(), [join(dir, "hold/uHELD"), join(dir, "incoming/uHALF")]);
    const left = [];
    for await (const e of Deno.readDir(join(dir, "incoming"))) left.push(e.name);
    assert.deepEqual(left.sort(), ["uDONE", "uOTHER"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
