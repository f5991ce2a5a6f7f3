/**
 * BODY= survives Postfix's pickup: `smtpd stdin` writes a maildrop file for
 * a message sent with BODY=8BITMIME; a private Postfix's pickup hands it to
 * its cleanup, which holds it (header_checks static:HOLD) so its queue file
 * can be read. pickup drops the extracted segment's encoding attribute (as
 * it does after `postsuper -r`); only the one after the sender record, where
 * Postfix's smtpd and sendmail put it, reaches cleanup and so qmgr and the
 * smtp client (BODY=8BITMIME when relaying). Needs root and Postfix.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { makeWorkDir, postcat, runStdin, waitFor, writeConfig } from "./_harness.ts";
import { havePostfix, startPostfix } from "./_postfix.ts";

const isRoot = Deno.uid() === 0;
const hasPostfix = await havePostfix();

async function heldFiles(queueDir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(join(queueDir, "hold"))) {
      out.push(join(queueDir, "hold", e.name));
    }
  } catch { /* not yet */ }
  return out;
}

Deno.test({
  name: "BODY=8BITMIME and BODY=7BIT reach Postfix's cleanup through pickup",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("encoding");
    const pf = await startPostfix(dir, {
      name: "encoding",
      mainCfExtra: "header_checks = static:HOLD\n",
    });
    try {
      const { configFile } = await writeConfig(dir, pf.smtpdConfig);
      for (const [body, value] of [["8BITMIME", "8bit"], ["7BIT", "7bit"]]) {
        const r = await runStdin(
          configFile,
          `EHLO local\r\nMAIL FROM:<s@example.org> BODY=${body}\r\nRCPT TO:<r@example.com>\r\n` +
            "DATA\r\nSubject: enc\r\n\r\nGr\u00fc\u00dfe\r\n.\r\nQUIT\r\n",
        );
        assert.match(r.stdout, /250 2\.0\.0 Ok: queued as/, r.stdout + r.stderr);
        // Postfix's pickup and cleanup on a loaded host: more than the default 20 s.
        await waitFor(
          "Postfix's held file",
          async () => (await heldFiles(pf.queueDir)).length > 0,
          60_000,
        );
        const [file] = await heldFiles(pf.queueDir);
        assert.ok(file);
        const text = await postcat(file);
        assert.match(text, new RegExp(`^named_attribute: encoding=${value}$`, "m"), text);
        await Deno.remove(file);
      }
    } finally {
      await pf.stop();
    }
  },
});
