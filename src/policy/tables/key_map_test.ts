import assert from "node:assert/strict";
import { KeyMap } from "./key_map.ts";

Deno.test("KeyMap: gets what was set, keeps insertion order, and a new value keeps a key's place", () => {
  const m = new KeyMap<string>();
  const keys = Array.from({ length: 2000 }, (_, i) => `user${i}@example.com`);
  for (const k of keys) m.set(k, `v ${k}`);
  m.set("user7@example.com", "again");
  assert.equal(m.size, 2000);
  assert.deepEqual(m.keys(), keys);
  assert.equal(m.get("user7@example.com"), "again");
  assert.equal(m.get("user1999@example.com"), "v user1999@example.com");
  assert.equal(m.get("nobody@example.com"), undefined);
  assert.equal(m.has("user0@example.com"), true);
  assert.equal(m.has("straße"), false);
  assert.deepEqual([...m].slice(6, 8), [
    ["user6@example.com", "v user6@example.com"],
    ["user7@example.com", "again"],
  ]);
});
