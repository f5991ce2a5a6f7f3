/**
 * Side-by-side sessions with Postfix: one client session sent a command at
 * a time over a raw socket (Python) from a loopback address, a Postfix
 * main.cf parameter set written as our TOML, each group's tables and
 * Postfix smtpd service, and the refusal lines of a log. Used by the parity
 * tests that run the same session against our daemon and a private Postfix
 * instance, one configuration ("group") at a time.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { PARAMS } from "../src/config/schema.ts";
import { freePort, run, waitFor } from "./_harness.ts";
import { havePostfix, type PostfixInstance, startPostfix } from "./_postfix.ts";

/**
 * PARITY_RECORD=1: the replies of both servers (and what they logged) are
 * printed with {@linkcode note} instead of asserted, to write a new case.
 */
export const RECORD = Deno.env.get("PARITY_RECORD") === "1";

/**
 * Prints one line to stderr (PARITY_RECORD's output).
 * @param text the line
 */
export function note(text: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`${text}\n`));
}

/**
 * Whether the Postfix side can run: Postfix is installed and we are root.
 * @returns true when a private Postfix instance can be started
 */
export async function canRunPostfix(): Promise<boolean> {
  return Deno.uid() === 0 && await havePostfix();
}

/** A parity test's configuration: its name and its texthash: tables (name → text). */
export interface TableGroup {
  readonly name: string;
  readonly tables?: Record<string, string>;
}

/** Options for {@linkcode startGroups}. */
export interface StartGroupsOptions<G extends TableGroup> {
  /** The Postfix instance's name (see startPostfix). */
  name: string;
  /**
   * A group's main.cf parameters for Postfix's smtpd, Postfix's syntax;
   * `%T/NAME` is the group's table NAME.
   */
  params: (group: G) => Record<string, string>;
  /** More placeholders to fill in: text → its value. */
  placeholders?: Record<string, string>;
  /**
   * Each smtpd asks a trivial-rewrite service of its own (`rw-GROUP`) with
   * the group's parameters (trivial-rewrite reads no smtpd `-o`).
   */
  rewrite?: boolean;
  /** More main.cf lines. */
  mainCfExtra?: string;
}

/** The groups' tables, and Postfix's side when it can run. */
export interface Groups<G extends TableGroup> {
  /** A group's parameters with its tables' paths and the placeholders filled in. */
  fill(group: G, params: Record<string, string>): Record<string, string>;
  /** The private Postfix instance (stop it in `finally`), if Postfix can run here. */
  pf?: PostfixInstance;
  /** Each group's Postfix smtpd port (with pf). */
  ports: Map<string, number>;
}

/**
 * Writes each group's tables into `<dir>/tables` (as `GROUP-NAME`) and,
 * when Postfix can run here ({@linkcode canRunPostfix}), starts a private
 * Postfix with one smtpd service per group: each on a free loopback port,
 * logging as `postfix-GROUP`, with the group's parameters through `-o`.
 * @param dir the test's work directory
 * @param groups the groups
 * @param options Postfix's name and each group's parameters
 * @returns how to fill in a group's parameters, Postfix and its ports
 */
export async function startGroups<G extends TableGroup>(
  dir: string,
  groups: readonly G[],
  options: StartGroupsOptions<G>,
): Promise<Groups<G>> {
  const tables = join(dir, "tables");
  await Deno.mkdir(tables);
  for (const g of groups) {
    for (const [name, text] of Object.entries(g.tables ?? {})) {
      await Deno.writeTextFile(join(tables, `${g.name}-${name}`), text);
    }
  }
  const more = Object.entries(options.placeholders ?? {});
  const fill = (group: G, params: Record<string, string>) =>
    Object.fromEntries(
      Object.entries(params).map(([k, v]) => [
        k,
        more.reduce(
          (text, [from, to]) => text.replaceAll(from, to),
          v.replaceAll("%T/", `${tables}/${group.name}-`),
        ),
      ]),
    );
  const ports = new Map<string, number>();
  if (!await canRunPostfix()) return { fill, ports };
  let master = "";
  for (const g of groups) {
    const port = freePort();
    ports.set(g.name, port);
    const o = Object.entries(fill(g, options.params(g)))
      .map(([k, v]) => `  -o { ${k} = ${v} }\n`).join("");
    if (options.rewrite) master += `rw-${g.name} unix - - n - - trivial-rewrite\n${o}`;
    master += `127.0.0.1:${port} inet n - n - - smtpd\n  -o syslog_name=postfix-${g.name}\n`;
    if (options.rewrite) master += `  -o rewrite_service_name=rw-${g.name}\n`;
    master += o;
  }
  const pf = await startPostfix(dir, {
    name: options.name,
    mainCfExtra: options.mainCfExtra,
    masterCfExtra: master,
  });
  return { fill, pf, ports };
}

/**
 * Waits until our daemon and (if given) Postfix's service of a group have
 * logged the disconnects of all its sessions, then reads the refusal and
 * warning lines each logged.
 * @param daemon our daemon (one group's)
 * @param pf the Postfix instance, undefined to read only ours
 * @param group the group's name (Postfix's syslog name is `postfix-GROUP`)
 * @param sessions how many sessions were sent to each
 * @returns our lines and Postfix's (undefined without pf)
 */
export async function groupVerdicts(
  daemon: { log(): string },
  pf: PostfixInstance | undefined,
  group: string,
  sessions: number,
): Promise<{ ours: string[]; theirs?: string[] }> {
  await waitFor(
    "our disconnects",
    () => Promise.resolve((daemon.log().match(/disconnect from/g) ?? []).length >= sessions),
  );
  if (!pf) return { ours: verdictLines(daemon.log()) };
  // Counted, not matched as (line[^]*){N}: that pattern backtracks
  // exponentially in N and took minutes for a group of 27 sessions.
  const line = new RegExp(`postfix-${group}/smtpd\\[\\d+\\]: disconnect from`, "g");
  await waitFor(
    `Postfix's disconnects (${group})`,
    async () => ((await pf.logText()).match(line) ?? []).length >= sessions,
  );
  const theirs = verdictLines(await pf.logText(), `postfix-${group}`);
  return { ours: verdictLines(daemon.log()), theirs };
}

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
