/**
 * Side-by-side sessions with Postfix: one client session sent a command at
 * a time over a raw socket (Python) from a loopback address, a Postfix
 * main.cf parameter set written as our TOML, and the refusal lines of a
 * log. Used by the parity tests that run the same session against our
 * daemon and a private Postfix instance.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PARAMS } from "../src/config/schema.ts";
import { run } from "./_harness.ts";

/**
 * Our TOML for a set of Postfix parameters: list values split into items,
 * numbers and booleans as TOML has them.
 * @param params main.cf parameters (Postfix's syntax)
 * @returns the TOML lines
 */
export function oursToml(params: Record<string, string>): string {
  const out: string[] = [];
  const classes = (params.smtpd_restriction_classes ?? "").split(/[\s,]+/);
  for (const [name, value] of Object.entries(params)) {
    const spec = (PARAMS as Record<string, { kind: string }>)[name];
    const kind = classes.includes(name) ? "list" : spec?.kind ?? "string";
    if (kind === "list") {
      out.push(`${name} = ${JSON.stringify(value.split(/[\s,]+/).filter((w) => w !== ""))}`);
    } else if (kind === "integer" || kind === "time") {
      out.push(`${name} = ${value}`);
    } else if (kind === "boolean") {
      out.push(`${name} = ${value === "yes"}`);
    } else {
      out.push(`${name} = ${JSON.stringify(value)}`);
    }
  }
  return out.join("\n");
}

// One session, one command at a time: prints the replies as JSON (a
// reply's lines joined by \n), the greeting only when it is not a 220.
const CLIENT = `
import json, socket, sys
port, src, lines = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(src, 0))
f = s.makefile("rb")
def reply():
    out = []
    while True:
        try:
            line = f.readline()
        except ConnectionResetError:
            # After a 421 the server has closed: the next line sent got a
            # reset, which can overtake the close.
            line = b""
        if not line:
            return "\\n".join(out) if out else "<closed>"
        line = line.decode("latin-1").rstrip("\\r\\n")
        out.append(line)
        if len(line) < 4 or line[3] != "-":
            return "\\n".join(out)
greeting = reply()
got = [] if greeting.startswith("220 ") else [greeting]
for line in lines:
    try:
        s.sendall(line.encode("latin-1") + b"\\r\\n")
    except (BrokenPipeError, ConnectionResetError):
        got.append("<closed>")
        break
    r = reply()
    got.append(r)
    if r == "<closed>":
        break
print(json.dumps(got))
`;

/**
 * Sends one session to a server on loopback.
 * @param port the server's port
 * @param src the client's loopback address
 * @param lines the command lines, sent one at a time after the greeting
 * @returns the replies after the greeting (a multi-line reply's lines joined by \n)
 */
export async function talk(port: number, src: string, lines: string[]): Promise<string[]> {
  const r = await run("python3", ["-c", CLIENT, String(port), src, JSON.stringify(lines)]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/**
 * The refusal and warning lines of a log, from "NOQUEUE:" on.
 * @param log the log text
 * @param tag only the lines of this syslog name's smtpd
 * @returns the lines
 */
export function verdictLines(log: string, tag?: string): string[] {
  return log.split("\n")
    .filter((l) => tag === undefined || l.includes(`${tag}/smtpd[`))
    .map((l) => /(NOQUEUE: (?:reject|reject_warning|warn|hold|info): .*)/.exec(l)?.[1])
    .filter((l): l is string => l !== undefined);
}
