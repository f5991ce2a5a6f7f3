/**
 * The dialog format (tests/dialogs/*.dialog): plain-text SMTP transcripts in
 * the manner of Postfix's .in/.ref files and chasquid's .cmy files. Two
 * runners play them: tests/dialogs_inprocess_test.ts plays every dialog in
 * this process (tests/_dialog_runner.ts), and tests/dialogs_test.ts plays
 * those marked "# smoke" through `smtpd stdin`, the real executable.
 *
 * Lines:
 *
 * - `C: text`: a client line, sent with CRLF. Consecutive C: lines form one
 *   group, sent in one write (pipelined). `C:` alone is an empty line.
 *   Escapes: `\t` (tab), `\xNN` (any byte, e.g. `\x0a` for a bare LF or
 *   `\xff` for a byte that is not UTF-8), `\{N:text}` (text N times),
 *   `\\` (a backslash).
 * - `S: pattern`: one whole server reply, matched on its last line; `*`
 *   matches any text. Replies are matched in order and must all be there.
 *   `S- pattern` lines before an `S:` line match the other lines of a
 *   multi-line reply, all of them, in order.
 * - `# config: name = value`: one TOML line of the configuration.
 * - `# env: NAME=value`: the peer identity as `smtpd stdin` reads it from
 *   the environment (REMOTE_ADDR, REMOTE_PORT, TCPREMOTEIP, ...).
 * - `# queued: N`: the number of complete queue files in maildrop/ after
 *   the session (0 when absent).
 * - `# smoke`: the subprocess runner plays this dialog too.
 *
 * In-process only (a dialog with these is never marked "# smoke"):
 *
 * - `# peer: ADDRESS [NAME]`: a network client; with NAME, the fake DNS
 *   has the PTR record for ADDRESS and NAME's A/AAAA record (a confirmed
 *   name), without it the client's name is "unknown".
 * - `# dns: NAME TYPE value...`: a record of the fake DNS (TYPE: A, AAAA,
 *   MX, PTR, TXT); `tempfail` instead of values: the query fails
 *   temporarily; `crash`: the resolver throws (a software error).
 * - `# tls: fake`: the transport offers STARTTLS; the "handshake" marks the
 *   rest of the stream as encrypted (TLSv1.3) without any cryptography.
 *   `# tls: fail`: the handshake fails.
 * - `# fault: maildrop-is-a-file`: maildrop/ is replaced by a file after
 *   the queue is prepared, so no queue file can be created.
 * - `# free: BYTES`: the session measures BYTES free on the queue file
 *   system (a disk short of space that any configuration could meet).
 * - `# qmgr: listening`: a UNIX socket at public/qmgr takes ETRN's trigger;
 *   `# qmgr: FADI` checks the bytes it received.
 * - `# postcat: pattern`: Postfix's postcat prints every queued file, and
 *   a line of its output matches pattern (`*` as above).
 * - `# log: pattern`: some log line matches pattern (`*` as above).
 * - `# nolog: text`: no log line contains text (a credential).
 * - `# sasl: user:password ...`: AUTH is provided (as in daemon mode) by a
 *   fake authentication server with these users (tests/_fake_sasl.ts);
 *   the configuration must still set smtpd_sasl_auth_enable.
 * - `# slept: MS`: the tarpit asked to sleep MS milliseconds in all (the
 *   clock is fake: nothing really sleeps).
 * - `# hang`: after its last line the client keeps the connection open and
 *   sends nothing (for smtpd_timeout).
 * - `# chunks: as-written REASON`: play the dialog only cut as written
 *   (one read per group), because other cuts legitimately change the
 *   replies (pipelining detection, STARTTLS discarding pipelined text).
 *   Other dialogs are also played whole, byte by byte and cut at random
 *   (fixed seed), and must get identical replies.
 *
 * Other lines starting with "#" are comments, except that one of the shape
 * "# word: ..." is refused as an unknown directive (a typo).
 *
 * @module
 */

/** One parsed dialog. */
export interface Dialog {
  /** The file name. */
  readonly name: string;
  /** TOML lines from "# config:". */
  readonly config: string[];
  /** Environment from "# env:". */
  readonly env: Record<string, string>;
  /** The client's input, one entry per group (consecutive C: lines). */
  readonly groups: Uint8Array[];
  /** Expected replies: patterns on the last line of each ("S:"), and on the others ("S-"). */
  readonly expect: string[];
  /** Per expected reply, the "S-" patterns before it (empty: only the last line is checked). */
  readonly expectFirst: string[][];
  /** Complete queue files expected in maildrop/. */
  readonly queued: number;
  /** Played by the subprocess runner too. */
  readonly smoke: boolean;
  /** "# peer:": address and optional confirmed name. */
  readonly peer?: { address: string; name?: string };
  /** "# dns:" records: name, type, values (or "tempfail"). */
  readonly dns: { name: string; type: string; values: string[] | "tempfail" | "crash" }[];
  /** "# tls:": STARTTLS offered, and whether the fake handshake fails. */
  readonly tls?: "fake" | "fail";
  /** "# fault: maildrop-is-a-file": no queue file can be created. */
  readonly fault?: "maildrop-is-a-file";
  /** "# free:": the free bytes the session measures on the queue file system. */
  readonly free?: number;
  /** "# qmgr:" listening, and the bytes expected there (if given). */
  readonly qmgr?: { expect?: string };
  readonly postcat: string[];
  readonly log: string[];
  /** "# nolog:": text no log line may contain (credentials). */
  readonly nolog: string[];
  /** "# sasl:": AUTH against a fake server with these users (name → password). */
  readonly sasl?: ReadonlyMap<string, string>;
  readonly slept?: number;
  readonly hang: boolean;
  /** Why the dialog is played only as written, if it is. */
  readonly asWritten?: string;
  /** Directives only the in-process runner knows (for the smoke check). */
  readonly inProcessOnly: string[];
}

const encoder = new TextEncoder();

const DNS_TYPES = ["A", "AAAA", "MX", "PTR", "TXT"];

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Parses a dialog file.
 * @param name the file name, for messages
 * @param text the file's text
 * @returns the dialog
 * @throws {SyntaxError} for an unknown directive or a bad escape
 */
export function parseDialog(name: string, text: string): Dialog {
  const d: Mutable<Dialog> = {
    name,
    config: [],
    env: {},
    groups: [],
    expect: [],
    expectFirst: [],
    queued: 0,
    smoke: false,
    dns: [],
    postcat: [],
    log: [],
    nolog: [],
    hang: false,
    inProcessOnly: [],
  };
  let group: number[] | undefined;
  let first: string[] = [];
  const endGroup = () => {
    if (group) d.groups.push(new Uint8Array(group));
    group = undefined;
  };
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "");
    const where = `${name}:${i + 1}`;
    if (line === "C:" || line.startsWith("C: ")) {
      group ??= [];
      group.push(...unescape(line.slice(3), where), 13, 10);
      return;
    }
    endGroup();
    if (line.startsWith("S- ")) first.push(line.slice(3));
    else if (line.startsWith("S: ")) {
      d.expect.push(line.slice(3));
      d.expectFirst.push(first);
      first = [];
    } else if (line.startsWith("# ")) directive(d, line.slice(2), where);
    else if (line.trim() !== "" && !line.startsWith("#")) {
      throw new SyntaxError(`${where}: cannot parse "${line}"`);
    }
  });
  endGroup();
  return d;
}

/** Applies one "# name: value" line; other "# " lines are comments. */
function directive(d: Mutable<Dialog>, text: string, where: string): void {
  const m =
    /^(config|env|queued|peer|dns|tls|fault|free|qmgr|postcat|log|slept|chunks|sasl|nolog): (.*)$/
      .exec(
        text,
      );
  if (text === "smoke") d.smoke = true;
  else if (text === "hang") {
    d.hang = true;
    d.inProcessOnly.push("hang");
  }
  if (!m) {
    // A typo in a directive must not turn it into a comment.
    if (/^[a-z-]+:( |$)/.test(text)) {
      throw new SyntaxError(`${where}: unknown directive "# ${text}"`);
    }
    return;
  }
  const [, key, value] = m as unknown as [string, string, string];
  const bad = () => new SyntaxError(`${where}: cannot parse "# ${text}"`);
  if (key !== "config" && key !== "env" && key !== "queued") d.inProcessOnly.push(key);
  switch (key) {
    case "config":
      d.config.push(value);
      break;
    case "env": {
      const e = /^(\w+)=(.*)$/.exec(value);
      if (!e) throw bad();
      d.env[e[1] as string] = e[2] as string;
      break;
    }
    case "queued":
      if (!/^\d+$/.test(value)) throw bad();
      d.queued = Number(value);
      break;
    case "peer": {
      const [address, name] = value.trim().split(/\s+/);
      if (!address) throw bad();
      d.peer = name ? { address, name } : { address };
      break;
    }
    case "dns": {
      const [host, type, ...values] = value.trim().split(/\s+/);
      if (!host || !type || !DNS_TYPES.includes(type) || values.length === 0) throw bad();
      const special = values[0] === "tempfail" || values[0] === "crash" ? values[0] : undefined;
      // An MX record is two words, "preference host", as the resolver gives it.
      const records = type === "MX" && !special
        ? values.flatMap((v, i) => i % 2 ? [] : [`${v} ${values[i + 1] ?? ""}`.trim()])
        : values;
      d.dns.push({ name: host, type, values: special ?? records });
      break;
    }
    case "tls":
      if (value !== "fake" && value !== "fail") throw bad();
      d.tls = value;
      break;
    case "fault":
      if (value !== "maildrop-is-a-file") throw bad();
      d.fault = value;
      break;
    case "free":
      if (!/^\d+$/.test(value)) throw bad();
      d.free = Number(value);
      break;
    case "qmgr":
      d.qmgr = value === "listening" ? (d.qmgr ?? {}) : { expect: value };
      break;
    case "postcat":
      d.postcat.push(value);
      break;
    case "log":
      d.log.push(value);
      break;
    case "slept":
      if (!/^\d+$/.test(value)) throw bad();
      d.slept = Number(value);
      break;
    case "sasl": {
      const users = value.trim().split(/\s+/).map((u) => u.split(":"));
      if (users.some((u) => u.length !== 2 || !u[0])) throw bad();
      d.sasl = new Map(users as [string, string][]);
      break;
    }
    case "nolog":
      d.nolog.push(value);
      break;
    case "chunks":
      if (!value.startsWith("as-written ")) throw bad();
      d.asWritten = value.slice("as-written ".length);
      break;
  }
}

/** Decodes the escapes of a C: line into bytes. */
function unescape(text: string, where: string): number[] {
  const out: number[] = [];
  let plain = "";
  const flush = () => {
    out.push(...encoder.encode(plain));
    plain = "";
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c !== "\\") {
      plain += c;
      continue;
    }
    const rest = text.slice(i + 1);
    let m;
    if (rest.startsWith("t")) {
      plain += "\t";
      i += 1;
    } else if (rest.startsWith("\\")) {
      plain += "\\";
      i += 1;
    } else if ((m = /^x([0-9a-fA-F]{2})/.exec(rest))) {
      flush();
      out.push(parseInt(m[1] as string, 16));
      i += 3;
    } else if ((m = /^\{(\d+):([^}]*)\}/.exec(rest))) {
      plain += (m[2] as string).repeat(Number(m[1]));
      i += m[0].length;
    } else {
      throw new SyntaxError(`${where}: unknown escape "\\${rest.slice(0, 1)}"`);
    }
  }
  flush();
  return out;
}

/**
 * Splits server output into whole replies (a multi-line reply is one entry,
 * its lines joined with CRLF, without the final CRLF).
 * @param out what the server wrote
 * @returns the replies
 */
export function splitReplies(out: string): string[] {
  const replies: string[] = [];
  let cur: string[] = [];
  for (const line of out.split("\r\n")) {
    if (line === "") continue;
    cur.push(line);
    if (/^\d{3}( |$)/.test(line)) {
      replies.push(cur.join("\r\n"));
      cur = [];
    }
  }
  if (cur.length > 0) replies.push(cur.join("\r\n")); // an unfinished reply
  return replies;
}

/**
 * The last line of a reply (what an "S:" pattern is matched on).
 * @param r a reply from {@linkcode splitReplies}
 * @returns its last line
 */
export function lastLine(r: string): string {
  return r.split("\r\n").at(-1) ?? "";
}

/**
 * Matches text against a pattern in which "*" stands for any text.
 * @param pattern the pattern
 * @param text the text
 * @returns whether the whole text matches
 */
export function globMatch(pattern: string, text: string): boolean {
  const re = new RegExp(
    "^" + pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$",
    "s",
  );
  return re.test(text);
}

/**
 * Checks replies against a dialog's S: lines.
 * @param dialog the dialog
 * @param replies what the server said
 * @returns a description of the first difference, or undefined
 */
export function compareReplies(dialog: Dialog, replies: string[]): string | undefined {
  for (let i = 0; i < Math.max(replies.length, dialog.expect.length); i++) {
    const want = dialog.expect[i];
    const got = replies[i];
    if (want === undefined) return `reply ${i + 1}: unexpected "${got}"`;
    if (got === undefined) return `reply ${i + 1}: want "${want}", got nothing`;
    if (!globMatch(want, lastLine(got))) return `reply ${i + 1}: want "${want}", got "${got}"`;
    const before = dialog.expectFirst[i] ?? [];
    const lines = got.split("\r\n").slice(0, -1);
    if (
      before.length > 0 &&
      !(lines.length === before.length && before.every((p, j) => globMatch(p, lines[j] ?? "")))
    ) {
      return `reply ${i + 1}: want "${[...before, want].join(" / ")}", got "${got}"`;
    }
  }
  return undefined;
}

/**
 * Reads every dialog file of a directory, sorted by name.
 * @param dir the directory
 * @returns the dialogs
 */
export async function readDialogs(dir: string): Promise<Dialog[]> {
  const out: Dialog[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.name.endsWith(".dialog")) continue;
    out.push(parseDialog(e.name, await Deno.readTextFile(`${dir}/${e.name}`)));
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
