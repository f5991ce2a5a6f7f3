/**
 * Plain-text SMTP dialogs (Postfix .in/.ref, chasquid .cmy style) played
 * through stand-alone mode: `smtpd stdin` with the production flags.
 *
 * A dialog file has "C: line" (client) and "S: pattern" (one whole server
 * reply; "*" matches any text; a multi-line reply is matched on its last
 * line). Consecutive C: lines are sent as one pipelined write. A line
 * "# config: name = value" adds a parameter. "# env: NAME=value" sets the
 * peer identity.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { makeWorkDir, postcat, queueFiles, ROOT, runStdin, writeConfig } from "./_harness.ts";

interface Dialog {
  config: string[];
  env: Record<string, string>;
  input: string;
  expect: string[];
  queued: number;
}

function parseDialog(text: string): Dialog {
  const d: Dialog = { config: [], env: {}, input: "", expect: [], queued: 0 };
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "");
    let m;
    if ((m = /^# config: (.*)$/.exec(line))) d.config.push(m[1] as string);
    else if ((m = /^# env: (\w+)=(.*)$/.exec(line))) d.env[m[1] as string] = m[2] as string;
    else if ((m = /^# queued: (\d+)$/.exec(line))) d.queued = Number(m[1]);
    else if (line.startsWith("C: ")) d.input += line.slice(3).replaceAll("\\t", "\t") + "\r\n";
    else if (line === "C:") d.input += "\r\n";
    else if (line.startsWith("S: ")) d.expect.push(line.slice(3));
  }
  return d;
}

function splitReplies(out: string): string[] {
  const replies: string[] = [];
  let cur = "";
  for (const line of out.split("\r\n")) {
    if (line === "") continue;
    cur += line;
    if (/^\d{3}( |$)/.test(line)) {
      replies.push(line);
      cur = "";
    }
  }
  return replies;
}

function globMatch(pattern: string, text: string): boolean {
  const re = new RegExp(
    "^" + pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$",
  );
  return re.test(text);
}

const dir = join(ROOT, "tests", "dialogs");
for await (const entry of Deno.readDir(dir)) {
  if (!entry.name.endsWith(".dialog")) continue;
  Deno.test({
    name: `dialog ${entry.name}`,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const dialog = parseDialog(await Deno.readTextFile(join(dir, entry.name)));
      const work = await makeWorkDir("dialog");
      const { configFile, queueDir } = await writeConfig(work, dialog.config.join("\n"));
      const r = await runStdin(configFile, dialog.input, dialog.env);
      const replies = splitReplies(r.stdout);
      assert.equal(
        replies.length,
        dialog.expect.length,
        `reply count\n${r.stdout}\n--- log ---\n${r.stderr}`,
      );
      dialog.expect.forEach((want, i) => {
        assert.ok(
          globMatch(want, replies[i] ?? ""),
          `reply ${i + 1}: want "${want}", got "${replies[i]}"`,
        );
      });
      const files = await queueFiles(queueDir, "maildrop");
      assert.equal(files.length, dialog.queued, "messages in maildrop");
      for (const f of files) await postcat(f);
      assert.equal(r.code, 0);
    },
  });
}
