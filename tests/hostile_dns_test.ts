/**
 * A name server that misbehaves, against the real daemon: every answer
 * must come within dns_timeout, whatever the server does, and other
 * clients are served meanwhile.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Daemon,
  makeWorkDir,
  RawClient,
  run,
  smtpdArgs,
  startDaemon,
  waitFor,
  writeConfig,
} from "./_harness.ts";
import { fanoutDns, hostileDns, slowDns } from "./_hostile_servers.ts";
import { socketmapServer } from "./_socketmap_server.ts";
import { startBlackHole, startDns } from "./_dns.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/**
 * A daemon behind PROXY whose name server never answers, so that each
 * client's PTR lookup never ends; and its open descriptors, counted.
 */
async function blackHoleDaemon(): Promise<
  { d: Daemon; descriptors: () => number; stop: () => Promise<void> }
> {
  const hole = await startBlackHole();
  const d = await startDaemon([
    'smtpd_upstream_proxy_protocol = "haproxy"',
    'mydestination = ["example.com"]',
    `dns_server = "127.0.0.1:${hole.port}"`,
    "dns_timeout = 10",
    "default_process_limit = 1000",
  ].join("\n"));
  return {
    d,
    descriptors: () => Array.from(Deno.readDirSync(`/proc/${d.pid}/fd`)).length,
    async stop() {
      await d.stop();
      hole.stop();
    },
  };
}

/**
 * `clients` clients at once, each connecting `each` times: a PROXY header
 * from 198.51.100.N (the client number), then a hang-up. Returns once every
 * session has logged its lost connection (asserted, within 20 s): each ends
 * at its hang-up.
 */
async function hangUpFlood(d: Daemon, clients: number, each: number): Promise<void> {
  const enc = new TextEncoder();
  const client = async (n: number) => {
    for (let i = 0; i < each; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: d.port });
      try {
        await c.write(enc.encode(`PROXY TCP4 198.51.100.${n} 192.0.2.250 ${4000 + i} 25\r\n`));
      } finally {
        c.close();
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, n) => client(n + 1)));
  const lost = () => (d.log().match(/lost connection after CONNECT from unknown/g) ?? []).length;
  const until = Date.now() + 20000;
  while (lost() < clients * each && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(lost(), clients * each);
}

Deno.test({
  name:
    "DNS: a server whose TCP port drops connections costs a confirmed lookup at most dns_timeout, not the kernel's connect timeout",
  ...opts,
  fn: async () => {
    const dns = await hostileDns(120);
    const d = await startDaemon([
      "smtpd_peername_lookup = false",
      'mydestination = ["example.com"]',
      `dns_server = "127.0.0.1:${dns.port}"`,
      "dns_timeout = 1",
      'smtpd_sender_restrictions = ["reject_unknown_sender_domain"]',
    ].join("\n"));
    const clients: RawClient[] = [];
    try {
      const t0 = Date.now();
      const replies = await Promise.all(Array.from({ length: 5 }, async (_, i) => {
        const c = await RawClient.connect(d.port);
        clients.push(c);
        await c.reply();
        await c.send("HELO client.example.org\r\n");
        await c.reply();
        await c.send(`MAIL FROM:<a@nx${i}.example>\r\n`);
        await c.reply();
        await c.send("RCPT TO:<b@example.com>\r\n");
        return await c.reply(20000);
      }));
      const took = Date.now() - t0;
      for (const r of replies) assert.match(r, /^450 4\.1\.8 .*Domain not found/);
      // About 3 s here (dns_timeout met more than once), loaded or not:
      // bounded with room for a stalled host, far below the kernel's connect
      // timeout (over a minute) that a lookup not cut at dns_timeout waits.
      assert.ok(took < 15000, `took ${took} ms`);
    } finally {
      for (const c of clients) c.close();
      await d.stop();
      await dns.stop();
    }
  },
});

Deno.test({
  name:
    "DNS: an answer that takes 1.5 s is waited for within dns_timeout = 5, not lost to the resolver library's 1 s retry",
  ...opts,
  fn: async () => {
    const dns = await slowDns(120, 1.5);
    const d = await startDaemon([
      'mydestination = ["example.com"]',
      `dns_server = "127.0.0.1:${dns.port}"`,
      "dns_timeout = 5",
      'smtpd_sender_restrictions = ["reject_unknown_sender_domain"]',
    ].join("\n"));
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("HELO client.example.org\r\n");
      await c.reply();
      await c.send("MAIL FROM:<a@slow.example>\r\n");
      await c.reply();
      await c.send("RCPT TO:<b@example.com>\r\n");
      // MX and AAAA answer with no records, A with an address: each in 1.5 s.
      assert.match(await c.reply(30000), /^250 2\.1\.5 /);
    } finally {
      c.close();
      await d.stop();
      await dns.stop();
    }
  },
});

Deno.test({
  name:
    "DNS: answers with the wrong ID are dropped without a line of the resolver library in the log",
  ...opts,
  fn: async () => {
    const dns = await slowDns(120, 0.2);
    const d = await startDaemon([
      'mydestination = ["example.com"]',
      `dns_server = "127.0.0.1:${dns.port}"`,
      "dns_timeout = 5",
      'smtpd_sender_restrictions = ["reject_unknown_sender_domain"]',
    ].join("\n"));
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("HELO client.example.org\r\n");
      await c.reply();
      await c.send("MAIL FROM:<a@forged.example>\r\n");
      await c.reply();
      await c.send("RCPT TO:<b@example.com>\r\n");
      // Each query's forged answer first, then the real one.
      assert.match(await c.reply(30000), /^250 2\.1\.5 /);
      await c.send("QUIT\r\n");
      await c.reply();
      await d.waitForLog("disconnect from");
      const lines = d.log().split("\n").filter((l) => l !== "");
      const stray = lines.filter((l) =>
        !/^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ \S+\[\d+\]: /.test(l)
      );
      assert.deepEqual(stray, []);
    } finally {
      c.close();
      await d.stop();
      await dns.stop();
    }
  },
});

Deno.test({
  name:
    "DNS: a domain with 1000 MX hosts costs check_sender_mx_access at most Postfix's 100 records per answer, not 2000 lookups",
  ...opts,
  fn: async () => {
    const dns = await fanoutDns(120, 1000);
    const dir = await makeWorkDir("fanout");
    const table = join(dir, "mx_access");
    await Deno.writeTextFile(table, "192.0.2.1 REJECT listed\n");
    const d = await startDaemon(
      [
        'mydestination = ["example.com"]',
        `dns_server = "127.0.0.1:${dns.port}"`,
        "dns_timeout = 2",
        `smtpd_sender_restrictions = ["check_sender_mx_access", "texthash:${table}"]`,
      ].join("\n"),
      { dir },
    );
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("HELO client.example.org\r\n");
      await c.reply();
      await c.send("MAIL FROM:<a@x.many.example>\r\n");
      await c.reply();
      const before = await dns.asked();
      await c.send("RCPT TO:<b@example.com>\r\n");
      assert.match(await c.reply(120000), /^250 /);
      const asked = await dns.asked() - before;
      // The MX answer (UDP, then TCP), then A and AAAA of at most 100 hosts.
      assert.ok(asked <= 210, `${asked} queries for one RCPT`);
      await d.waitForLog(/DNS record count limit \(100\) exceeded/);
    } finally {
      c.close();
      await d.stop();
      await dns.stop();
    }
  },
});

Deno.test({
  name:
    "DNS: check_sender_mx_access looks up at most 100 server addresses in its table, as Postfix, not 100 per MX host",
  ...opts,
  fn: async () => {
    const dns = await fanoutDns(120, 100, 100);
    const map = socketmapServer({}); // NOTFOUND to every key
    const d = await startDaemon([
      'mydestination = ["example.com"]',
      `dns_server = "127.0.0.1:${dns.port}"`,
      "dns_timeout = 2",
      `smtpd_sender_restrictions = ["check_sender_mx_access",` +
      ` "socketmap:inet:127.0.0.1:${map.port}:mx"]`,
    ].join("\n"));
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send("HELO client.example.org\r\nMAIL FROM:<a@x.many.example>\r\n");
      await c.reply();
      await c.reply();
      await c.send("RCPT TO:<b@example.com>\r\n");
      assert.match(await c.reply(120000), /^250 /);
      // Each host's name and parents (3 keys), each address and its prefixes
      // (4 keys): 100 hosts and 100 addresses, not 100 x 100 addresses.
      assert.ok(map.queries.length <= 100 * 4 + 100 * 4, `${map.queries.length} table lookups`);
      await d.waitForLog(/MX server address count limit \(100\) exceeded/);
    } finally {
      c.close();
      await d.stop();
      await dns.stop();
      map.stop();
    }
  },
});

Deno.test({
  name:
    "DNS: a PTR name that does not resolve back to the client is logged as Postfix logs it (hostname N does not resolve to address A)",
  ...opts,
  fn: async () => {
    const dns = await startDns({
      a: [["other.example", "198.51.100.7"], ["good.example", "192.0.2.9"]],
      ptr: [["192.0.2.7", "other.example"], ["192.0.2.8", "nowhere.example"], [
        "192.0.2.9",
        "good.example",
      ]],
    });
    const d = await startDaemon([
      'smtpd_upstream_proxy_protocol = "haproxy"',
      'mydestination = ["example.com"]',
      `dns_server = "127.0.0.1:${dns.port}"`,
      "dns_timeout = 5",
    ].join("\n"));
    try {
      for (const last of [7, 8, 9]) {
        const c = await RawClient.connect(d.port);
        await c.send(`PROXY TCP4 192.0.2.${last} 192.0.2.250 4000 25\r\n`);
        assert.match(await c.reply(), /^220 /);
        await c.send("QUIT\r\n");
        await c.reply();
        c.close();
      }
      await d.waitForLog("connect from good.example[192.0.2.9]");
      const warnings = d.log().split("\n").filter((l) => l.includes("does not resolve"))
        .map((l) => l.replace(/^.*?: warning: /, ""));
      assert.deepEqual(warnings, [
        "hostname other.example does not resolve to address 192.0.2.7",
        "hostname nowhere.example does not resolve to address 192.0.2.8: Name or service not known",
      ]);
      assert.match(d.log(), /connect from unknown\[192\.0\.2\.7\]/);
    } finally {
      await d.stop();
      await dns.stop();
    }
  },
});

Deno.test({
  name:
    "DNS: a reverse zone serving 150 PTR records for the client costs no record count warning (the first name is taken, as Postfix's getnameinfo)",
  ...opts,
  fn: async () => {
    const ptr = Array.from(
      { length: 150 },
      (_, i): [string, string] => ["192.0.2.7", `h${i}.many.example`],
    );
    const dns = await startDns({ a: [["h0.many.example", "192.0.2.7"]], ptr });
    const d = await startDaemon([
      'smtpd_upstream_proxy_protocol = "haproxy"',
      'mydestination = ["example.com"]',
      `dns_server = "127.0.0.1:${dns.port}"`,
      "dns_timeout = 5",
    ].join("\n"));
    try {
      const c = await RawClient.connect(d.port);
      await c.send("PROXY TCP4 192.0.2.7 192.0.2.250 4000 25\r\n");
      assert.match(await c.reply(), /^220 /);
      await c.send("QUIT\r\n");
      await c.reply();
      c.close();
      await d.waitForLog("disconnect from");
      // One name, whichever the server put first: confirmed (h0) or not.
      assert.match(d.log(), /hostname h\d+\.many\.example does not resolve|from h0\.many/);
      assert.doesNotMatch(d.log(), /record count limit/);
    } finally {
      await d.stop();
      await dns.stop();
    }
  },
});

Deno.test({
  name:
    "DNS: clients that hang up while their reverse zone never answers give their session slots back at once, not after dns_timeout",
  ...opts,
  fn: async () => {
    const hole = await startBlackHole();
    const d = await startDaemon([
      'smtpd_upstream_proxy_protocol = "haproxy"',
      'mydestination = ["example.com"]',
      `dns_server = "127.0.0.1:${hole.port}"`,
      "dns_timeout = 10",
      "default_process_limit = 3",
    ].join("\n"));
    let next: RawClient | undefined;
    try {
      // Three clients (all the slots) connect, name themselves and hang up
      // while their PTR lookups wait for a server that never answers.
      for (let i = 0; i < 3; i++) {
        const c = await RawClient.connect(d.port);
        await c.send(`PROXY TCP4 192.0.2.${30 + i} 192.0.2.250 4000 25\r\n`);
        c.close();
      }
      for (let i = 0; i < 3; i++) {
        await d.waitForLog(
          new RegExp(`lost connection after CONNECT from unknown\\[192\\.0\\.2\\.${30 + i}\\]`),
          5000,
        );
      }
      // Their slots are free: the next client is let in (its own lookup
      // waits for dns_timeout, then it is greeted), not refused with 421.
      next = await RawClient.connect(d.port);
      await next.send("PROXY TCP4 192.0.2.40 192.0.2.250 4000 25\r\n");
      assert.match(await next.reply(30000), /^220 /);
      assert.doesNotMatch(d.log(), /Connection limit exceeded/);
    } finally {
      next?.close();
      await d.stop();
      hole.stop();
    }
  },
});

Deno.test({
  name:
    "DNS: a HELO name that makes a DNS list query longer than 255 characters is not listed, without a lookup error in the log (as Postfix)",
  ...opts,
  fn: async () => {
    const dns = await startDns({});
    const d = await startDaemon([
      'mydestination = ["example.com"]',
      `dns_server = "127.0.0.1:${dns.port}"`,
      'smtpd_recipient_restrictions = ["reject_rhsbl_helo", "rhsbl.example"]',
    ].join("\n"));
    // 250 characters: a valid host name, but not under the zone.
    const helo = `${Array.from({ length: 4 }, () => "a".repeat(60)).join(".")}.abcdef`;
    const c = await RawClient.connect(d.port);
    try {
      await c.reply();
      await c.send(`EHLO ${helo}\r\n`);
      await c.reply();
      await c.send("MAIL FROM:<a@example.com>\r\n");
      await c.reply();
      await c.send("RCPT TO:<b@example.com>\r\n");
      assert.match(await c.reply(), /^250 2\.1\.5 /);
      await c.send("QUIT\r\n");
      await c.reply();
      await d.waitForLog("disconnect from");
      assert.doesNotMatch(d.log(), /lookup error/);
    } finally {
      c.close();
      await d.stop();
      await dns.stop();
    }
  },
});

Deno.test({
  name:
    "DNS: smtpd explain shows a DNS list's TXT text with its terminal escapes and CR made harmless",
  ...opts,
  fn: async () => {
    const dns = await startDns({
      a: [["7.2.0.192.bl.example", "127.0.0.2"]],
      txt: [["7.2.0.192.bl.example", "Listed\x1b]0;owned\x07\x1b[2J\rFAKE: accepted"]],
    });
    try {
      const work = await makeWorkDir("explain-txt");
      const { configFile } = await writeConfig(
        work,
        [
          'mydestination = ["example.com"]',
          `dns_server = "127.0.0.1:${dns.port}"`,
          'smtpd_client_restrictions = ["reject_rbl_client", "bl.example"]',
        ].join("\n"),
      );
      const r = await run(
        Deno.execPath(),
        await smtpdArgs([
          "explain",
          "-c",
          configFile,
          "--client",
          "192.0.2.7",
          "--to",
          "u@example.com",
        ]),
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /dns TXT 7\.2\.0\.192\.bl\.example: Listed\?\]0;owned.\?\[2J\?FAKE: accepted/,
      );
      // deno-lint-ignore no-control-regex
      assert.doesNotMatch(r.stdout, /[\x00-\x09\x0b-\x1f\x7f]/);
    } finally {
      await dns.stop();
    }
  },
});

Deno.test({
  name:
    "DNS: clients that hang up during lookups that never end leave at most 100 lookups running, not one socket each for 15 s",
  ...opts,
  fn: async () => {
    const { d, descriptors, stop } = await blackHoleDaemon();
    try {
      const before = descriptors();
      // 20 clients, each connecting 30 times; each session ends at its hang-up.
      await hangUpFlood(d, 20, 30);
      // The lookups Deno gives up on by itself (1 s a try) are over within
      // seconds; those it waits 5 s a try for (which cannot be stopped) are
      // at most 100. Without that bound, each of the 600 held its socket
      // for 15 s.
      const end = Date.now() + 8000;
      let open = descriptors();
      while (open > before + 110 && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 100));
        open = descriptors();
      }
      assert.ok(
        open <= before + 110,
        `${open} descriptors open (${before} before)`,
      );
    } finally {
      await stop();
    }
  },
});

Deno.test({
  name:
    "DNS: a client that hangs up during its name lookup ends that lookup: hundreds of connect-and-close clients hold no socket each",
  ...opts,
  fn: async () => {
    const { d, descriptors, stop } = await blackHoleDaemon();
    try {
      const before = descriptors();
      // 20 clients, each connecting 40 times.
      await hangUpFlood(d, 20, 40);
      // The sessions are over: the 100 lookups asked without Deno's signal
      // cannot be stopped, the others ended with their sessions. They held
      // a socket each for Deno's own second or two: hundreds at once.
      // (Half a second for the runtime to close them; Deno's own end of
      // a lookup is a second or more after its start.)
      const end = Date.now() + 500;
      let open = descriptors();
      while (open > before + 130 && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 20));
        open = descriptors();
      }
      assert.ok(open <= before + 130, `${open} descriptors open (${before} before)`);
    } finally {
      await stop();
    }
  },
});

Deno.test({
  name:
    "DNS: a client that hangs up during its name's forward confirmation leaves no false warning after its disconnect line",
  ...opts,
  fn: async () => {
    // The PTR answer names ptr.mute.many.example, whose A lookup never
    // ends: the hang-up ends it (a temporary failure, ours, not the DNS's).
    const dns = await fanoutDns(60, 1);
    const d = await startDaemon([
      'smtpd_upstream_proxy_protocol = "haproxy"',
      'mydestination = ["example.com"]',
      `dns_server = "127.0.0.1:${dns.port}"`,
      "dns_timeout = 10",
    ].join("\n"));
    const enc = new TextEncoder();
    // The queries the name server got, but for those asked() itself made.
    let polls = 0;
    const queries = async () => (await dns.asked()) - polls++;
    try {
      for (let i = 1; i <= 3; i++) {
        const before = await queries();
        const c = await Deno.connect({ hostname: "127.0.0.1", port: d.port });
        await c.write(enc.encode(`PROXY TCP4 203.0.113.${i} 192.0.2.250 ${4000 + i} 25\r\n`));
        // The hang-up once the PTR answer is in and the A query has gone out
        // (two queries asked), not after a guessed 300 ms.
        await waitFor(
          `client ${i}'s PTR and A queries`,
          async () => (await queries()) >= before + 2,
          10000,
          20,
        );
        c.close();
      }
      const lost = () =>
        (d.log().match(/lost connection after CONNECT from unknown/g) ?? []).length;
      const until = Date.now() + 10000;
      while (lost() < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.equal(lost(), 3);
      // A warning would follow the abort at once: read the log once the
      // daemon has exited (all it logged is there), not after a guessed 500 ms.
      await d.stop();
      assert.doesNotMatch(d.log(), /does not resolve to address|name lookup failed/);
    } finally {
      await d.stop();
      dns.stop();
    }
  },
});

Deno.test({
  name:
    "DNS: sessions whose RCPT waits smtpd_slow_client_wait on MX hosts that never answer give way at default_process_limit, as slow clients",
  ...opts,
  fn: async () => {
    // 100 MX hosts for any name under many.example; those under
    // mute.many.example never answer A or AAAA: one RCPT would wait on
    // DNS for minutes (dns_timeout each, one host after another).
    const dns = await fanoutDns(120, 100);
    const dir = await makeWorkDir("dnswait");
    const table = join(dir, "mx_access");
    await Deno.writeTextFile(table, "192.0.2.1 REJECT listed\n");
    const d = await startDaemon(
      [
        "smtpd_peername_lookup = false",
        'mydestination = ["example.com"]',
        `dns_server = "127.0.0.1:${dns.port}"`,
        "dns_timeout = 1",
        "default_process_limit = 3",
        "smtpd_slow_client_wait = 2",
        `smtpd_sender_restrictions = ["check_sender_mx_access", "texthash:${table}"]`,
      ].join("\n"),
      { dir },
    );
    const stuck: RawClient[] = [];
    const clients: RawClient[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const c = await RawClient.connect(d.port);
        stuck.push(c);
        assert.match(await c.reply(), /^220 /);
        await c.send("HELO client.example.org\r\n");
        await c.reply();
        await c.send(`MAIL FROM:<a@s${i}.mute.many.example>\r\n`);
        assert.match(await c.reply(), /^250 /);
        await c.send("RCPT TO:<b@example.com>\r\n");
      }
      // A legitimate client, until it gets in: refused while the stuck
      // sessions have waited on DNS less than smtpd_slow_client_wait,
      // served after (without the fix: refused for minutes).
      let greeting = "";
      const until = Date.now() + 20000;
      while (Date.now() < until) {
        const c = await RawClient.connect(d.port);
        clients.push(c);
        greeting = await c.reply(5000);
        if (greeting.startsWith("220 ")) break;
        c.close();
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.match(greeting, /^220 /);
      const c = clients[clients.length - 1] as RawClient;
      await c.send("HELO legit.example.org\r\n");
      assert.match(await c.reply(), /^250 /);
      await c.send("MAIL FROM:<a@ok.many.example>\r\n");
      assert.match(await c.reply(), /^250 /);
      await c.send("RCPT TO:<b@example.com>\r\n");
      assert.match(await c.reply(5000), /^250 /);
      await c.send("QUIT\r\n");
      assert.match(await c.reply(), /^221 /);
      // One stuck session made room: it was told so, and the log says why.
      const farewells = await Promise.all(stuck.map((s) => s.reply(1000).catch(() => "")));
      assert.ok(
        farewells.some((r) => /^421 4\.3\.2 .*slow session closed to make room/.test(r)),
        JSON.stringify(farewells),
      );
      await d.waitForLog(
        /closed the slow session of \[127\.0\.0\.1\] \(waiting (\d+) ms on DNS for its command\) to make room/,
      );
      const ms = /waiting (\d+) ms on DNS for its command/.exec(d.log())?.[1];
      assert.ok(Number(ms) >= 2000, d.log());
    } finally {
      for (const c of [...stuck, ...clients]) c.close();
      await d.stop();
      await dns.stop();
    }
  },
});
