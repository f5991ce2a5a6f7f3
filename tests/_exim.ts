/**
 * Debian's Exim as a real BDAT client, without installing it (installing
 * exim4 would remove postfix): its .deb files are fetched with `apt-get
 * download` (.ci/run does that ahead), unpacked with `dpkg -x` into a
 * private root, and run in a private mount namespace where that root's
 * /usr/sbin (Exim re-executes itself from its compiled-in path) and an
 * ld.so.cache that knows the unpacked libraries are bind-mounted over the
 * system's. Exim routes every address to our port (manualroute, `self =
 * send`, `allow_localhost`) and uses CHUNKING whenever it is offered
 * (`hosts_try_chunking = *`). Needs root (unshare, mount, Exim's user).
 *
 * @module
 */

import { join } from "node:path";
import { run, type RunResult } from "./_harness.ts";

/** The packages Exim needs beyond what the system has. */
export const EXIM_DEBS = ["exim4-daemon-light", "exim4-base", "libidn12", "liblockfile1"];

/** Where .ci/run downloads the packages (and this helper looks first). */
export const EXIM_DEB_DIR = join(Deno.env.get("TMPDIR") ?? "/tmp", "deno-smtpd-exim-debs");

/** A prepared Exim: a root with its binary and a cache for the loader. */
export interface Exim {
  readonly root: string;
  readonly ldCache: string;
}

/** What running Exim produced. */
export interface EximRun extends RunResult {
  /** Exim's -v transcript (its stderr and stdout). */
  readonly transcript: string;
}

let prepared: Promise<Exim | string> | undefined;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function prepare(): Promise<Exim | string> {
  if (Deno.uid() !== 0) return "Exim needs root (unshare, mount, its own user)";
  for (const tool of ["unshare", "mount", "dpkg", "ldconfig"]) {
    const r = await run("sh", ["-c", `command -v ${tool}`]).catch(() => undefined);
    if (!r || r.code !== 0) return `${tool} is missing`;
  }
  await Deno.mkdir(EXIM_DEB_DIR, { recursive: true });
  const debs = () =>
    [...Deno.readDirSync(EXIM_DEB_DIR)].map((e) => e.name).filter((n) => n.endsWith(".deb"));
  const missing = () => EXIM_DEBS.filter((p) => !debs().some((n) => n.startsWith(`${p}_`)));
  let need = missing();
  if (need.length > 0) {
    const r = await run("sh", [
      "-c",
      `cd '${EXIM_DEB_DIR}' && apt-get download ${need.join(" ")}`,
    ]);
    need = missing();
    if (need.length > 0) {
      return `apt-get download ${need.join(" ")} failed: ${(r.stderr || r.stdout).slice(-300)}`;
    }
  }
  const root = await Deno.makeTempDir({ prefix: "deno-smtpd-exim-root-" });
  for (const deb of debs()) {
    const r = await run("dpkg", ["-x", join(EXIM_DEB_DIR, deb), root]);
    if (r.code !== 0) return `dpkg -x ${deb} failed: ${r.stderr}`;
  }
  if (!(await exists(join(root, "usr/sbin/exim4")))) return "the packages hold no usr/sbin/exim4";
  const r = await run("sh", ["-c", "id Debian-exim || useradd -r -M Debian-exim"]);
  if (r.code !== 0) return `cannot create the Debian-exim user: ${r.stderr}`;
  const conf = join(root, "ld.so.conf");
  await Deno.writeTextFile(
    conf,
    [
      join(root, "usr/lib/x86_64-linux-gnu"),
      "/lib/x86_64-linux-gnu",
      "/usr/lib/x86_64-linux-gnu",
      "/lib",
      "/usr/lib",
    ].join("\n") + "\n",
  );
  const ldCache = join(root, "ld.so.cache");
  const l = await run("ldconfig", ["-C", ldCache, "-f", conf]);
  if (l.code !== 0) return `ldconfig failed: ${l.stderr}`;
  const probeConf = join(root, "probe.conf");
  await Deno.writeTextFile(probeConf, "keep_environment =\n");
  const probe = await run("unshare", [
    "-m",
    "sh",
    "-c",
    `mount --bind '${root}/usr/sbin' /usr/sbin && mount --bind '${ldCache}' /etc/ld.so.cache && /usr/sbin/exim4 -C '${probeConf}' -bV`,
  ]);
  if (probe.code !== 0 || !/Exim version/.test(probe.stdout)) {
    return `exim4 -bV failed: ${(probe.stderr || probe.stdout).slice(-300)}`;
  }
  return { root, ldCache };
}

/**
 * Prepares Exim once per test process.
 * @returns Exim, or why it cannot run here (the test then skips)
 */
export function prepareExim(): Promise<Exim | string> {
  prepared ??= prepare();
  return prepared;
}

/**
 * Sends one message with Exim to our port, delivering in the foreground
 * (`-odf`) with a verbose transcript (`-v`).
 * @param exim the prepared Exim
 * @param port our SMTP port on 127.0.0.1
 * @param recipient the envelope recipient (not used with `smtpIn`)
 * @param message the message (headers and body, LF line ends)
 * @param options more lines for the smtp transport (e.g. TLS and AUTH
 *   requirements), an authenticators section, the envelope sender (-f)
 * @returns the run, with Exim's transcript
 */
export async function eximSend(
  exim: Exim,
  port: number,
  recipient: string,
  message: string,
  options: {
    transport?: string;
    authenticators?: string;
    sender?: string;
    /**
     * An SMTP session (CRLF lines, QUIT last) that Exim takes on its stdin
     * (`-bs`) instead of `message`, from a local client that may ask for
     * DSN and SMTPUTF8 (both advertised): Exim then relays that message to
     * us with the recipients' NOTIFY and ORCPT as it received them.
     */
    smtpIn?: string;
  } = {},
): Promise<EximRun> {
  // Exim's user must reach its config and spool: a work directory may not
  // be traversable for it, a directory of its own under the temp dir is.
  const base = await Deno.makeTempDir({ prefix: "deno-smtpd-exim-" });
  await Deno.chmod(base, 0o755);
  const spool = join(base, "spool");
  await Deno.mkdir(spool);
  const own = await run("chown", ["Debian-exim:Debian-exim", spool]);
  if (own.code !== 0) throw new Error(`chown ${spool}: ${own.stderr}`);
  const conf = join(base, "exim.conf");
  await Deno.writeTextFile(
    conf,
    `keep_environment =
spool_directory = ${spool}
log_file_path = ${spool}/%slog
exim_user = Debian-exim
exim_group = Debian-exim
primary_hostname = exim.test.example
${
      options.smtpIn === undefined
        ? ""
        : "acl_smtp_rcpt = accept\ndsn_advertise_hosts = *\nsmtputf8_advertise_hosts = *\n"
    }begin routers
to_us:
  driver = manualroute
  route_list = * 127.0.0.1::${port} byname
  self = send
  transport = to_us_smtp
begin transports
to_us_smtp:
  driver = smtp
  allow_localhost
  hosts_try_chunking = *
${options.transport ?? ""}${
      options.authenticators ? `begin authenticators\n${options.authenticators}` : ""
    }`,
  );
  const msgFile = join(base, "message.txt");
  await Deno.writeTextFile(msgFile, options.smtpIn ?? message);
  const r = await run("unshare", [
    "-m",
    "sh",
    "-c",
    `mount --bind '${exim.root}/usr/sbin' /usr/sbin && mount --bind '${exim.ldCache}' /etc/ld.so.cache && ` +
    `exec /usr/sbin/exim4 -C '${conf}' -odf -v ` +
    (options.smtpIn !== undefined
      ? `-bs < '${msgFile}'`
      : `-oi ${options.sender ? `-f '${options.sender}' ` : ""}'${recipient}' < '${msgFile}'`),
  ]);
  const logs = await Deno.readTextFile(join(spool, "mainlog")).catch(() => "");
  await Deno.remove(base, { recursive: true }).catch(() => {});
  return { ...r, transcript: r.stdout + r.stderr + logs };
}
