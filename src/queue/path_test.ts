import assert from "node:assert/strict";
import { join } from "./path.ts";

Deno.test("join: queue paths from a directory and names", () => {
  assert.equal(
    join("/var/spool/smtpd", "incoming", "4jfH3f4Ph7z2fm5Ys3C9"),
    "/var/spool/smtpd/incoming/4jfH3f4Ph7z2fm5Ys3C9",
  );
  assert.equal(join("var/spool/", "incoming"), "var/spool/incoming");
  assert.equal(join("var/spool", "", "maildrop"), "var/spool/maildrop");
  assert.equal(join("/", "x"), "/x");
});
