/**
 * The smoke set of the plain-text SMTP dialogs: those marked "# smoke"
 * are played through stand-alone mode, `smtpd stdin` with the production
 * flags (the real executable, its own dependencies), and must get the
 * replies the in-process runner (tests/dialogs_inprocess_test.ts) gets.
 * The dialog format: tests/_dialog.ts.
 */

import assert from "node:assert/strict";
import { compareReplies, readDialogs, splitReplies } from "./_dialog.ts";
import { playDialog } from "./_dialog_runner.ts";
import { makeWorkDir, postcat, queueFiles, ROOT, runStdin, writeConfig } from "./_harness.ts";

const DIALOGS = await readDialogs(`${ROOT}tests/dialogs`);
const SMOKE = DIALOGS.filter((d) => d.smoke);

Deno.test("the smoke set is a handful of dialogs the subprocess runner can play", () => {
  assert.ok(SMOKE.length >= 5 && SMOKE.length <= 12, `${SMOKE.length} dialogs marked # smoke`);
  for (const d of SMOKE) {
    assert.deepEqual(
      d.inProcessOnly,
      [],
      `${d.name}: in-process-only directives in a smoke dialog`,
    );
  }
});

/** Queue IDs differ from run to run; nothing else may. */
function normalized(output: string): string {
  return output.replace(/queued as \S+/g, "queued as ID");
}

for (const dialog of SMOKE) {
  Deno.test({
    name: `dialog ${dialog.name} (smtpd stdin)`,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const work = await makeWorkDir("dialog");
      const { configFile, queueDir } = await writeConfig(work, dialog.config.join("\n"));
      const input = new Uint8Array(dialog.groups.reduce((n, g) => n + g.length, 0));
      let at = 0;
      for (const g of dialog.groups) {
        input.set(g, at);
        at += g.length;
      }
      const r = await runStdin(configFile, input, dialog.env);
      const diff = compareReplies(dialog, splitReplies(r.stdout));
      assert.ok(diff === undefined, `${diff}\n${r.stdout}\n--- log ---\n${r.stderr}`);
      const files = await queueFiles(queueDir, "maildrop");
      assert.equal(files.length, dialog.queued, "messages in maildrop");
      for (const f of files) await postcat(f);
      assert.equal(r.code, 0);
      const inProcess = await playDialog(dialog, [input]);
      assert.equal(normalized(r.stdout), normalized(inProcess.output), "in-process replies");
    },
  });
}
