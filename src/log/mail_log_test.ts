import assert from "node:assert/strict";
import { Logger } from "./logger.ts";
import { type CommandCount, MailLog } from "./mail_log.ts";

function disconnectLine(counts: [string, CommandCount][]): string {
  const lines: string[] = [];
  const log = new MailLog(new Logger({ tag: "t", host: "h", sinks: [(l) => lines.push(l)] }));
  log.disconnect({ name: "unknown", address: "192.0.2.1" }, new Map(counts));
  return (lines[0] as string).replace(/^.*disconnect from /, "").trimEnd();
}

Deno.test("MailLog.disconnect: successes, /total when some failed, Postfix's command order", () => {
  assert.equal(
    disconnectLine([
      ["quit", { ok: 1, total: 1 }],
      ["unknown", { ok: 0, total: 2 }],
      ["rcpt", { ok: 1, total: 3 }],
      ["mail", { ok: 1, total: 1 }],
      ["ehlo", { ok: 1, total: 1 }],
    ]),
    "unknown[192.0.2.1] ehlo=1 mail=1 rcpt=1/3 quit=1 unknown=0/2 commands=4/8",
  );
  assert.equal(
    disconnectLine([["ehlo", { ok: 2, total: 2 }], ["starttls", { ok: 1, total: 1 }]]),
    "unknown[192.0.2.1] ehlo=2 starttls=1 commands=3",
  );
  // No command at all: 0/0, as Postfix marks an abnormal session.
  assert.equal(disconnectLine([]), "unknown[192.0.2.1] commands=0/0");
});
