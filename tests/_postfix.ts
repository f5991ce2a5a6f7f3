/**
 * The configuration of a private Postfix instance for end-to-end tests: its
 * queue, data and log under one directory, loopback only, every message
 * delivered by a pipe to `<dir>/deliver.sh` (so a test counts deliveries)
 * or by local(8) to mailboxes,
 * and, when a port is given, an smtpd on 127.0.0.1:port.
 *
 * @module
 */

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
 * @param smtpdPort a loopback port for Postfix's own smtpd, if wanted
 * @returns the file's text
 */
export function postfixMasterCf(dir: string, smtpdPort?: number): string {
  const smtpd = smtpdPort === undefined
    ? ""
    : `127.0.0.1:${smtpdPort} inet n -       n       -       -       smtpd\n`;
  return `
${smtpd}${QUEUE_SERVICES}mbox      unix  -       n       n       -       -       pipe
  flags=F user=nobody argv=${dir}/deliver.sh
`;
}

/** master.cf with local(8) delivery to mailboxes instead of the pipe. */
export const POSTFIX_LOCAL_MASTER_CF = `
${QUEUE_SERVICES}local     unix  -       n       n       -       -       local
`;

/**
 * main.cf: nothing local, everything to the `mbox` pipe.
 * @param dir the instance's directory
 * @param name its syslog_name and host name's first label
 * @param extra more main.cf lines (e.g. mynetworks for its smtpd)
 * @returns the file's text
 */
export function postfixMainCf(dir: string, name: string, extra = ""): string {
  return `
compatibility_level = 3.6
queue_directory = ${dir}/queue
data_directory = ${dir}/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-${name}
maillog_file = ${dir}/log/maillog
maillog_file_prefixes = ${dir}/log
myhostname = ${name}.localdomain
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
