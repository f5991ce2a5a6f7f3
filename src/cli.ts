/**
 * Command-line parsing (node:util parseArgs): `smtpd serve`, `smtpd stdin`,
 * `smtpd config [-n] [--check]`, `smtpd explain --client ADDR ...` and
 * `smtpd queue list|cat ID`, each with `-c FILE`, `-o name=value`
 * (repeatable, like master.cf) and `-v` (repeatable), and `--help`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { canonicalIp } from "./protocol/ip.ts";

/** A parsed command line. */
export type CliOptions =
  | { kind: "help"; text: string }
  | { kind: "version" }
  | { kind: "error"; message: string }
  | {
    kind: "serve" | "stdin" | "config" | "explain" | "queue" | "permissions";
    /** For queue: "list" or "cat", and the ID for cat. */
    queueArgs: string[];
    configFile: string;
    overrides: string[];
    verbose: number;
    nonDefault: boolean;
    check: boolean;
    explain: {
      client?: string;
      clientName?: string;
      helo?: string;
      from?: string;
      to: string[];
      etrn?: string;
      saslUser?: string;
      json: boolean;
    };
  };

/** The default configuration file. */
export const DEFAULT_CONFIG = "config/smtpd.toml";

const COMMON = `Options:
  -c, --config FILE   configuration file (default: ${DEFAULT_CONFIG})
  -o name=value       override a parameter (repeatable)
  -v, --verbose       more logging (repeatable)
  -h, --help          this help`;

/** Help text per subcommand. */
export const HELP: Record<string, string> = {
  main: `Usage: smtpd COMMAND [options]

An SMTP server after Postfix's smtpd(8).

Commands:
  serve    daemon mode: listen on smtpd_listen, queue mail in incoming/
  stdin    stand-alone mode: one session on stdin/stdout, mail to maildrop/
  config   print the effective configuration (-n: only non-defaults; --check: validate)
  explain  run the restriction lists for a hypothetical client and show every step
  queue    list the queue (queue list) or print one queue file (queue cat ID)
  permissions  print the Deno flags this configuration needs

Run "smtpd COMMAND --help" for a command's options.`,
  serve: `Usage: smtpd serve [-c FILE] [-o name=value]... [-v]

Listens on every smtpd_listen address and serves SMTP sessions; accepted
messages become queue files in <queue_directory>/incoming/.

${COMMON}`,
  stdin: `Usage: smtpd stdin [-c FILE] [-o name=value]... [-v]

Serves one SMTP session on stdin/stdout (inetd, systemd Accept=yes,
"sendmail -bs" style) and deposits messages in <queue_directory>/maildrop/.
The client is taken from REMOTE_ADDR/REMOTE_PORT (systemd), TCPREMOTEIP/
TCPREMOTEPORT (tcpserver) or REMOTE_HOST (xinetd). Without them
the session is a local submission when stdin is a pipe or terminal, and is
refused with 421 when stdin is a socket (plain inetd: use tcpserver).
A network client gets STARTTLS (smtpd_tls_security_level and a
certificate) and AUTH (smtpd_sasl_auth_enable) as in daemon mode;
-o smtpd_tls_wrappermode=true makes the session implicit TLS (port 465).
A local submission gets neither.

${COMMON}`,
  config: `Usage: smtpd config [-c FILE] [-o name=value]... [-n] [--check]

Prints every parameter's effective value as TOML.
  -n         print only parameters set in the file or with -o
  --check    only validate; exit non-zero with file:line: message on errors

${COMMON}`,
  queue: `Usage: smtpd queue list [--json] [-c FILE]
       smtpd queue cat ID [--json] [-c FILE]

list: every queue file with its ID, size, arrival time, queue, sender and
recipients, and whether it is complete. cat: one file's envelope and content.
No Postfix tools needed.

${COMMON}`,
  permissions: `Usage: smtpd permissions [-c FILE] [-o name=value]... [--json]

Prints the Deno permission flags the configuration needs, one per line, with
absolute paths: read the configuration and every file it names (tables, TLS
certificate and key), read and write the queue directory, listen on each
smtpd_listen address, reach the DNS servers in use (dns_server, else the
name servers of /etc/resolv.conf), the syslog server and Postfix's trigger
sockets; then the runtime flags. "deno task smtpd" and "deno task compile"
use exactly these. --json adds the reason for each value.

${COMMON}`,
  explain: `Usage: smtpd explain --client ADDR [--client-name NAME] [--helo H] [--from A]
                     [--to B]... [--etrn D] [--sasl-user NAME] [--json]
                     [-c FILE] [-o name=value]...

Runs the configured restriction lists for a hypothetical session, without a
socket, and prints per SMTP stage every restriction tried, every table key
looked up, every DNS query and answer, and the reply. Without --client-name
the name is looked up in the DNS (dns_server), as the daemon would. With
--sasl-user the client counts as logged in with AUTH PLAIN as NAME.

${COMMON}`,
};

/**
 * Parses the arguments after the program name.
 * @param args the arguments
 * @returns what to do
 */
export function parseCli(args: readonly string[]): CliOptions {
  const [command, ...rest] = args;
  // No command is a usage error (exit 2, on stderr), as an unknown one: a
  // unit file or script that lost its "serve" fails instead of exiting 0.
  if (command === undefined) return { kind: "error", message: `no command given\n\n${HELP.main}` };
  if (command === "-h" || command === "--help" || command === "help") {
    return { kind: "help", text: HELP.main ?? "" };
  }
  if (command === "--version" || command === "version") return { kind: "version" };
  if (
    command !== "serve" && command !== "stdin" && command !== "config" && command !== "explain" &&
    command !== "queue" && command !== "permissions"
  ) {
    return { kind: "error", message: `unknown command "${command}"\n\n${HELP.main}` };
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: [...rest],
      strict: true,
      allowPositionals: command === "queue",
      options: {
        config: { type: "string", short: "c" },
        o: { type: "string", short: "o", multiple: true },
        verbose: { type: "boolean", short: "v", multiple: true },
        help: { type: "boolean", short: "h" },
        n: { type: "boolean", short: "n" },
        check: { type: "boolean" },
        ...(command === "explain"
          ? {
            client: { type: "string" },
            "client-name": { type: "string" },
            helo: { type: "string" },
            from: { type: "string" },
            to: { type: "string", multiple: true },
            etrn: { type: "string" },
            "sasl-user": { type: "string" },
            json: { type: "boolean" },
          } as const
          : {}),
        ...(command === "queue" || command === "permissions"
          ? { json: { type: "boolean" } } as const
          : {}),
      },
    });
  } catch (err) {
    return { kind: "error", message: `${(err as Error).message}\n\n${HELP[command]}` };
  }
  const v = parsed.values;
  if (v.help) return { kind: "help", text: HELP[command] ?? "" };
  if (command !== "config" && (v.n || v.check)) {
    return {
      kind: "error",
      message: `-n and --check belong to "smtpd config"\n\n${HELP[command]}`,
    };
  }
  const x = v as Record<string, string | string[] | boolean | undefined>;
  const str = (k: string) => typeof x[k] === "string" ? x[k] as string : undefined;
  const positionals = parsed.positionals ?? [];
  if (command === "queue") {
    const [sub, id, ...extra] = positionals;
    const ok = (sub === "list" && id === undefined) ||
      (sub === "cat" && id !== undefined && extra.length === 0);
    if (!ok) {
      return { kind: "error", message: `expected "queue list" or "queue cat ID"\n\n${HELP.queue}` };
    }
  }
  if (command === "explain" && !str("client")) {
    return { kind: "error", message: `explain needs --client ADDR\n\n${HELP.explain}` };
  }
  const client = str("client");
  if (command === "explain" && client !== undefined && canonicalIp(client) === undefined) {
    return { kind: "error", message: `explain: --client "${client}" is not an IP address` };
  }
  return {
    kind: command,
    configFile: v.config ?? DEFAULT_CONFIG,
    overrides: v.o ?? [],
    verbose: v.verbose?.length ?? 0,
    nonDefault: v.n ?? false,
    check: v.check ?? false,
    queueArgs: positionals,
    explain: {
      client: client === undefined ? undefined : canonicalIp(client) ?? client,
      clientName: str("client-name"),
      helo: str("helo"),
      from: str("from"),
      to: Array.isArray(x.to) ? x.to : [],
      etrn: str("etrn"),
      saslUser: str("sasl-user"),
      json: x.json === true,
    },
  };
}
