import assert from "node:assert/strict";
import { join } from "./path.ts";
import { REC, RecordBuffer } from "./queue_file.ts";
import { readQueueFile } from "./queue_reader.ts";

const enc = new TextEncoder();

Deno.test("readQueueFile() shows UTF-8 as UTF-8 (an SMTPUTF8 recipient, a raw ORCPT), other bytes one to a character", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const b = new RecordBuffer();
    b.putText(REC.time, "1796494894 0");
    b.putText(REC.from, "s@example.org");
    b.putText(REC.attr, "dsn_orig_rcpt=rfc822;j\u00f6rg\u0100\u045d@b\u00fccher.example");
    b.putText(REC.rcpt, "j\u00f6rg@b\u00fccher.example");
    // Not UTF-8 (a queue file from Postfix's smtpd with smtputf8_enable = no).
    b.put(REC.attr, new Uint8Array([...enc.encode("x=a"), 0xe9, 0x41, 0x80, 0x9d]));
    b.putText(REC.mesg, "0");
    // "Gr\u00fc\u00dfe" split inside the \u00fc between a cont and a norm record.
    const line = enc.encode("Subject: Gr\u00fc\u00dfe");
    b.put(REC.cont, line.subarray(0, 12));
    b.put(REC.norm, line.subarray(12));
    b.putText(REC.norm, "");
    b.putText(REC.norm, "\u20ac body");
    b.putText(REC.xtra, "");
    b.putText(REC.end, "");
    const path = join(dir, "ABCDEF");
    await Deno.writeFile(path, b.bytes(), { mode: 0o700 });
    await Deno.chmod(path, 0o700);
    const e = await readQueueFile(path, "incoming", true);
    assert.equal(e.complete, true, e.problem);
    assert.deepEqual(e.recipients, ["j\u00f6rg@b\u00fccher.example"]);
    assert.equal(
      e.attributes["dsn_orig_rcpt"],
      "rfc822;j\u00f6rg\u0100\u045d@b\u00fccher.example",
    );
    assert.equal(e.attributes["x"], "a\u00e9A\u0080\u009d");
    assert.equal(e.content, "Subject: Gr\u00fc\u00dfe\n\n\u20ac body\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readQueueFile() shows the long line a truncated file ends in (cont records, no norm)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const b = new RecordBuffer();
    b.putText(REC.time, "1796494894 0");
    b.putText(REC.from, "s@example.org");
    b.putText(REC.rcpt, "r@example.org");
    b.putText(REC.mesg, "0");
    b.putText(REC.norm, "Subject: t");
    b.putText(REC.norm, "");
    // The file stops inside a long line (a crash, a full disk, a copy).
    b.putText(REC.cont, "a long line, ");
    b.putText(REC.cont, "cut \u00e9");
    const path = join(dir, "ABCDEF");
    await Deno.writeFile(path, b.bytes(), { mode: 0o600 });
    const e = await readQueueFile(path, "incoming", true);
    assert.equal(e.complete, false);
    assert.equal(e.content, "Subject: t\n\na long line, cut \u00e9");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
