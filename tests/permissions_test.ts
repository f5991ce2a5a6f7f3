/**
 * Flags derived from the configuration: `smtpd permissions` prints exactly
 * what `deno task smtpd` runs the program with and what `deno task compile`
 * bakes into the binary; a queue outside the checkout and a wildcard listen
 * address just work; the DNS check at start and in `config --check`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import {
  freePort,
  makeWorkDir,
  ROOT,
  run,
  type RunResult,
  smtpdArgs,
  startDaemon,
  swaks,
  writeConfig,
} from "./_harness.ts";
import { startBlackHole, startDns } from "./_dns.ts";
import { flagsForArgs } from "../scripts/permissions.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** The command line of a live process, from /proc. */
function cmdline(pid: number): string[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter((a) => a !== "");
  } catch {
    return [];
  }
}

/** Every live process whose command line has all the words. */
function findProcesses(...words: string[]): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const argv = cmdline(Number(e.name));
    if (words.every((w) => argv.includes(w))) out.push(Number(e.name));
  }
  return out;
}

Deno.test({
  name:
    "deno task smtpd runs with exactly the flags smtpd permissions prints and compile --dry-run bakes",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("perm");
    const { configFile } = await writeConfig(work);
    // A queue outside the checkout and a wildcard address: they just work.
    const queue = await Deno.makeTempDir({ prefix: "smtpd-queue-" });
    const port = freePort();
    const o = ["-o", `queue_directory=${queue}`, "-o", `smtpd_listen=0.0.0.0:${port}`];
    const printed = await run(Deno.execPath(), [
      "task",
      "-q",
      "smtpd",
      "permissions",
      "-c",
      configFile,
      ...o,
    ]);
    assert.equal(printed.code, 0, printed.stderr);
    const flags = printed.stdout.trim().split("\n");
    assert.ok(flags.includes(`--allow-write=${queue}`), flags.join("\n"));
    assert.match(flags.join("\n"), new RegExp(`--allow-net=0\\.0\\.0\\.0:${port},`));

    const compiled = await run(Deno.execPath(), [
      "task",
      "-q",
      "compile",
      "--dry-run",
      "-c",
      configFile,
      ...o,
    ]);
    assert.equal(compiled.code, 0, compiled.stderr);
    const cmd = compiled.stderr.trim().split("\n").find((l) => l.startsWith("deno compile "));
    assert.ok(cmd, compiled.stderr);
    const baked = cmd.split(" ").slice(2).filter((a) =>
      a.startsWith("--") && a !== "--include" &&
      a !== "--output"
    );
    assert.deepEqual(baked, flags);

    const server = new Deno.Command(Deno.execPath(), {
      args: ["task", "-q", "smtpd", "serve", "-c", configFile, ...o],
      cwd: ROOT,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      let child: number | undefined;
      const deadline = Date.now() + 20000;
      while (!child && Date.now() < deadline) {
        // `deno task smtpd` hands the program the configuration's absolute path.
        child = findProcesses("mod.ts", "serve", resolve(ROOT, configFile)).find((pid) =>
          cmdline(pid).some((a) => a.startsWith("--allow-"))
        );
        if (!child) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(child, "the server process never appeared");
      const argv = cmdline(child);
      const ran = argv.slice(argv.indexOf("run") + 1, argv.indexOf("mod.ts"));
      assert.deepEqual(ran, flags);
      // And it serves, with its queue outside the checkout.
      let greeting = "";
      while (!greeting && Date.now() < deadline) {
        greeting = await (async () => {
          try {
            const c = await Deno.connect({ hostname: "127.0.0.1", port });
            const buf = new Uint8Array(512);
            const n = await c.read(buf);
            c.close();
            return new TextDecoder().decode(buf.subarray(0, n ?? 0));
          } catch {
            await new Promise((r) => setTimeout(r, 100));
            return "";
          }
        })();
      }
      assert.match(greeting, /^220 /);
      assert.ok((await Deno.stat(join(queue, "incoming"))).isDirectory);
    } finally {
      try {
        server.kill("SIGTERM");
      } catch { /* gone */ }
      await server.status;
      await server.stderr.cancel().catch(() => {});
      await Deno.remove(queue, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "config --check and the start say whether the resolver of a DNS restriction answers",
  ...opts,
  fn: async () => {
    const dns = await startDns({ a: [["2.0.0.127.bl.test.example", "127.0.0.2"]] });
    const hole = await startBlackHole();
    try {
      const rbl =
        'smtpd_client_restrictions = ["reject_rbl_client", "bl.test.example", "reject_unknown_client_hostname"]';
      const { configFile: good } = await writeConfig(
        await makeWorkDir("dnscheck"),
        `${rbl}\ndns_server = "127.0.0.1:${dns.port}"`,
      );
      const ok = await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", good]));
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(
        ok.stdout,
        new RegExp(
          `DNS: the dns_server 127\\.0\\.0\\.1:${dns.port} answers \\(2\\.0\\.0\\.127\\.bl`,
        ),
      );
      const { configFile: bad } = await writeConfig(
        await makeWorkDir("dnscheck"),
        `${rbl}\ndns_server = "127.0.0.1:${hole.port}"\ndns_timeout = 1`,
      );
      const warn = await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", bad]));
      assert.equal(warn.code, 0, warn.stderr);
      assert.match(
        warn.stderr,
        /warning: DNS: the dns_server 127\.0\.0\.1:\d+ does not answer \(2\.0\.0\.127\.bl\.test\.example A: timeout\); until it does, reject_unknown_client_hostname answer with 4xx \(never 5xx\), and reject_rbl_client find nothing listed$/m,
      );
      // An allowlist that cannot be asked finds nothing listed, and a later
      // rejection becomes 450 (Postfix's DEFER_IF_REJECT).
      const { configFile: allow } = await writeConfig(
        await makeWorkDir("dnscheck"),
        'smtpd_client_restrictions = ["permit_dnswl_client", "wl.test.example", "reject"]\n' +
          `dns_server = "127.0.0.1:${hole.port}"\ndns_timeout = 1`,
      );
      const wl = await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", allow]));
      assert.equal(wl.code, 0, wl.stderr);
      assert.match(
        wl.stderr,
        /until it does, permit_dnswl_client find nothing listed and make a later rejection 450 \(defer_if_reject\)$/m,
      );
      // The daemon starts anyway (an outage is temporary) and says so in its log.
      const d = await startDaemon(`${rbl}\ndns_server = "127.0.0.1:${hole.port}"\ndns_timeout = 1`);
      try {
        // After dns_timeout (1 s), once the query has timed out: room for a loaded host.
        await d.waitForLog(/warning: DNS: the dns_server [^ ]+ does not answer/, 20000);
      } finally {
        await d.stop();
      }
      // No DNS restriction: nothing said.
      const { configFile: none } = await writeConfig(await makeWorkDir("dnscheck"));
      const quiet = await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", none]));
      assert.doesNotMatch(quiet.stdout + quiet.stderr, /DNS:/);
    } finally {
      await dns.stop();
      hole.stop();
    }
  },
});

// Before, `deno task smtpd ... -c FILE` looked for a relative FILE in the
// repository root (where deno task runs it), not where the user typed it.
Deno.test({
  name: "deno task smtpd: a relative -c FILE is read from the directory the user is in",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("relconfig");
    try {
      await writeConfig(work, `queue_directory = "${work}/spool"`);
      // What `deno task smtpd` runs, from the root, with INIT_CWD the user's directory.
      for (const c of [["-c", "smtpd.toml"], ["--config=./smtpd.toml"], ["-csmtpd.toml"]]) {
        const r = await run(
          Deno.execPath(),
          ["run", "-A", "scripts/smtpd.ts", "config", "--check", ...c],
          { env: { INIT_CWD: work } },
        );
        assert.equal(r.code, 0, `${c.join(" ")}: ${r.stderr}`);
        assert.equal(r.stdout.trim(), `${join(work, "smtpd.toml")}: configuration OK`);
      }
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name:
    'smtpd_listen = ["*:25"]: every command says which line, where Deno refused the derived flag with a stack trace',
  ...opts,
  fn: async () => {
    const { configFile } = await writeConfig(
      await makeWorkDir("starhost"),
      'smtpd_listen = ["*:2525"]',
    );
    for (const cmd of [["permissions"], ["config", "--check"], ["serve"]]) {
      // What `deno task smtpd ...` runs: the launcher derives the flags first.
      const r = await run(
        Deno.execPath(),
        ["run", "-A", "scripts/smtpd.ts", ...cmd, "-c", configFile],
        { timeoutMs: 20_000 },
      );
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /^smtpd: fatal: .*smtpd\.toml:4: smtpd_listen: "\*" is neither an IP address nor a host name/m,
      );
      assert.doesNotMatch(r.stderr, /Stack backtrace|invalid host/);
    }
  },
});

Deno.test({
  name:
    "queue_directory through a symlink: start-up recovery runs with the derived flags (FsFile.stat checks the resolved path)",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("qlink");
    const incoming = join(dir, "real", "incoming");
    await Deno.mkdir(incoming, { recursive: true });
    await Deno.symlink(join(dir, "real"), join(dir, "link"));
    // A leftover of an interrupted write and an unused pool file (names of ours).
    await Deno.writeTextFile(join(incoming, "u4jZtBBBBBBz1"), "C\x5fpartial", { mode: 0o600 });
    await Deno.writeTextFile(join(incoming, "u4jZtDDDDDDz3"), "", { mode: 0o600 });
    const d = await startDaemon(
      `queue_directory = "${join(dir, "link").slice(ROOT.length)}"`,
      { dir },
    );
    try {
      await d.waitForLog(
        "incoming/u4jZtBBBBBBz1: incomplete (still marked as being written): set aside in corrupt/",
      );
      // It runs while the daemon serves: its end.
      await d.waitForLog(/queue recovery: done in \d+ ms: 2 files of ours .* looked at, 1 moved/);
      assert.doesNotMatch(d.log(), /queue recovery failed|Requires (read|write) access/);
      const left = [];
      for await (const e of Deno.readDir(incoming)) left.push(e.name);
      assert.ok(!left.includes("u4jZtDDDDDDz3"), "the unused pool file is removed");
      assert.deepEqual(
        (await Array.fromAsync(Deno.readDir(join(dir, "real", "corrupt")))).map((e) => e.name),
        ["incoming.u4jZtBBBBBBz1"],
      );
    } finally {
      await d.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "deno task compile: a relative -c FILE from the user's directory; a configuration that does not load, or an unknown option, is refused",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("compilecfg");
    try {
      const queue = join(work, "spool");
      await writeConfig(work, `queue_directory = "${queue}"`);
      // What `deno task compile` runs, from the root, with INIT_CWD the user's directory.
      const compile = (args: string[]) =>
        run(Deno.execPath(), ["run", "-A", "scripts/compile.ts", "--dry-run", ...args], {
          env: { INIT_CWD: work },
        });
      const ok = await compile(["-c", "smtpd.toml"]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stderr, new RegExp(`--allow-write=${queue} `));

      await Deno.writeTextFile(join(work, "bad.toml"), `smtpd_timeout = "abc"\n`);
      const bad = await compile(["-c", "bad.toml"]);
      assert.equal(bad.code, 1, bad.stderr);
      assert.match(bad.stderr, /^smtpd: fatal: .*bad\.toml:1: smtpd_timeout: /m);
      assert.doesNotMatch(bad.stderr, /deno compile/);

      const unknown = await compile(["--net", "127.0.0.1", "-c", "smtpd.toml"]);
      assert.equal(unknown.code, 2, unknown.stderr);
      assert.match(unknown.stderr, /^compile: Unknown option '--net'/m);
      assert.doesNotMatch(unknown.stderr, /^\s+at /m);
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "a path with a comma (no --allow flag can carry it): deno task smtpd and compile say so, where they ended in a stack trace",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("comma");
    try {
      await writeConfig(work, `queue_directory = "${join(work, "a,b")}"`);
      for (
        const args of [
          ["scripts/smtpd.ts", "permissions"],
          ["scripts/smtpd.ts", "serve"],
          ["scripts/compile.ts", "--dry-run"],
        ]
      ) {
        const r = await run(Deno.execPath(), ["run", "-A", ...args, "-c", "smtpd.toml"], {
          env: { INIT_CWD: work },
        });
        assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
        assert.match(
          r.stderr,
          /^smtpd: fatal: Cannot grant ".*a,b" \(queue_directory\): Deno's --allow-read list cannot hold a comma/m,
        );
        assert.doesNotMatch(r.stderr, /^\s+at /m, args.join(" "));
      }
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name:
    'queue_directory = "" is refused with file and line, where it granted read and write of the whole directory the program runs in',
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("emptyqueue");
    try {
      await writeConfig(work, `queue_directory = ""`);
      for (const cmd of [["permissions"], ["config", "--check"]]) {
        const r = await run(
          Deno.execPath(),
          ["run", "-A", "scripts/smtpd.ts", ...cmd, "-c", "smtpd.toml"],
          { env: { INIT_CWD: work } },
        );
        assert.equal(r.code, 1, `${cmd.join(" ")}: ${r.stdout}${r.stderr}`);
        assert.match(
          r.stderr,
          /^smtpd: fatal: .*smtpd\.toml:\d+: queue_directory: must not be empty$/m,
        );
        assert.doesNotMatch(r.stdout, /--allow-write/);
      }
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

const isRoot = Deno.uid() === 0;

/**
 * Runs `fn` with a way to run commands as user nobody (setpriv), with a
 * copy of the npm cache nobody can read as DENO_DIR, and a work directory
 * nobody can read; skips (logs) when nobody cannot read the checkout.
 */
async function withNobody(
  prefix: string,
  fn: (
    work: string,
    asNobody: (args: string[], stdin?: string, timeoutMs?: number) => Promise<RunResult>,
  ) => Promise<void>,
): Promise<void> {
  const work = await makeWorkDir(prefix);
  const denoDir = await Deno.makeTempDir({ prefix: "smtpd-denodir-" });
  try {
    const info = JSON.parse((await run(Deno.execPath(), ["info", "--json"])).stdout);
    assert.equal((await run("cp", ["-r", info.npmCache, join(denoDir, "npm")])).code, 0);
    await run("chmod", ["-R", "a+rwX", denoDir]);
    const asNobody = (args: string[], stdin?: string, timeoutMs?: number) =>
      run("setpriv", [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "env",
        `DENO_DIR=${denoDir}`,
        "HOME=/tmp",
        ...args,
      ], { stdin, timeoutMs });
    if ((await asNobody(["test", "-r", join(ROOT, "mod.ts")])).code !== 0) {
      // deno-lint-ignore no-console
      console.log("skipped: user nobody cannot read the checkout");
      return;
    }
    await Deno.chmod(work, 0o755);
    await fn(work, asNobody);
  } finally {
    await Deno.remove(work, { recursive: true });
    await Deno.remove(denoDir, { recursive: true });
  }
}

Deno.test({
  name:
    "mail_owner another user than a non-root process: stdin stops with file and line, where every message got 451 after DATA",
  ignore: !isRoot,
  ...opts,
  fn: () =>
    withNobody("mailowner", async (work, asNobody) => {
      const queue = join(work, "spool");
      await Deno.mkdir(queue);
      await Deno.chown(queue, 65534, 65534);
      const { configFile } = await writeConfig(
        work,
        `queue_directory = "${queue}"\nmail_owner = "0:0"\nsmtpd_listen = []`,
      );
      const flags = await flagsForArgs(["stdin", "-c", configFile], ROOT);
      const want =
        /^smtpd: fatal: .*smtpd\.toml:\d+: mail_owner: "0:0" \(uid 0\) cannot be given to queue files by this process \(uid 65534\)/m;
      const session = await asNobody(
        [Deno.execPath(), "run", ...flags, "mod.ts", "stdin", "-c", configFile],
        "HELO me\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@mx.test.example>\r\nDATA\r\n" +
          "Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n",
      );
      assert.equal(session.code, 1, session.stdout + session.stderr);
      assert.match(session.stderr, want);
      assert.doesNotMatch(session.stdout, /^(220|451) /m);
    }),
});

Deno.test({
  name:
    "a queue directory the process may not write: serve and stdin stop at start, where the daemon ran and answered every message 451",
  ignore: !isRoot,
  ...opts,
  fn: () =>
    withNobody("roqueue", async (work, asNobody) => {
      // Postfix's layout made by root: every subdirectory there, none writable by nobody.
      const queue = join(work, "spool");
      for (const sub of ["incoming", "maildrop", "hold", "deferred", "active", "public"]) {
        await Deno.mkdir(join(queue, sub), { recursive: true, mode: 0o755 });
      }
      const { configFile } = await writeConfig(work, `queue_directory = "${queue}"`);
      // config --check says so (as a warning: it may run as another user than
      // the service), with file and line, and writes nothing.
      const checkFlags = await flagsForArgs(["config", "--check", "-c", configFile], ROOT);
      const check = await asNobody(
        [Deno.execPath(), "run", ...checkFlags, "mod.ts", "config", "--check", "-c", configFile],
      );
      assert.equal(check.code, 0, check.stderr);
      assert.match(
        check.stderr,
        new RegExp(
          `warning: ${configFile}:4: cannot prepare queue directory .*/incoming is not writable for uid 65534`,
        ),
      );
      assert.match(check.stdout, /configuration OK \(1 warnings\)/);
      assert.deepEqual(await Array.fromAsync(Deno.readDir(join(queue, "incoming"))), []);
      const flags = await flagsForArgs(["serve", "-c", configFile], ROOT);
      const serve = await asNobody(
        [Deno.execPath(), "run", ...flags, "mod.ts", "serve", "-c", configFile],
        undefined,
        20_000,
      );
      assert.equal(serve.code, 1, serve.stderr);
      assert.match(
        serve.stderr,
        new RegExp(
          `error: ${configFile}:4: cannot prepare queue directory .*Permission denied.*/incoming/u`,
        ),
      );
      assert.doesNotMatch(serve.stderr, /daemon started/);
      const stdin = await asNobody(
        [Deno.execPath(), "run", ...flags, "mod.ts", "stdin", "-c", configFile],
        "HELO me\r\nQUIT\r\n",
      );
      assert.equal(stdin.code, 1, stdin.stdout + stdin.stderr);
      assert.match(
        stdin.stderr,
        new RegExp(
          `error: ${configFile}:4: cannot prepare queue directory .*Permission denied.*/maildrop/u`,
        ),
      );
      assert.doesNotMatch(stdin.stdout, /^220 /m);
      assert.deepEqual(await Array.fromAsync(Deno.readDir(join(queue, "incoming"))), []);
    }),
});

Deno.test({
  name:
    "the /file entries of every network list are granted: permit_mx_backup_networks, smtpd_upstream_proxy_networks, smtpd_client_event_limit_exceptions",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("netfiles");
    try {
      // Outside the queue (work/spool): granted only if the derivation names it.
      const file = join(work, "networks");
      await Deno.writeTextFile(file, "192.0.2.0/24\n");
      for (
        const extra of [
          `permit_mx_backup_networks = ["${file}"]\n` +
          'smtpd_recipient_restrictions = ["reject_unauth_destination", "permit_mx_backup"]\n' +
          'dns_server = "127.0.0.1:53"',
          `smtpd_upstream_proxy_protocol = "haproxy"\nsmtpd_upstream_proxy_networks = ["${file}"]`,
          `smtpd_client_event_limit_exceptions = ["${file}"]`,
        ]
      ) {
        const { configFile } = await writeConfig(work, extra);
        const flags = await flagsForArgs(["config", "-c", configFile], ROOT);
        assert.ok(
          flags.some((f) => f.startsWith("--allow-read=") && f.split(/[=,]/).includes(file)),
          `${extra}\n${flags.join("\n")}`,
        );
        const checked = await run(
          Deno.execPath(),
          await smtpdArgs(["config", "--check", "-c", configFile]),
          { timeoutMs: 20_000 },
        );
        // Was: "cannot read ...: outside the paths this program may read".
        assert.doesNotMatch(checked.stderr, /cannot read|outside the paths/, extra);
        assert.match(checked.stdout + checked.stderr, /configuration OK/, extra);
      }
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "an inline: table's key=value naming a DNS restriction or a policy service: its name server and endpoint are granted",
  ...opts,
  fn: async () => {
    const dns = await startDns({
      mx: [["example.org", "mx.example.org", 10]],
      a: [["mx.example.org", "192.0.2.10"]],
    });
    const work = await makeWorkDir("inlinevalue");
    const policyPort = freePort();
    // Fixed ports: port 0 would grant every port of 127.0.0.1, the name
    // server's and the policy service's too.
    const base = [
      `smtpd_listen = ["127.0.0.1:${freePort()}"]`,
      `dns_server = "127.0.0.1:${dns.port}"`,
      `mydestination = ["example.com"]`,
    ].join("\n");
    const rcpt = (values: string) =>
      `smtpd_recipient_restrictions = ["reject_unauth_destination", "check_recipient_access inline:{ ${values} }"]`;
    try {
      // The policy service: the start refused it ("outside the hosts and sockets").
      const { configFile } = await writeConfig(
        work,
        `${base}\n${rcpt(`v@example.com=check_policy_service inet:127.0.0.1:${policyPort}`)}`,
      );
      const flags = await flagsForArgs(["serve", "-c", configFile], ROOT);
      const net = flags.find((f) => f.startsWith("--allow-net="))?.split(/[=,]/) ?? [];
      assert.ok(net.includes(`127.0.0.1:${policyPort}`), flags.join("\n"));
      assert.ok(net.includes(`127.0.0.1:${dns.port}`), flags.join("\n"));
      const checked = await run(
        Deno.execPath(),
        await smtpdArgs(["config", "--check", "-c", configFile]),
        { timeoutMs: 20_000 },
      );
      assert.equal(checked.code, 0, checked.stderr);

      // The DNS restriction: every sender was "Domain not found" (450), the
      // query refused by the permissions.
      const d = await startDaemon(
        `${base}\n${rcpt("u@example.com=reject_unknown_sender_domain")}`,
        {
          dir: work,
        },
      );
      try {
        const r = await swaks(d.port, ["--from", "a@example.org", "--to", "u@example.com"], {
          timeoutMs: 30_000,
        });
        assert.match(r.stdout, /250 2\.0\.0 Ok: queued as/, r.stdout);
        const r2 = await swaks(d.port, ["--from", "a@nowhere.example", "--to", "u@example.com"], {
          timeoutMs: 30_000,
        });
        assert.match(
          r2.stdout,
          /450 4\.1\.8 <a@nowhere\.example>: Sender address rejected: Domain not found/,
        );
        assert.doesNotMatch(d.log(), /refused|NotCapable|Requires net access/);
      } finally {
        await d.stop();
      }
    } finally {
      await dns.stop();
      await Deno.remove(work, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "tls_server_sni_maps with TLS off: neither the table nor its chain files (private keys) are granted, and the start needs them not",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("snioff");
    try {
      const table = join(work, "sni");
      const chain = join(work, "sni-chain.pem");
      await Deno.writeTextFile(table, `mail.example.net ${chain}\n`);
      await Deno.writeTextFile(chain, "not read with TLS off\n");
      const { configFile } = await writeConfig(
        work,
        `smtpd_tls_security_level = "none"\ntls_server_sni_maps = ["texthash:${table}"]`,
      );
      const flags = await flagsForArgs(["serve", "-c", configFile], ROOT);
      const read = flags.find((f) => f.startsWith("--allow-read="))?.split(/[=,]/) ?? [];
      assert.ok(!read.includes(chain), flags.join("\n"));
      assert.ok(!read.includes(table), flags.join("\n"));
      const d = await startDaemon(
        `smtpd_tls_security_level = "none"\ntls_server_sni_maps = ["texthash:${table}"]`,
        { dir: work },
      );
      try {
        const r = await swaks(d.port, ["--to", "postmaster@mx.test.example"], {
          timeoutMs: 30_000,
        });
        assert.match(r.stdout, /250 2\.0\.0 Ok: queued as/);
      } finally {
        await d.stop();
      }
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});
