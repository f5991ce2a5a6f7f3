/**
 * A private Postfix instance for end-to-end tests: its configuration,
 * queue, data and log under one directory, loopback only, every message
 * delivered by a pipe to `<dir>/deliver.sh` (so a test counts deliveries)
 * or by local(8) to mailboxes, and, when a port is given, an smtpd on
 * 127.0.0.1:port. {@linkcode startPostfix} lays it out and starts it, with
 * our server's queue_directory as its queue.
 *
 * @module
 */

import { join } from "node:path";
import { readOrEmpty, ROOT, run, sh, waitFor } from "./_harness.ts";

/** master.cf lines of the daemons a queue needs, chroot off. */
const QUEUE_SERVICES = `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

/**
 * master.cf: the daemons a queue needs, chroot off, and the `mbox` pipe to
 * `<dir>/deliver.sh`.
 * @param dir the instance's directory
 * @param options a loopback port for Postfix's own smtpd, if wanted; the
 *   pipe's flags (default F: a From_ line); more services
 * @returns the file's text
 */
export function postfixMasterCf(
  dir: string,
  options: { smtpdPort?: number; pipeFlags?: string; extra?: string } = {},
): string {
  const { smtpdPort, pipeFlags = "F", extra = "" } = options;
  const smtpd = smtpdPort === undefined
    ? ""
    : `127.0.0.1:${smtpdPort} inet n -       n       -       -       smtpd\n`;
  return `
${smtpd}${QUEUE_SERVICES}${extra}mbox      unix  -       n       n       -       -       pipe
  flags=${pipeFlags} user=nobody argv=${dir}/deliver.sh
`;
}

/** master.cf with local(8) delivery to mailboxes instead of the pipe. */
export const POSTFIX_LOCAL_MASTER_CF = `
${QUEUE_SERVICES}local     unix  -       n       n       -       -       local
`;

/** main.cf lines that keep an instance under `dir`, logging as postfix-`name`. */
function instanceMainCf(dir: string, name: string): string {
  return `
compatibility_level = 3.6
queue_directory = ${dir}/queue
data_directory = ${dir}/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-${name}
maillog_file = ${dir}/log/maillog
maillog_file_prefixes = ${dir}/log
`;
}

/**
 * main.cf: nothing local, everything to the `mbox` pipe.
 * @param dir the instance's directory
 * @param name its syslog_name and host name's first label
 * @param extra more main.cf lines (e.g. mynetworks for its smtpd)
 * @returns the file's text
 */
export function postfixMainCf(dir: string, name: string, extra = ""): string {
  return `${instanceMainCf(dir, name)}myhostname = ${name}.localdomain
mydomain = localdomain
mydestination =
local_recipient_maps =
relay_domains =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
${extra}default_transport = mbox
relay_transport = mbox
local_transport = mbox
smtp_dns_support_level = disabled
biff = no
delay_warning_time = 0
`;
}

/**
 * main.cf for {@linkcode POSTFIX_LOCAL_MASTER_CF}: mx.test.example is local,
 * local(8) delivers to mailbox files in `<dir>/mail`, long queue IDs.
 * @param dir the instance's directory
 * @param name its syslog_name suffix
 * @returns the file's text
 */
export function postfixLocalMainCf(dir: string, name: string): string {
  return `${instanceMainCf(dir, name)}myhostname = mx.test.example
mydomain = test.example
mydestination = mx.test.example
alias_maps =
alias_database =
local_recipient_maps =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mail_spool_directory = ${dir}/mail
enable_long_queue_ids = yes
smtp_dns_support_level = disabled
biff = no
`;
}

/**
 * Whether a private instance can run here: the postfix command and the
 * postfix user exist (it also needs root, which each test checks).
 */
export async function havePostfix(): Promise<boolean> {
  const r = await run("sh", ["-c", "command -v postfix && id -u postfix"]);
  return r.code === 0;
}

/**
 * Makes an instance's directories under `dir` (configuration, queue, data
 * owned by postfix, log, and a mail directory anyone may write into) and
 * lets Postfix's users walk to them from the repository root.
 * @param dir the instance's directory (from makeWorkDir)
 * @param options the configuration directory, the mail directory's name and mode
 */
export async function makePostfixDirs(
  dir: string,
  options: { conf: string; mail: string; mailMode: string },
): Promise<void> {
  const { conf, mail, mailMode } = options;
  await sh(`chmod 755 ${ROOT}var ${ROOT}var/tests ${dir}`);
  await sh(`mkdir -p ${conf} ${dir}/queue ${dir}/data ${dir}/log ${dir}/${mail}`);
  await sh(
    `chown postfix ${dir}/data && chmod 700 ${dir}/data && chmod ${mailMode} ${dir}/${mail}`,
  );
}

/** master.cf's smtp client service, for an instance that relays (startPostfix's masterCfExtra). */
export const SMTP_CLIENT_SERVICE = "smtp      unix  -       -       n       -       -       smtp\n";

/**
 * main.cf lines (startPostfix's mainCfExtra) for an instance that trusts
 * loopback clients and relays one domain with its smtp client, without
 * TLS, to a port on 127.0.0.1; the transport table is written into `dir`.
 * Pass {@linkcode SMTP_CLIENT_SERVICE} as masterCfExtra with it.
 * @param dir the instance's directory
 * @param domain the domain relayed
 * @param port where it goes
 * @returns the main.cf lines
 */
export async function relayDomainTo(dir: string, domain: string, port: number): Promise<string> {
  const transport = join(dir, "transport");
  await Deno.writeTextFile(transport, `${domain} smtp:[127.0.0.1]:${port}\n`);
  return [
    "mynetworks = 127.0.0.0/8",
    "smtp_tls_security_level = none",
    `transport_maps = texthash:${transport}`,
    "",
  ].join("\n");
}

/** Options for {@linkcode startPostfix}. */
export interface StartPostfixOptions {
  /** syslog_name suffix and host name label (see postfixMainCf). */
  name: string;
  /**
   * deliver.sh after its `#!/bin/sh` line: the `mbox` pipe's command, run
   * with the message on stdin. @default {appends to `<dir>/mbox/mailbox`}
   */
  deliver?: string;
  /** pipe(8) flags of the `mbox` transport. @default {"F"} */
  pipeFlags?: string;
  /** A loopback port for Postfix's own smtpd, if wanted. */
  smtpdPort?: number;
  /** More main.cf lines. */
  mainCfExtra?: string;
  /** More master.cf lines (e.g. an smtp client for a FILTER destination). */
  masterCfExtra?: string;
}

/** A running private Postfix instance (see {@linkcode startPostfix}). */
export interface PostfixInstance {
  /** The configuration directory (`postfix -c`, `postqueue -c`, `sendmail -C`). */
  readonly conf: string;
  /** The queue: our server's queue_directory too. */
  readonly queueDir: string;
  /** Postfix's log file (postlogd). */
  readonly maillog: string;
  /** The file the default deliver.sh appends every message to. */
  readonly mailbox: string;
  /**
   * Our server's TOML lines for sharing the queue: queue_directory,
   * mail_owner = Postfix's uid:gid, no peer name lookups.
   */
  readonly smtpdConfig: string;
  /** The mailbox's text so far ("" before the first delivery). */
  mailboxText(): Promise<string>;
  /** The log's text so far. */
  logText(): Promise<string>;
  /** Waits (20 s unless told) until the mailbox contains `text`. */
  waitForMailbox(what: string, text: string, timeoutMs?: number): Promise<void>;
  /** Waits (20 s unless told) until the log matches `pattern`. */
  waitForLog(what: string, pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** `postfix stop`. */
  stop(): Promise<void>;
}

/**
 * Lays out a private instance under `dir` (configuration in `<dir>/conf`,
 * queue, data, log, mailboxes in `<dir>/mbox`), writes deliver.sh, main.cf
 * and master.cf, runs `postfix check` and `postfix start`, and waits until
 * its master logs that it started. Needs root.
 * @param dir a work directory (from makeWorkDir)
 * @param options name, delivery, smtpd port, main.cf lines
 * @returns the running instance; stop it in `finally`
 */
export async function startPostfix(
  dir: string,
  options: StartPostfixOptions,
): Promise<PostfixInstance> {
  const conf = join(dir, "conf");
  const queueDir = join(dir, "queue");
  const maillog = join(dir, "log", "maillog");
  const mailbox = join(dir, "mbox", "mailbox");
  await makePostfixDirs(dir, { conf, mail: "mbox", mailMode: "777" });
  const deliver = join(dir, "deliver.sh");
  await Deno.writeTextFile(
    deliver,
    `#!/bin/sh\n${options.deliver ?? `cat >> ${mailbox}\nexit 0\n`}`,
  );
  await sh(`chmod 755 ${deliver}`);
  await Deno.writeTextFile(
    join(conf, "main.cf"),
    postfixMainCf(dir, options.name, options.mainCfExtra),
  );
  await Deno.writeTextFile(
    join(conf, "master.cf"),
    postfixMasterCf(dir, {
      smtpdPort: options.smtpdPort,
      pipeFlags: options.pipeFlags,
      extra: options.masterCfExtra,
    }),
  );
  await sh(`postfix -c ${conf} check 2>&1`);
  await sh(`postfix -c ${conf} start 2>&1`);
  const stop = async () => {
    await run("postfix", ["-c", conf, "stop"]);
  };
  try {
    await waitFor(
      "postfix master",
      async () => (await readOrEmpty(maillog)).includes("daemon started"),
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const owner = `${await sh("id -u postfix")}:${await sh("id -g postfix")}`;
  return {
    conf,
    queueDir,
    maillog,
    mailbox,
    smtpdConfig: [
      `queue_directory = "${queueDir.slice(ROOT.length)}"`,
      `mail_owner = "${owner}"`,
      "smtpd_peername_lookup = false",
    ].join("\n"),
    mailboxText: () => readOrEmpty(mailbox),
    logText: () => readOrEmpty(maillog),
    waitForMailbox: (what, text, timeoutMs) =>
      waitFor(what, async () => (await readOrEmpty(mailbox)).includes(text), timeoutMs),
    waitForLog: (what, pattern, timeoutMs) =>
      waitFor(what, async () => pattern.test(await readOrEmpty(maillog)), timeoutMs),
    stop,
  };
}
