/**
 * Every tests/dialogs/*.dialog played in this process (tests/_dialog_runner.ts):
 * each dialog cut into reads in several ways, which must all get the same
 * replies, and a check that the dialogs together produce every reply of the
 * catalog (src/protocol/reply.ts). The dialog format: tests/_dialog.ts.
 */

import assert from "node:assert/strict";
import * as catalog from "../src/protocol/reply.ts";
import { formatReply, REPLY, type Reply } from "../src/protocol/reply.ts";
import { compareReplies, type Dialog, globMatch, parseDialog, readDialogs } from "./_dialog.ts";
import { chunkings, playDialog, type Played } from "./_dialog_runner.ts";
import { ROOT } from "./_harness.ts";

const DIALOGS = await readDialogs(`${ROOT}tests/dialogs`);

/** Replies of each dialog played as written, kept for the coverage test. */
const PLAYED = new Map<string, string[]>();

/** Queue IDs differ from play to play; nothing else may. */
function normalized(output: string): string {
  return output.replace(/queued as \S+/g, "queued as ID");
}

/** Checks one play against the dialog's expectations. */
function check(dialog: Dialog, label: string, p: Played): void {
  const where = `${dialog.name} (${label})`;
  const diff = compareReplies(dialog, p.replies);
  assert.ok(
    diff === undefined,
    `${where}: ${diff}\n--- output ---\n${p.output}--- log ---\n${p.log.join("")}`,
  );
  assert.equal(p.queued, dialog.queued, `${where}: messages in maildrop`);
  assert.equal(p.wakeups, dialog.queued, `${where}: pickup wakeups`);
  if (dialog.slept !== undefined) assert.equal(p.slept, dialog.slept, `${where}: tarpit sleep`);
  for (const secret of dialog.nolog) {
    const line = p.log.find((l) => l.includes(secret));
    assert.ok(line === undefined, `${where}: a log line holds "${secret}": ${line}`);
  }
  for (const want of dialog.log) {
    assert.ok(
      p.log.some((line) => globMatch(`*${want}*`, line.trimEnd())),
      `${where}: no log line matches "${want}"\n${p.log.join("")}`,
    );
  }
  if (dialog.qmgr?.expect !== undefined) {
    assert.equal(p.qmgr, dialog.qmgr.expect, `${where}: bytes at public/qmgr`);
  }
}

for (const dialog of DIALOGS) {
  Deno.test(`dialog ${dialog.name} (in process)`, async () => {
    let first: string | undefined;
    for (const [label, chunks] of chunkings(dialog)) {
      const p = await playDialog(dialog, chunks, {
        postcat: first === undefined && dialog.postcat.length > 0,
      });
      check(dialog, label, p);
      if (first === undefined) {
        for (const want of dialog.postcat) {
          assert.ok(p.postcat.length > 0, `${dialog.name}: nothing queued for postcat`);
          for (const text of p.postcat) {
            assert.ok(
              text.split("\n").some((line) => globMatch(want, line)),
              `${dialog.name}: no line of postcat's output matches "${want}"\n${text}`,
            );
          }
        }
        first = normalized(p.output);
        PLAYED.set(dialog.name, p.replies);
      } else {
        assert.equal(
          normalized(p.output),
          first,
          `${dialog.name}: ${label} differs from as written`,
        );
      }
    }
  });
}

/**
 * Catalog replies no dialog can produce, with the reason. The coverage
 * test fails when one of these is produced after all (the exclusion is
 * stale) or is no longer in the catalog.
 */
/** The rate limits: daemon mode only (stand-alone has none, as in Postfix). */
const DAEMON_ONLY = "daemon mode only (stand-alone mode has no rate limits, as in Postfix): " +
  "tests/rate_limit_test.ts";

const UNREACHABLE: Readonly<Record<string, string>> = {
  "tooManyConnections()": DAEMON_ONLY,
  "tooMuchMail()": DAEMON_ONLY,
  "tooManyRecipientsFrom()": DAEMON_ONLY,
  "tooManyTlsSessions()": DAEMON_ONLY,
  "tooManyAuths()": "daemon mode only (rate limits, as in Postfix): tests/smtpd_auth_test.ts",
};

/** A catalog entry as a matcher over whole replies (CRLF-joined lines). */
interface Entry {
  readonly name: string;
  readonly pattern: RegExp;
}

/** Marks one argument of a reply function; becomes "any text" in the pattern. */
const MARK = (i: number) => `\u27e6${i}\u27e7`;

/**
 * The catalog: every REPLY entry (a value, or a function sampled with
 * markers) and every exported function of reply.ts whose return type is
 * Reply (read from its source), except generic constructors (whose code
 * is an argument).
 */
async function catalogEntries(): Promise<{ entries: Entry[]; generic: string[] }> {
  const entries: Entry[] = [];
  const generic: string[] = [];
  const toPattern = (r: Reply): RegExp => {
    let re = formatReply(r).replace(/\r\n$/, "").replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    re = re.replace(/\u27e6\d+\u27e7/g, "(.+?)");
    return new RegExp(`^${re}$`, "s");
  };
  const sample = (name: string, f: (...a: string[]) => Reply) => {
    const r = f(...Array.from({ length: f.length }, (_, i) => MARK(i)));
    if (typeof r.code !== "number") generic.push(name);
    else entries.push({ name, pattern: toPattern(r) });
  };
  for (const [key, value] of Object.entries(REPLY as Record<string, unknown>)) {
    if (typeof value === "function") sample(`REPLY.${key}`, value as (...a: string[]) => Reply);
    else entries.push({ name: `REPLY.${key}`, pattern: toPattern(value as Reply) });
  }
  const source = await Deno.readTextFile(`${ROOT}src/protocol/reply.ts`);
  for (
    const m of source.matchAll(/export function (\w+)\s*(?:<[^>]*>)?\(([^)]*)\)\s*:\s*Reply\s*\{/g)
  ) {
    const name = m[1] as string;
    sample(`${name}()`, (catalog as unknown as Record<string, (...a: string[]) => Reply>)[name]!);
  }
  return { entries, generic };
}

Deno.test("the dialogs produce every reply of the catalog", async () => {
  const { entries, generic } = await catalogEntries();
  assert.ok(entries.length > 30, `read ${entries.length} catalog entries`);
  const seen = new Set<string>();
  for (const dialog of DIALOGS) {
    // Played by the tests above, unless a filter left them out.
    const replies = PLAYED.get(dialog.name) ?? (await playDialog(dialog, dialog.groups)).replies;
    for (const r of replies) seen.add(r);
  }
  const replies = [...seen];
  const missing: string[] = [];
  const stale: string[] = [];
  for (const e of entries) {
    const hit = replies.some((r) => e.pattern.test(r));
    if (!hit && !(e.name in UNREACHABLE)) missing.push(`${e.name} ${e.pattern.source}`);
    if (hit && e.name in UNREACHABLE) stale.push(e.name);
  }
  const names = new Set(entries.map((e) => e.name));
  for (const name of Object.keys(UNREACHABLE)) if (!names.has(name)) stale.push(name);
  assert.deepEqual(missing, [], "catalog replies no dialog produces");
  assert.deepEqual(stale, [], "exclusions that are produced after all, or not in the catalog");
  // bareLfReceived()'s code is smtpd_forbid_bare_newline_reject_code, as in
  // Postfix; bare_lf_data_reject.dialog and bdat_bare_lf_reject.dialog play it.
  assert.deepEqual(
    generic,
    ["reply()", "bareLfReceived()"],
    "generic reply constructors (code from an argument)",
  );
});

Deno.test("parseDialog() decodes escapes, groups client lines and reads S- lines", () => {
  const d = parseDialog(
    "x.dialog",
    "# peer: 192.0.2.1 a.example\nS: 220 *\nC: A\\tB\\x0a\\{3:ab}\\\\\nC:\nS- 250-x\nS: 250 y\nC: Q\n",
  );
  const text = new TextDecoder();
  assert.deepEqual(d.groups.map((g) => text.decode(g)), ["A\tB\nababab\\\r\n\r\n", "Q\r\n"]);
  assert.deepEqual(d.expect, ["220 *", "250 y"]);
  assert.deepEqual(d.expectFirst, [[], ["250-x"]]);
  assert.deepEqual(d.peer, { address: "192.0.2.1", name: "a.example" });
  assert.deepEqual(d.inProcessOnly, ["peer"]);
  assert.throws(() => parseDialog("y.dialog", "C: \\q\n"), SyntaxError);
  assert.throws(() => parseDialog("z.dialog", "# dns: only-a-name\n"), SyntaxError);
  assert.throws(() => parseDialog("t.dialog", "# postact: typo\n"), SyntaxError);
});

Deno.test("chunkings() deliver every dialog's bytes whole, in order, in several cuts", () => {
  const join = (parts: Uint8Array[]) => parts.flatMap((p) => [...p]).join(",");
  for (const dialog of DIALOGS) {
    const all = join(dialog.groups);
    const cuts = chunkings(dialog);
    assert.equal(cuts.length, dialog.asWritten === undefined ? 6 : 1, dialog.name);
    for (const [label, chunks] of cuts) assert.equal(join(chunks), all, `${dialog.name} ${label}`);
  }
});

Deno.test("compareReplies() reports a wrong, a missing and an extra reply", () => {
  const d = parseDialog("x.dialog", "S: 220 *\nS- 250-a\nS: 250 b\n");
  assert.equal(compareReplies(d, ["220 hi", "250-a\r\n250 b"]), undefined);
  assert.match(compareReplies(d, ["220 hi", "250-z\r\n250 b"]) ?? "", /reply 2/);
  assert.match(compareReplies(d, ["220 hi", "250 b"]) ?? "", /reply 2/);
  assert.match(compareReplies(d, ["220 hi"]) ?? "", /got nothing/);
  assert.match(compareReplies(d, ["220 hi", "250-a\r\n250 b", "221 x"]) ?? "", /unexpected/);
});
