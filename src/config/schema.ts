/**
 * Every configuration parameter the program knows, with its type, default
 * and one-line description, in one table ({@linkcode PARAMS}). Names are
 * Postfix's main.cf parameter names. `config/smtpd.toml` documents the same
 * table, and a test keeps the two in step.
 *
 * @module
 */

/** The value kinds a parameter can have. */
export type ParamKind = "string" | "integer" | "boolean" | "list" | "time" | "enum" | "template";

/** One parameter's definition. */
export interface ParamSpec<T> {
  readonly kind: ParamKind;
  readonly default: T;
  readonly doc: string;
  /** Smallest allowed value (integer and time kinds). */
  readonly min?: number;
  /** Largest allowed value (integer and time kinds). */
  readonly max?: number;
  /** Allowed values (enum kind; for a list, of each element). */
  readonly choices?: readonly string[];
  /**
   * Enum kind: a value is matched without regard to case and kept in lower
   * case, as Postfix's name_code() matches the words of its TLS settings
   * ("HIGH", "Encrypt").
   */
  readonly foldCase?: boolean;
  /** Comment lines the sample config/smtpd.toml shows above the description. */
  readonly note?: readonly string[];
}

function str(def: string, doc: string): ParamSpec<string> {
  return { kind: "string", default: def, doc };
}
/** A string whose $names are expanded when it is used, not at load (default_rbl_reply). */
function template(def: string, doc: string): ParamSpec<string> {
  return { kind: "template", default: def, doc };
}
function int(def: number, doc: string, min = 0, max?: number): ParamSpec<number> {
  return max === undefined
    ? { kind: "integer", default: def, doc, min }
    : { kind: "integer", default: def, doc, min, max };
}
function bool(def: boolean, doc: string): ParamSpec<boolean> {
  return { kind: "boolean", default: def, doc };
}
function list(
  def: readonly string[],
  doc: string,
  choices?: readonly string[],
): ParamSpec<readonly string[]> {
  return choices
    ? { kind: "list", default: def, doc, choices }
    : { kind: "list", default: def, doc };
}
/**
 * The longest time a parameter may name, in seconds: a timer takes at most
 * 2^31 - 1 ms, and a longer one fires at once (with a warning on stderr).
 */
export const MAX_TIME_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

function time(def: number, doc: string, min = 0): ParamSpec<number> {
  return { kind: "time", default: def, doc, min, max: MAX_TIME_SECONDS };
}
function oneOf<const C extends readonly string[]>(
  def: C[number],
  choices: C,
  doc: string,
): ParamSpec<C[number]> {
  return { kind: "enum", default: def, doc, choices };
}

/** {@linkcode oneOf} whose words are matched without regard to case (see ParamSpec.foldCase). */
function oneOfAnyCase<const C extends readonly string[]>(
  def: C[number],
  choices: C,
  doc: string,
): ParamSpec<C[number]> {
  return { ...oneOf(def, choices, doc), foldCase: true };
}

/** The spec with comment lines for the sample configuration above its description. */
function noted<T>(spec: ParamSpec<T>, ...note: string[]): ParamSpec<T> {
  return { ...spec, note };
}

/** The parameter table: name → definition. Time values are in seconds. */
export const PARAMS = {
  queue_directory: str("var/spool", "Queue directory: incoming/, maildrop/, deferred/, public/"),
  smtpd_listen: list(
    ["127.0.0.1:2525"],
    "Addresses the daemon listens on, as IP:port ([v6]:port; :port for all IPv4)",
  ),
  myhostname: str(
    "",
    "This host's fully qualified name (empty: the system host name, with .$mydomain or .localdomain when it has no dot)",
  ),
  mydomain: str("", "This host's domain (empty: $myhostname minus its first label)"),
  myorigin: str("$myhostname", "Domain appended to unqualified envelope addresses"),
  mydestination: list(
    ["$myhostname", "localhost.$mydomain", "localhost"],
    "Domains delivered locally; mail to them is accepted from anyone",
  ),
  relay_domains: list([], "Other domains this host relays mail to, from anyone"),
  mynetworks: list(
    ["127.0.0.0/8", "[::1]/128"],
    "Trusted client networks, allowed to relay to any domain",
  ),
  mynetworks_style: oneOf(
    "host",
    ["host", "subnet", "class"] as const,
    "Without mynetworks: trust loopback (host), or also this host's interface networks (subnet, class)",
  ),
  mail_name: str("deno-smtpd", "The mail system's name, for $mail_name in the banner"),
  smtpd_banner: str("$myhostname ESMTP $mail_name", "Text after 220 in the greeting"),
  smtpd_helo_required: bool(false, "Require HELO or EHLO before MAIL"),
  strict_rfc821_envelopes: bool(false, "Accept only <address> forms in MAIL FROM and RCPT TO"),
  disable_vrfy_command: bool(false, "Answer VRFY with 502"),
  smtputf8_enable: bool(true, "Offer SMTPUTF8 (RFC 6531): UTF-8 addresses with MAIL ... SMTPUTF8"),
  smtpd_discard_ehlo_keywords: list(
    [],
    "EHLO keywords not to offer (any case; silent-discard: do not log it), e.g. dsn, smtputf8",
  ),
  smtpd_discard_ehlo_keyword_address_maps: list(
    [],
    "Tables looked up by client address; a value replaces smtpd_discard_ehlo_keywords",
  ),
  line_length_limit: int(2048, "Longest command line; longer DATA lines are split", 80),
  message_size_limit: int(10240000, "Largest message in bytes", 1024),
  header_size_limit: int(102400, "Largest header block in bytes; the rest counts as body", 1024),
  smtpd_recipient_limit: int(1000, "Most recipients accepted per message", 1),
  smtpd_timeout: time(300, "Time to wait for a client command or data", 1),
  smtpd_starttls_timeout: time(
    300,
    "Longest time for the TLS handshake after STARTTLS (and for each read and write in it)",
    1,
  ),
  smtpd_junk_command_limit: int(
    100,
    "NOOP, VRFY, ETRN and RSET commands per session that are not counted as errors; more are",
    1,
  ),
  smtpd_forbidden_commands: list(
    ["CONNECT", "GET", "POST", "regexp:{{/^[^A-Z]/ Bogus}}"],
    "Unknown commands that end the session with 221 (words, type:table); header lines always do",
  ),
  hopcount_limit: int(50, "Most Received: headers a message may carry", 1),
  queue_minfree: int(0, "Free bytes the queue file system must keep to accept mail"),
  smtpd_error_sleep_time: time(1, "Delay before each 4xx or 5xx reply"),
  smtpd_soft_error_limit: int(
    10,
    "After this many errors, delay every reply by the error count",
    1,
  ),
  smtpd_hard_error_limit: int(20, "After this many errors, reply 421 and disconnect", 1),
  smtpd_forbid_bare_newline: oneOf(
    "normalize",
    ["normalize", "yes", "reject"] as const,
    "Bare LF in DATA or BDAT: treat as CRLF (normalize; yes, Postfix's migration aid, is the same) or refuse the message (reject)",
  ),
  smtpd_forbid_bare_newline_exclusions: list(
    ["$mynetworks"],
    "Clients (addresses, networks, names, tables) whose bare LF is treated as CRLF even with reject",
  ),
  smtpd_forbid_bare_newline_reject_code: int(
    550,
    "Reply code when smtpd_forbid_bare_newline = reject refuses a message or a command line",
    500,
    599,
  ),
  always_bcc: str("", "Address that gets a copy of every accepted message"),
  syslog_name: str("postfix", "Program name prefix of log lines (postfix/smtpd[pid])"),
  inet_interfaces: list(
    ["all"],
    "Our network addresses, for mail to user@[address] (all: the smtpd_listen hosts)",
  ),
  smtpd_client_restrictions: list([], "Restrictions on the client (at RCPT when delayed)"),
  smtpd_helo_restrictions: list([], "Restrictions on the HELO/EHLO name (at RCPT when delayed)"),
  smtpd_sender_restrictions: list([], "Restrictions on MAIL FROM (at RCPT when delayed)"),
  // Postfix 3's default is "permit_mynetworks, permit_sasl_authenticated,
  // defer_unauth_destination"; those two names are not built yet on this
  // branch, so the default is the relay control that works today.
  smtpd_relay_restrictions: list(
    ["permit_mynetworks", "permit_sasl_authenticated", "defer_unauth_destination"],
    "Relay control at RCPT TO and VRFY, before smtpd_recipient_restrictions (Postfix 3's default)",
  ),
  smtpd_recipient_restrictions: list([], "Restrictions on RCPT TO and VRFY"),
  smtpd_etrn_restrictions: list([], "Restrictions on ETRN"),
  smtpd_data_restrictions: list([], "Restrictions on DATA (before 354)"),
  smtpd_end_of_data_restrictions: list(
    [],
    "Restrictions after the end of the message, before it is queued",
  ),
  smtpd_delay_reject: bool(true, "Give client, HELO and sender verdicts at RCPT time"),
  smtpd_restriction_classes: list(
    [],
    "Names of extra keys that each hold a restriction list (Postfix's name)",
  ),
  restriction_classes: list(
    [],
    "The 1999 manual's name for smtpd_restriction_classes (both may be set: the names add up)",
  ),
  smtpd_policy_service_timeout: time(
    100,
    "check_policy_service: longest time to connect to, and get a reply from, a policy server",
    1,
  ),
  smtpd_policy_service_max_idle: time(
    300,
    "check_policy_service: close a policy server connection unused this long",
  ),
  smtpd_policy_service_max_ttl: time(
    1000,
    "check_policy_service: close a policy server connection this long after it was opened",
  ),
  smtpd_policy_service_request_limit: int(
    0,
    "check_policy_service: requests per connection before it is closed (0: no limit)",
  ),
  smtpd_policy_service_try_limit: int(
    2,
    "check_policy_service: attempts per request before the default action applies",
    1,
  ),
  smtpd_policy_service_retry_delay: time(
    1,
    "check_policy_service: wait between two attempts of one request",
  ),
  smtpd_policy_service_default_action: str(
    "451 4.3.5 Server configuration problem",
    "check_policy_service: the access(5) action used when a policy server cannot be asked",
  ),
  smtpd_policy_service_policy_context: str(
    "",
    "check_policy_service: text sent in the policy_context attribute",
  ),
  allow_untrusted_routing: bool(false, "Allow %, !, extra @ and source routes from strangers"),
  smtpd_dnsbl_sites: list(
    [],
    "Weighed DNS blocklists for reject_dnsbl_score: zone[=filter][*weight] (postscreen_dnsbl_sites syntax; a negative weight marks an allow list)",
  ),
  smtpd_dnsbl_threshold: int(
    1,
    "reject_dnsbl_score refuses a client whose summed smtpd_dnsbl_sites weight reaches this",
    1,
  ),
  smtpd_dnsbl_allowlist_threshold: int(
    0,
    "reject_dnsbl_score permits a client whose summed weight is at or below this; 0: off (a negative value turns it on)",
    -1_000_000,
  ),
  maps_rbl_domains: list([], "DNS blocklist zones for the old reject_maps_rbl"),
  default_rbl_reply: template(
    "$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using $rbl_domain${rbl_reason?; $rbl_reason}",
    "Reply template of reject_rbl_client and reject_rhsbl_* ($name expanded per reply, not at load)",
  ),
  rbl_reply_maps: list(
    [],
    "Tables: DNS list zone (as written with =filter, then without) -> reply template for that list",
  ),
  local_recipient_maps: list(
    [],
    "Tables of the users of mydestination; an unknown one is refused at RCPT (empty: no check)",
  ),
  relay_recipient_maps: list(
    [],
    "Tables of the valid recipients in relay_domains; others are refused at RCPT (empty: no check)",
  ),
  virtual_alias_maps: list([], "Tables of virtual aliases (known recipients in every class)"),
  virtual_alias_domains: list(
    ["$virtual_alias_maps"],
    "Domains whose every user is a virtual alias (names, /file, type:table)",
  ),
  virtual_mailbox_maps: list([], "Tables of the users of virtual_mailbox_domains"),
  virtual_mailbox_domains: list(
    ["$virtual_mailbox_maps"],
    "Domains of virtual mailboxes (names, /file, type:table)",
  ),
  smtpd_reject_unlisted_recipient: bool(
    true,
    "Refuse a recipient its class's table does not list, after the restrictions, without reject_unlisted_recipient",
  ),
  smtpd_reject_unlisted_sender: bool(
    false,
    "Refuse a sender address of ours that its class's table does not list",
  ),
  recipient_delimiter: str(
    "",
    "Characters that start an address extension: user+ext@domain is also looked up as user@domain",
  ),
  smtpd_null_access_lookup_key: str(
    "<>",
    "The key access tables look the null sender (MAIL FROM:<>) up with",
  ),
  permit_mx_backup_networks: list(
    [],
    "permit_mx_backup only for domains whose primary MX hosts are all in these networks (empty: any)",
  ),
  smtpd_dns_reply_filter: list(
    [],
    'Tables of DNS records ("name. 0 IN TYPE data") to drop from answers (value IGNORE)',
  ),
  access_map_reject_code: int(554, "Reply code for an access table REJECT", 400),
  invalid_hostname_reject_code: int(501, "Reply code for reject_invalid_*hostname", 400),
  maps_rbl_reject_code: int(554, "Reply code for a DNS blocklist hit", 400),
  reject_code: int(554, "Reply code for the reject restriction", 400),
  defer_code: int(450, "Reply code for the defer restriction", 400),
  relay_domains_reject_code: int(
    554,
    "Reply code for reject_unauth_destination (defer_unauth_destination answers 100 less)",
    400,
  ),
  multi_recipient_bounce_reject_code: int(
    550,
    "Reply code for reject_multi_recipient_bounce",
    400,
  ),
  unknown_address_reject_code: int(450, "Reply code for reject_unknown_*_domain", 400),
  unknown_client_reject_code: int(450, "Reply code for reject_unknown_client_hostname", 400),
  unknown_hostname_reject_code: int(450, "Reply code for reject_unknown_helo_hostname", 400),
  non_fqdn_reject_code: int(504, "Reply code for reject_non_fqdn_*", 400),
  unknown_local_recipient_reject_code: int(
    550,
    "Reply code for a user unknown in local_recipient_maps",
    400,
  ),
  unknown_relay_recipient_reject_code: int(
    550,
    "Reply code for a user unknown in relay_recipient_maps",
    400,
  ),
  unknown_virtual_alias_reject_code: int(
    550,
    "Reply code for a user unknown in virtual_alias_maps",
    400,
  ),
  unknown_virtual_mailbox_reject_code: int(
    550,
    "Reply code for a user unknown in virtual_mailbox_maps",
    400,
  ),
  smtpd_peername_lookup: bool(true, "Look up the client's name in the DNS (PTR, then A/AAAA)"),
  dns_server: str("", "DNS server as address:port, an IP address (empty: the system resolver)"),
  dns_timeout: time(5, "Longest wait for one DNS answer (a timeout is a temporary failure)", 1),
  notify_classes: list(
    ["resource", "software"],
    "Session problems that mail a transcript to error_notice_recipient: policy, protocol, resource, software, data (a table that cannot answer; Postfix's bounce, 2bounce and delay are accepted and concern its other daemons)",
    ["policy", "protocol", "resource", "software", "bounce", "2bounce", "data", "delay"],
  ),
  error_notice_recipient: str("postmaster", "Recipient of notify_classes transcripts"),
  smtpd_history_flush_threshold: int(
    100,
    "Transcript lines kept before they are flushed (and mailed, if a notify_classes problem occurred)",
    1,
  ),
  debug_peer_list: list([], "Clients (addresses, networks, names, tables) that get verbose logs"),
  debug_peer_level: int(2, "Extra verbosity for clients in debug_peer_list", 1),
  smtpd_tls_security_level: oneOfAnyCase(
    "none",
    ["none", "may", "encrypt"] as const,
    "STARTTLS: none (not offered), may (offered), encrypt (required before MAIL)",
  ),
  smtpd_tls_cert_file: noted(
    str("", "PEM certificate chain for STARTTLS and wrapper mode"),
    "(One chain, RSA, ECDSA or Ed25519; a second, ECDSA one: smtpd_tls_eccert_file.",
    'See README "TLS" for what is not built.)',
  ),
  smtpd_tls_key_file: str(
    "",
    "PEM private key for STARTTLS and wrapper mode; empty: the key is in smtpd_tls_cert_file (Postfix's default)",
  ),
  smtpd_tls_protocols: noted(
    str(
      ">=TLSv1",
      "TLS protocols when TLS is optional (Postfix syntax: !TLSv1.2, >=TLSv1.3; only TLSv1.2 and TLSv1.3 exist here)",
    ),
    'Postfix\'s syntax: names, "!TLSv1.2", ">=TLSv1.3", "<=TLSv1.2"; a bound may',
    'also be a hexadecimal number (">=0x0303" is TLSv1.2) or "None". The TLS',
    "library speaks TLSv1.2 and TLSv1.3 only; a list that leaves neither stops",
    "the start.",
  ),
  smtpd_tls_mandatory_protocols: str(
    ">=TLSv1",
    "TLS protocols when TLS is required (level encrypt, wrapper mode)",
  ),
  smtpd_tls_ciphers: noted(
    oneOfAnyCase(
      "medium",
      ["export", "low", "medium", "high", "null"] as const,
      'Minimum cipher grade when TLS is optional (every suite offered is "high"; "null" is refused)',
    ),
    "Grades: export, low, medium, high. Every suite offered is an AEAD of 128",
    'bits or more (OpenSSL\'s "high"), so each grade is met as it is.',
  ),
  smtpd_tls_mandatory_ciphers: oneOfAnyCase(
    "medium",
    ["export", "low", "medium", "high", "null"] as const,
    "Minimum cipher grade when TLS is required",
  ),
  tls_server_sni_maps: noted(
    list(
      [],
      "SNI name (or .parent domain) -> file with the key, then the chain (texthash: or inline:)",
    ),
    'As Postfix\'s: e.g. ["texthash:/etc/smtpd/sni"] with lines "mx.example.com',
    '/etc/smtpd/mx.pem" (key first, then the chain, leaf first); unmatched',
    "names get smtpd_tls_cert_file's chain. One chain per name.",
  ),
  smtpd_tls_received_header: bool(
    false,
    'Put the TLS protocol and cipher in the Received: header, as a comment ("with ESMTPS" says TLS either way)',
  ),
  smtpd_tls_loglevel: int(
    0,
    '0: no log line for a TLS handshake that went well; 1 or more: "Anonymous TLS connection established" (failures are always logged)',
    0,
    4,
  ),
  smtpd_tls_wrappermode: noted(
    bool(
      false,
      "Implicit TLS (RFC 8314) on every smtpd_listen address: the handshake before the greeting",
    ),
    "The handshake has smtpd_starttls_timeout; STARTTLS is not offered there.",
  ),
  smtpd_tls_wrappermode_listen: noted(
    list(
      [],
      "More addresses (host:port, e.g. 465) served in implicit TLS, beside smtpd_listen",
    ),
    "(Postfix: a master.cf service with -o smtpd_tls_wrappermode=yes.)",
  ),
  smtpd_tls_eccert_file: str(
    "",
    "A second chain, ECDSA (PEM), served to clients that accept ECDSA signatures; needs smtpd_tls_loopback_listen (alone, without smtpd_tls_cert_file: the one chain)",
  ),
  smtpd_tls_eckey_file: str(
    "",
    "The key of smtpd_tls_eccert_file (PEM); empty: the key is in smtpd_tls_eccert_file",
  ),
  smtpd_tls_loopback_listen: noted(
    str(
      "",
      "Loopback host:port of the program's own TLS engine (Deno's TLS stack, about half the CPU " +
        "per handshake of node:tls); thread N uses port+N; empty: TLS through node:tls",
    ),
    'Recommended when TLS is on (README, "TLS"), except with tls_server_sni_maps',
    "or a protocol list that leaves only one of TLSv1.2 and TLSv1.3, which the",
    "engine cannot serve (the start stops). Stand-alone mode does not use it.",
  ),
  smtpd_upstream_proxy_protocol: oneOf(
    "",
    ["", "haproxy"] as const,
    'PROXY protocol (v1 and v2) from a load balancer: "" (off) or "haproxy"',
  ),
  smtpd_upstream_proxy_timeout: time(5, "Longest wait for the PROXY header", 1),
  smtpd_upstream_proxy_networks: list(
    ["127.0.0.0/8", "[::1]/128"],
    "Load balancers allowed to send a PROXY header; a connection from anywhere else is dropped",
  ),
  syslog_facility: oneOf(
    "mail",
    [
      "mail",
      "daemon",
      "user",
      "local0",
      "local1",
      "local2",
      "local3",
      "local4",
      "local5",
      "local6",
      "local7",
    ] as const,
    "Syslog facility of our log lines",
  ),
  syslog_server: str(
    "",
    'Also send log lines to a syslog daemon: "udp://host:port" or "tcp://host:port"',
  ),
  smtpd_listen_threads: int(
    0,
    "Listener threads sharing the ports (SO_REUSEPORT); 0: one per two CPUs, 1 to 8",
    0,
    8,
  ),
  default_process_limit: int(
    100,
    "Most concurrent sessions in daemon mode; more get 421 and are disconnected",
    1,
  ),
  smtpd_client_connection_count_limit: int(
    50,
    "Most concurrent connections from one client address (0: no limit)",
  ),
  smtpd_client_ipv4_prefix_length: int(
    32,
    "Count IPv4 clients per network block of this prefix length for the per-client limits and rates (32: per address)",
    0,
    32,
  ),
  smtpd_client_ipv6_prefix_length: int(
    84,
    "Count IPv6 clients per network block of this prefix length for the per-client limits and rates (128: per address)",
    0,
    128,
  ),
  smtpd_client_event_limit_exceptions: list(
    ["$mynetworks"],
    "Clients exempt from smtpd_client_connection_count_limit and the smtpd_client_*_rate_limit limits",
  ),
  smtpd_client_connection_rate_limit: int(
    0,
    "Most connections from one client address per anvil_rate_time_unit; more get 421 4.7.0 (0: no limit)",
  ),
  smtpd_client_message_rate_limit: int(
    0,
    "Most MAIL commands from one client address per anvil_rate_time_unit; more get 450 4.7.1 (0: no limit)",
  ),
  smtpd_client_recipient_rate_limit: int(
    0,
    "Most RCPT commands from one client address per anvil_rate_time_unit; more get 450 4.7.1 (0: no limit)",
  ),
  smtpd_client_new_tls_session_rate_limit: int(
    0,
    "Most STARTTLS handshakes from one client address per anvil_rate_time_unit; more get 454 4.7.0 (0: no limit)",
  ),
  anvil_rate_time_unit: time(
    60,
    "The window of the smtpd_client_*_rate_limit counts, per client from its first event (shared by listener threads)",
    1,
  ),
  smtpd_stress_threshold: int(
    80,
    "Percent of default_process_limit at which stress mode starts (0: never)",
  ),
  smtpd_slow_client_wait: time(
    10,
    "A client that keeps its session waiting this long in all (since a transaction began or ended), sending under smtpd_slow_client_rate, is slow, as is a session whose command waits this long on DNS: at the session cap it gives way to a new client",
    1,
  ),
  smtpd_slow_client_rate: int(
    500,
    "Bytes a second a client must send, over smtpd_slow_client_wait of waiting, not to be slow (0: none is slow)",
  ),
  smtpd_stress_timeout: time(10, "smtpd_timeout while under stress", 1),
  smtpd_stress_starttls_timeout: time(10, "smtpd_starttls_timeout while under stress", 1),
  smtpd_stress_hard_error_limit: int(1, "smtpd_hard_error_limit while under stress", 1),
  smtpd_stress_junk_command_limit: int(1, "smtpd_junk_command_limit while under stress", 1),
  smtpd_memory_budget: int(
    0,
    "Bytes all sessions together may hold for messages in progress; past it new data gets 452 (0: a share of the heap limit)",
  ),
  smtpd_greeting_delay: time(
    0,
    "Wait this long before the 220 greeting; a client that talks first gets 554 (0: off)",
  ),
  smtpd_sasl_auth_enable: bool(
    false,
    "Offer SMTP AUTH (RFC 4954), checked by a Dovecot auth server (daemon mode; stand-alone mode with a network client)",
  ),
  smtpd_sasl_type: oneOf("dovecot", ["dovecot"] as const, "SASL implementation: dovecot only"),
  smtpd_sasl_path: str(
    "private/auth",
    "Dovecot auth socket: a UNIX socket path (relative: under queue_directory) or inet:host:port",
  ),
  smtpd_sasl_service: str("smtp", "Service name given to the auth server"),
  smtpd_sasl_security_options: list(
    ["noanonymous"],
    "Mechanisms not offered: noanonymous, noplaintext, noactive, nodictionary; or required: mutual_auth, forward_secrecy",
  ),
  smtpd_sasl_tls_security_options: list(
    ["$smtpd_sasl_security_options"],
    "smtpd_sasl_security_options for sessions over TLS",
  ),
  smtpd_tls_auth_only: bool(false, "Offer and accept AUTH only over TLS"),
  smtpd_sasl_response_limit: int(
    12288,
    "An AUTH response line from a client must be shorter, in bytes (as Postfix)",
    1,
  ),
  smtpd_sasl_exceptions_networks: list([], "Clients to which AUTH is not offered in EHLO"),
  smtpd_sasl_authenticated_header: bool(
    false,
    "Put the AUTH user name in the Received: header",
  ),
  broken_sasl_auth_clients: bool(
    false,
    'Also announce AUTH in the old "AUTH=" form for clients that need it (Outlook Express 4)',
  ),
  smtpd_sender_login_maps: list(
    [],
    "Tables of MAIL FROM address -> SASL login names that own it (reject_*sender_login_mismatch)",
  ),
  smtpd_client_auth_rate_limit: int(
    0,
    "AUTH commands a client may send per anvil_rate_time_unit (0: no limit)",
    0,
  ),
  mail_owner: str(
    "",
    'Owner given to queue files, as "user" or "uid:gid" (for a Postfix queue when run as root)',
  ),
} as const;

/** A parameter name. */
export type ParamName = keyof typeof PARAMS;

/** The resolved, frozen configuration. */
export type Config = {
  readonly [K in ParamName]: (typeof PARAMS)[K] extends ParamSpec<infer T> ? T : never;
};

/**
 * Whether a string names a known parameter.
 * @param name the candidate name
 * @returns true for a parameter of {@linkcode PARAMS}
 */
export function isParamName(name: string): name is ParamName {
  return Object.hasOwn(PARAMS, name);
}
