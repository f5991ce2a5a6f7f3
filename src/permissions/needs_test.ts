import assert from "node:assert/strict";
import { resolveConfigText } from "../config/load.ts";
import { RESTRICTIONS } from "../policy/compile.ts";
import {
  deriveNeeds,
  DNS_RESTRICTIONS,
  dnsUse,
  resolvConfNameServers,
  tableWordsSteps,
} from "./needs.ts";
import { runSteps } from "../policy/tables/prepared.ts";
import { flagsFor } from "./flags.ts";

const RESOLV =
  "search example\nnameserver 192.0.2.53\n# nameserver 192.0.2.99\nnameserver fe80::1%eth0\n";

function needsOf(text: string, files: Record<string, string> = {}, overrides: string[] = []) {
  const loaded = resolveConfigText(text, {
    file: "/etc/smtpd/smtpd.toml",
    overrides,
    systemHostname: "mx.example.com",
  });
  return deriveNeeds(loaded, {
    cwd: "/srv/smtpd",
    codeDir: "/opt/smtpd/src",
    readText: (p) => p === "/etc/resolv.conf" ? RESOLV : files[p],
  });
}

function flag(needs: ReturnType<typeof needsOf>, kind: string): string | undefined {
  return flagsFor(needs).find((f) => f.startsWith(`--allow-${kind}=`));
}

Deno.test("deriveNeeds() gives absolute paths, the listen address and the resolv.conf servers", () => {
  const needs = needsOf('queue_directory = "spool"\nsmtpd_listen = ["0.0.0.0:25", "[::]:25"]');
  assert.equal(
    flag(needs, "read"),
    "--allow-read=/etc/smtpd/smtpd.toml,/opt/smtpd/src,/srv/smtpd/spool,/etc/resolv.conf",
  );
  assert.equal(flag(needs, "write"), "--allow-write=/srv/smtpd/spool");
  assert.equal(
    flag(needs, "net"),
    "--allow-net=0.0.0.0:25,[::]:25,192.0.2.53:53,[fe80::1]:53," +
      "unix:/srv/smtpd/spool/public/qmgr,unix:/srv/smtpd/spool/public/pickup",
  );
  const all = flagsFor(needs).join(" ");
  assert.doesNotMatch(all, /--allow-(all|run|ffi)|(^| )-A( |$)/);
});

Deno.test("deriveNeeds() takes dns_server instead of resolv.conf, and no DNS when nothing asks it", () => {
  const withServer = needsOf('dns_server = "127.0.0.1:5353"');
  assert.match(flag(withServer, "net") ?? "", /,127\.0\.0\.1:5353,/);
  assert.doesNotMatch(flag(withServer, "read") ?? "", /resolv\.conf/);
  const none = needsOf("smtpd_peername_lookup = false");
  assert.doesNotMatch(flag(none, "net") ?? "", /:53\b/);
  assert.doesNotMatch(flag(none, "read") ?? "", /resolv\.conf/);
  // A DNS restriction brings the resolver back even without name lookups.
  const rbl = needsOf(
    'smtpd_peername_lookup = false\nsmtpd_client_restrictions = ["reject_rbl_client", "bl.example"]',
  );
  assert.match(flag(rbl, "net") ?? "", /192\.0\.2\.53:53/);
});

Deno.test("deriveNeeds() reads every table named, also inside tables and classes, and TLS files", () => {
  const files = {
    "/etc/smtpd/access": "192.0.2.1 check_sender_access texthash:/etc/smtpd/senders\n",
    "/etc/smtpd/senders": "# texthash:/etc/smtpd/commented\nspam@example.com REJECT\n",
  };
  const needs = needsOf(
    [
      'smtpd_client_restrictions = ["check_client_access", "texthash:/etc/smtpd/access"]',
      'restriction_classes = ["strict"]',
      'strict = ["check_recipient_access", "cidr:tables/nets.cidr"]',
      'debug_peer_list = ["inline:{ 192.0.2.7=x }"]',
      'smtpd_tls_security_level = "may"',
      'smtpd_tls_cert_file = "/etc/ssl/smtpd.pem"',
      'smtpd_tls_key_file = "/etc/ssl/private/smtpd.key"',
      'mail_owner = "postfix"',
    ].join("\n"),
    files,
  );
  const reads = needs.filter((n) => n.kind === "read").map((n) => n.value);
  for (
    const p of [
      "/etc/smtpd/access",
      "/etc/smtpd/senders",
      "/srv/smtpd/tables/nets.cidr",
      "/etc/ssl/smtpd.pem",
      "/etc/ssl/private/smtpd.key",
      "/etc/passwd",
    ]
  ) assert.ok(reads.includes(p), `${p} in ${reads.join(" ")}`);
  assert.ok(!reads.includes("/etc/smtpd/commented"));
  // TLS files only when TLS is on; /etc/passwd only for a user name.
  const plain = needsOf('smtpd_tls_cert_file = "/etc/ssl/smtpd.pem"\nmail_owner = "102:105"');
  assert.ok(!plain.some((n) => n.value === "/etc/ssl/smtpd.pem" || n.value === "/etc/passwd"));
});

Deno.test("deriveNeeds() follows -o overrides and grants the syslog server and its UDP port", () => {
  const needs = needsOf("", {}, [
    "queue_directory=/srv/q",
    "smtpd_listen=0.0.0.0:25",
    "syslog_server=udp://192.0.2.5:514",
  ]);
  assert.equal(flag(needs, "write"), "--allow-write=/srv/q");
  assert.match(
    flag(needs, "net") ?? "",
    /^--allow-net=0\.0\.0\.0:25,.*0\.0\.0\.0:0,192\.0\.2\.5:514,/,
  );
});

Deno.test("flagsFor() refuses a path Deno's flag list cannot carry", () => {
  assert.throws(() => flagsFor(needsOf(`queue_directory = "/srv/a,b"`)), RangeError);
});

Deno.test("resolvConfNameServers() reads nameserver lines only", () => {
  assert.deepEqual(resolvConfNameServers(RESOLV), ["192.0.2.53", "fe80::1"]);
});

Deno.test("every DNS restriction name is a restriction the compiler knows", () => {
  const aliases = Object.values(RESTRICTIONS).flatMap((f) => f.aliases ?? []);
  for (const name of DNS_RESTRICTIONS) {
    assert.ok(Object.hasOwn(RESTRICTIONS, name) || aliases.includes(name), name);
  }
});

Deno.test("dnsUse() finds DNSBL zones of reject_rbl_client and reject_maps_rbl", () => {
  const loaded = resolveConfigText(
    'smtpd_client_restrictions = ["reject_rbl_client", "a.example=127.0.0.2", "reject_maps_rbl"]\nmaps_rbl_domains = ["b.example"]',
  );
  const use = dnsUse(loaded, { cwd: "/", readText: () => undefined });
  assert.deepEqual(use.zones, ["a.example", "b.example"]);
  assert.deepEqual(use.restrictions.sort(), ["reject_maps_rbl", "reject_rbl_client"]);
});

Deno.test("deriveNeeds() reads the /file entries of domain and network lists, and the tables they name", () => {
  const needs = needsOf(
    'relay_domains = ["/etc/smtpd/relay_domains"]\nmynetworks = ["/etc/smtpd/networks"]',
    {
      "/etc/smtpd/relay_domains": "# relayed\nexample.com /etc/smtpd/more_domains\n",
      "/etc/smtpd/more_domains": "example.net texthash:/etc/smtpd/domain_table\n",
      "/etc/smtpd/networks": "192.0.2.0/24 cidr:/etc/smtpd/networks.cidr\n",
    },
  );
  const read = flag(needs, "read") ?? "";
  for (
    const p of [
      "/etc/smtpd/relay_domains",
      "/etc/smtpd/more_domains",
      "/etc/smtpd/domain_table",
      "/etc/smtpd/networks",
      "/etc/smtpd/networks.cidr",
    ]
  ) assert.ok(read.split(/[=,]/).includes(p), `${p} in ${read}`);
});

Deno.test("deriveNeeds() reads the /file entries of smtpd_forbid_bare_newline_exclusions", () => {
  const needs = needsOf('smtpd_forbid_bare_newline_exclusions = ["/etc/smtpd/lf_clients"]', {
    "/etc/smtpd/lf_clients": "192.0.2.0/24 texthash:/etc/smtpd/lf_table\n",
  });
  const read = flag(needs, "read") ?? "";
  for (const p of ["/etc/smtpd/lf_clients", "/etc/smtpd/lf_table"]) {
    assert.ok(read.split(/[=,]/).includes(p), `${p} in ${read}`);
  }
});

Deno.test("deriveNeeds() asks for the interfaces only for mynetworks_style subnet or class without mynetworks", () => {
  const sys = (text: string) => flag(needsOf(text), "sys") ?? "";
  assert.match(sys('mynetworks_style = "subnet"'), /networkInterfaces/);
  assert.doesNotMatch(sys('mynetworks_style = "host"'), /networkInterfaces/);
  assert.doesNotMatch(
    sys('mynetworks_style = "class"\nmynetworks = ["127.0.0.0/8"]'),
    /networkInterfaces/,
  );
});

Deno.test("deriveNeeds() reads the tables of the relay, DATA and end-of-data lists", () => {
  const needs = needsOf(
    [
      'smtpd_relay_restrictions = ["check_client_access", "texthash:/etc/smtpd/relay", "reject_unauth_destination"]',
      'smtpd_data_restrictions = ["check_sender_access", "texthash:/etc/smtpd/data"]',
      'smtpd_end_of_data_restrictions = ["check_sender_access", "cidr:/etc/smtpd/eod.cidr"]',
    ].join("\n"),
    {},
  );
  const reads = needs.filter((n) => n.kind === "read").map((n) => n.value);
  for (const p of ["/etc/smtpd/relay", "/etc/smtpd/data", "/etc/smtpd/eod.cidr"]) {
    assert.ok(reads.includes(p), `${p} in ${reads.join(" ")}`);
  }
});

Deno.test("dnsUse() counts the RHSBL, DNSWL and server-access restrictions as DNS users", () => {
  const loaded = resolveConfigText(
    "smtpd_peername_lookup = false\n" +
      'smtpd_recipient_restrictions = ["reject_rhsbl_sender r.example", "permit_dnswl_client w.example=127.0.[0..255].[1..3]", "check_reverse_client_mx_access inline:{ a=REJECT }"]',
  );
  const use = dnsUse(loaded, { cwd: "/", readText: () => undefined });
  assert.deepEqual(use.restrictions.sort(), [
    "check_reverse_client_mx_access",
    "permit_dnswl_client",
    "reject_rhsbl_sender",
  ]);
  assert.deepEqual(use.zones, ["w.example"]);
  assert.equal(use.peername, false);
});

Deno.test("deriveNeeds() reads the rbl_reply_maps tables", () => {
  const needs = needsOf('rbl_reply_maps = ["texthash:/etc/smtpd/rbl_replies"]');
  const reads = needs.filter((n) => n.kind === "read").map((n) => n.value);
  assert.ok(reads.includes("/etc/smtpd/rbl_replies"), reads.join(", "));
});

Deno.test("deriveNeeds() reads the tables of smtpd_discard_ehlo_keyword_address_maps", () => {
  const needs = needsOf(
    'smtpd_discard_ehlo_keyword_address_maps = ["cidr:/etc/smtpd/ehlo.cidr", "texthash:ehlo"]',
  );
  const reads = needs.filter((n) => n.kind === "read").map((n) => n.value);
  assert.ok(reads.includes("/etc/smtpd/ehlo.cidr"), reads.join(" "));
  assert.ok(reads.includes("/srv/smtpd/ehlo"), reads.join(" "));
});

Deno.test("deriveNeeds() grants smtpd_sasl_path (UNIX socket under the queue, or inet) only with AUTH on", () => {
  const off = needsOf('queue_directory = "/q"');
  assert.doesNotMatch(flag(off, "net") ?? "", /auth/);
  const unix = needsOf('queue_directory = "/q"\nsmtpd_sasl_auth_enable = true');
  assert.match(flag(unix, "net") ?? "", /unix:\/q\/private\/auth(,|$)/);
  assert.match(flag(unix, "read") ?? "", /\/q\/private\/auth/);
  assert.match(flag(unix, "write") ?? "", /\/q\/private\/auth/);
  const inet = needsOf(
    'queue_directory = "/q"\nsmtpd_sasl_auth_enable = true\nsmtpd_sasl_path = "inet:127.0.0.1:12345"',
  );
  assert.match(flag(inet, "net") ?? "", /127\.0\.0\.1:12345/);
});

Deno.test("deriveNeeds() reads the smtpd_sender_login_maps tables", () => {
  const needs = needsOf(
    'queue_directory = "/q"\nsmtpd_sasl_auth_enable = true\nsmtpd_sender_login_maps = ["texthash:/etc/smtpd/logins"]',
    { "/etc/smtpd/logins": "a@example.com alice\n" },
  );
  assert.match(flag(needs, "read") ?? "", /\/etc\/smtpd\/logins/);
});

Deno.test("deriveNeeds() says on which line of the configuration a table is named", () => {
  const files = {
    "/etc/smtpd/access": "192.0.2.1 check_sender_access texthash:/etc/smtpd/senders\n",
  };
  const needs = needsOf(
    [
      "# check_helo_access texthash:/etc/smtpd/access (a comment)",
      'myhostname = "mx.example.com"',
      'smtpd_client_restrictions = ["check_client_access texthash:/etc/smtpd/access"]',
    ].join("\n"),
    files,
  );
  const why = (p: string) => needs.find((n) => n.kind === "read" && n.value === p)?.why;
  assert.equal(why("/etc/smtpd/access"), "table texthash:, named at /etc/smtpd/smtpd.toml:3");
  // Named inside another table: no line of the configuration names it.
  assert.equal(why("/etc/smtpd/senders"), "table texthash:");
});

Deno.test("dnsUse() sees a DNS restriction in an inline: value whose key is an IPv6 address", () => {
  for (const key of ["fe80::1", "fd00:1::2", "2001:db8::1", "::1"]) {
    const loaded = resolveConfigText(
      "smtpd_peername_lookup = false\n" +
        `smtpd_client_restrictions = ["check_client_access inline:{ ${key}=reject_unknown_client_hostname }"]`,
    );
    const use = dnsUse(loaded, { cwd: "/", readText: () => undefined });
    assert.deepEqual(use.restrictions, ["reject_unknown_client_hostname"], key);
  }
});

Deno.test("tableWordsSteps(): a table's words that name tables, services and restrictions, and the word after each restriction", () => {
  const text = [
    "# check_policy_service inet:127.0.0.1:1 (a comment)",
    "user1@example.com REJECT",
    "a.example check_policy_service",
    "  inet:127.0.0.1:9998",
    "b.example reject_rbl_client",
    "  zen.example",
    "c.example check_sender_access texthash:/etc/x, OK",
    "d.example socketmap:unix:/run/s:name",
    "e.example=permit_dnswl_client list.example",
  ].join("\n");
  assert.deepEqual(runSteps(tableWordsSteps(text)), [
    "check_policy_service",
    "inet:127.0.0.1:9998",
    "reject_rbl_client",
    "zen.example",
    "check_sender_access",
    "texthash:/etc/x",
    "socketmap:unix:/run/s:name",
    "permit_dnswl_client",
    "list.example",
  ]);
});

Deno.test("deriveNeeds() reads each list file and table once (a reload of large ones waits for it)", () => {
  const loaded = resolveConfigText(
    [
      'mynetworks = ["/etc/smtpd/networks"]',
      'smtpd_client_restrictions = ["check_client_access", "texthash:/etc/smtpd/clients"]',
    ].join("\n"),
    { file: "/etc/smtpd/smtpd.toml", overrides: [], systemHostname: "mx.example.com" },
  );
  const files: Record<string, string> = {
    "/etc/smtpd/networks": "192.0.2.0/24\n",
    "/etc/smtpd/clients": "198.51.100.7 reject_rbl_client zen.example\n",
  };
  const reads: string[] = [];
  const needs = deriveNeeds(loaded, {
    cwd: "/srv/smtpd",
    readText: (p) => {
      reads.push(p);
      return p === "/etc/resolv.conf" ? RESOLV : files[p];
    },
  });
  assert.deepEqual(reads.filter((p) => p in files).sort(), Object.keys(files).sort());
  // The table's DNS list is still seen: the resolver is needed.
  assert.ok(needs.some((n) => n.kind === "net" && n.value === "192.0.2.53:53"), `${needs}`);
});
