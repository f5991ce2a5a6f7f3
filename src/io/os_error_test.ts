import * as assert from "node:assert/strict";
import { outOfDescriptors, resourceShortage } from "./os_error.ts";

Deno.test("resourceShortage: by code, by OS error number, by words", () => {
  assert.equal(resourceShortage(Object.assign(new Error("x"), { code: "EMFILE" })), "EMFILE");
  assert.equal(resourceShortage(new Error("Too many open files (os error 24)")), "EMFILE");
  assert.equal(resourceShortage(new Error("Too many open files in system")), "ENFILE");
  assert.equal(resourceShortage(new Error("Too many open files")), "EMFILE");
  assert.equal(resourceShortage(new Error("Cannot allocate memory (os error 12)")), "ENOMEM");
  assert.equal(resourceShortage(new Error("No such file or directory (os error 2)")), undefined);
  assert.equal(resourceShortage(undefined), undefined);
});

Deno.test("outOfDescriptors: EMFILE and ENFILE only", () => {
  assert.equal(outOfDescriptors(new Error("Too many open files (os error 24)")), true);
  assert.equal(outOfDescriptors(new Error("Too many open files in system (os error 23)")), true);
  assert.equal(outOfDescriptors(new Error("No buffer space available (os error 105)")), false);
  assert.equal(outOfDescriptors(new Error("Permission denied (os error 13)")), false);
  assert.equal(outOfDescriptors(undefined), false);
});
