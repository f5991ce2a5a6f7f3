/**
 * `deno task hostile`: starts the real server with the production
 * permission flags on loopback and, while a well-behaved stream (our
 * timing client and Postfix's smtp-source) keeps sending, runs each attack
 * of issue 14 in turn: STARTTLS stall, header bomb in 100 sessions,
 * connection flood past the limits, descriptor exhaustion (prlimit),
 * slow drip, VRFY/NOOP/ETRN floods, forged and malformed PROXY headers,
 * bare CR/LF smuggling, garbage after STARTTLS; and on the newer surfaces
 * (a third instance with an implicit-TLS port, AUTH through a private
 * Dovecot and the TLS and AUTH rate limits): BDAT drip, BDAT chunk flood
 * (server CPU per chunk), DSN/SMTPUTF8 envelope bloat, implicit-TLS stall,
 * TLS handshake flood (server CPU per handshake, the new TLS session rate
 * limit), AUTH flood (error and rate limits, no password in the log).
 * For each it reports the
 * stream's messages/s, worst 250 latency and longest stall, the server's
 * peak RSS, whether it lived, and messages acknowledged against complete
 * queue files, as a Markdown table with a verdict against the targets.
 *
 * Usage (as root for prlimit on the server; needs postfix's smtp-source,
 * openssl and prlimit; Dovecot for the AUTH flood, which is skipped without it):
 *
 *     deno run -A scripts/hostile.ts [--quick] [--only NAME[,NAME...]]... [--seconds N]
 *       [--json] [--keep] [--list]
 *
 * The full run takes about four minutes, --quick well under one. Exit
 * status 1 when any attack misses a target, 2 on a usage error.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ATTACKS, formatReport, runHostile } from "./hostile/mod.ts";

const USAGE = `Usage: deno run -A scripts/hostile.ts [options]

Runs hostile clients against the real server on 127.0.0.1 while a legitimate stream sends.

  --quick          short form: windows of 1.5-6 s, ending once the stream flows again
  --only LIST      attacks to run, comma-separated (repeatable); see --list
  --seconds N      fixed window length per attack (default 15, or adaptive with --quick)
  --json           print the rows as JSON on stdout instead of the Markdown table
  --keep           keep the work directory under var/hostile/ (queues, config)
  --list           list the attacks and exit
`;

function write(file: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = new TextEncoder().encode(text);
  let off = 0;
  while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
}

async function main(args: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        quick: { type: "boolean", default: false },
        only: { type: "string", multiple: true, default: [] },
        seconds: { type: "string" },
        json: { type: "boolean", default: false },
        keep: { type: "boolean", default: false },
        list: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    write(Deno.stderr, `${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    write(Deno.stdout, USAGE);
    return 0;
  }
  if (values.list) {
    for (const a of ATTACKS) write(Deno.stdout, `${a.name.padEnd(24)} ${a.summary}\n`);
    return 0;
  }
  const only = values.only.flatMap((s) => s.split(",")).map((s) => s.trim()).filter(Boolean);
  const unknown = only.filter((n) => !ATTACKS.some((a) => a.name === n));
  if (unknown.length) {
    write(Deno.stderr, `unknown attack: ${unknown.join(", ")} (see --list)\n`);
    return 2;
  }
  const seconds = values.seconds === undefined ? undefined : Number(values.seconds);
  if (seconds !== undefined && !(seconds >= 1 && seconds <= 120)) {
    write(Deno.stderr, "--seconds: want 1..120\n");
    return 2;
  }
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const report = await runHostile({
      quick: values.quick,
      only,
      ...(seconds !== undefined ? { seconds } : {}),
      keep: values.keep,
      signal: stop.signal,
      progress: (line) =>
        write(Deno.stderr, `[${new Date().toISOString().slice(11, 19)}] ${line}\n`),
    });
    if (values.json) write(Deno.stdout, JSON.stringify(report, null, 2) + "\n");
    else {
      write(
        Deno.stdout,
        formatReport(report.rows, {
          quick: report.quick,
          seconds: report.seconds,
          started: report.started,
        }) + "\n",
      );
      if (report.notRun.length) {
        write(Deno.stdout, `\n**Not run** (counted as failed): ${report.notRun.join(", ")}\n`);
      }
    }
    if (values.keep) write(Deno.stderr, `work directory kept: ${report.workDir}\n`);
    return report.pass && !stop.signal.aborted ? 0 : 1;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
