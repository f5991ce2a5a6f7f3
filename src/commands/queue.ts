/**
 * `smtpd queue list` and `smtpd queue cat ID`: the queue as this program
 * reads it, without Postfix's tools. The envelope is a client's text: its
 * addresses and attributes are shown with control characters (C1 too:
 * 0x9b is a terminal's CSI) and the other characters the log sanitizer
 * replaces as "?", as Postfix's mailq shows them through printable(); the
 * JSON escapes them. The message content is shown as it is (as postcat).
 *
 * @module
 */

import { type Config } from "../config/mod.ts";
import { sanitizeLogText } from "../log/mod.ts";
import { findQueueFile, listQueue, QueueReadError } from "../queue/mod.ts";
import { err, out } from "./output.ts";

/**
 * `smtpd queue list` or `smtpd queue cat ID`.
 * @param config the configuration
 * @param args "list", or "cat" and the ID
 * @param json print JSON
 * @returns the exit status
 */
export async function runQueue(config: Config, args: string[], json: boolean): Promise<number> {
  try {
    return await queueCommand(config, args, json);
  } catch (e) {
    if (!(e instanceof QueueReadError)) throw e;
    err(`smtpd: queue ${args[0]}: ${e.message}`);
    return 1;
  }
}

async function queueCommand(config: Config, args: string[], json: boolean): Promise<number> {
  if (args[0] === "list") {
    const entries = await listQueue(config.queue_directory);
    if (json) {
      out(toJson(entries));
      return 0;
    }
    const rows = entries.map((e) =>
      [
        `${e.id.padEnd(16)} ${String(e.size).padStart(8)}  ${e.arrival ?? "-"}  ${
          e.queue.padEnd(9)
        } ${e.sender === "" ? "MAILER-DAEMON" : sanitizeLogText(e.sender ?? "-")}${
          e.complete ? "" : `  (${e.problem})`
        }`,
        ...e.recipients.map((r) => `${" ".repeat(63)}${sanitizeLogText(r)}`),
      ].join("\n")
    );
    out(rows.length ? rows.join("\n") + `\n-- ${entries.length} files` : "Mail queue is empty");
    return 0;
  }
  const e = await findQueueFile(config.queue_directory, args[1] ?? "");
  if (!e) {
    err(`smtpd: queue cat: no queue file "${args[1]}"`);
    return 1;
  }
  if (json) {
    out(toJson(e));
    return 0;
  }
  out([
    `*** ENVELOPE ${e.queue}/${e.id} (${e.size} bytes, ${e.complete ? "complete" : e.problem}) ***`,
    `arrival: ${e.arrival ?? "-"}`,
    `sender: ${sanitizeLogText(e.sender ?? "-")}`,
    ...e.recipients.map((r) => `recipient: ${sanitizeLogText(r)}`),
    ...Object.entries(e.attributes).map(([k, v]) => `attribute: ${sanitizeLogText(`${k}=${v}`)}`),
    "*** CONTENT ***",
    (e.content ?? "").replace(/\n$/, ""),
    "*** END ***",
  ].join("\n"));
  return e.complete ? 0 : 1;
}

/**
 * JSON with DEL, the C1 controls and the line separators as `\uXXXX`
 * (JSON.stringify escapes only C0), so that printing it on a terminal shows
 * them as text; what it says is the same.
 * @param value what to write
 * @returns the JSON text
 */
function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    /[\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
