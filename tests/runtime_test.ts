/**
 * The runtime is built once and checked as it is built: `smtpd config
 * --check` reports every error `smtpd serve` reports at start, with file
 * and line, and nothing is read twice (the STARTTLS certificate).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  canTrace,
  makeWorkDir,
  RawClient,
  ROOT,
  run,
  runStdin,
  smtpdArgs,
  startDaemon,
  tlsCertConfig,
  writeConfig,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

// Before, only the listener compiled smtpd_client_event_limit_exceptions:
// `config --check` said "configuration OK" and `serve` refused to start
// with "cannot listen: ..." and no file or line.
Deno.test({
  name:
    "a bad smtpd_client_event_limit_exceptions: config --check and serve both refuse, file:line",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("runtime");
    const { configFile } = await writeConfig(
      work,
      'smtpd_client_event_limit_exceptions = ["127.0.0.1", "10.0.0.0/99"]',
    );
    // writeConfig puts its four base lines first: the parameter is on line 5.
    const want = new RegExp(
      `${configFile.replaceAll(".", "\\.")}:5: smtpd_client_event_limit_exceptions: ` +
        `cannot parse network "10\\.0\\.0\\.0/99"`,
    );
    const check = await run(
      Deno.execPath(),
      await smtpdArgs(["config", "--check", "-c", configFile]),
    );
    assert.equal(check.code, 1, check.stdout + check.stderr);
    assert.match(check.stderr, want);
    assert.doesNotMatch(check.stdout, /configuration OK/);
    const serve = await run(Deno.execPath(), await smtpdArgs(["serve", "-c", configFile]), {
      timeoutMs: 20_000,
    });
    assert.equal(serve.code, 1, serve.stderr);
    assert.match(serve.stderr, want);
    assert.doesNotMatch(serve.stderr, /daemon started/);
  },
});

// Before, a message_size_limit whose 1.5 messages no disk holds was taken:
// the daemon started, then answered every MAIL with 452 4.3.1.
Deno.test({
  name: "a message_size_limit the queue file system can never make room for: refused, file:line",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("runtime-size");
    // 1.5 x 10^15 bytes (1.5 PB): more than any file system holds.
    const { configFile, queueDir } = await writeConfig(
      work,
      "message_size_limit = 1000000000000000",
    );
    // An installed server's queue directory (before the first start there
    // is none to measure).
    await Deno.mkdir(queueDir);
    const want = new RegExp(
      `${configFile.replaceAll(".", "\\.")}:5: message_size_limit: MAIL needs room for 1\\.5 ` +
        "messages of message_size_limit \\(1500000000000000 bytes\\), more than the queue file " +
        "system of .* holds \\(\\d+ bytes\\): every MAIL would get 452 4\\.3\\.1",
    );
    try {
      const check = await run(
        Deno.execPath(),
        await smtpdArgs(["config", "--check", "-c", configFile]),
      );
      assert.equal(check.code, 1, check.stdout + check.stderr);
      assert.match(check.stderr, want);
      const serve = await run(Deno.execPath(), await smtpdArgs(["serve", "-c", configFile]), {
        timeoutMs: 20_000,
      });
      assert.equal(serve.code, 1, serve.stderr);
      assert.match(serve.stderr, want);
      assert.doesNotMatch(serve.stderr, /daemon started/);
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

// Before, the check was skipped on a fresh install (no queue directory yet
// to measure): the first start came up and answered every MAIL with 452.
// The queue directory's nearest existing parent is measured instead (as
// `deno task start` runs the program, -A; the exact flags of a compiled
// build let it read only the queue directory itself).
Deno.test({
  name:
    "a message_size_limit no disk holds, before the first start made queue_directory: refused, file:line, nothing made",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("runtime-fresh");
    const { configFile, queueDir } = await writeConfig(
      work,
      'queue_directory = "VAR/fresh/spool"\nmessage_size_limit = 1000000000000000'.replace(
        "VAR",
        work.slice(ROOT.length),
      ),
    );
    const want = new RegExp(
      `${configFile.replaceAll(".", "\\.")}:5: message_size_limit: MAIL needs room for 1\\.5 ` +
        "messages of message_size_limit \\(1500000000000000 bytes\\), more than the queue file " +
        "system of .*fresh/spool holds \\(\\d+ bytes\\): every MAIL would get 452 4\\.3\\.1",
    );
    try {
      for (const command of [["config", "--check"], ["serve"]]) {
        const r = await run(
          Deno.execPath(),
          ["run", "-A", "mod.ts", ...command, "-c", configFile],
          {
            timeoutMs: 20_000,
          },
        );
        assert.equal(r.code, 1, `${command.join(" ")}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, want, `${command.join(" ")}: ${r.stderr}`);
        assert.doesNotMatch(r.stderr, /daemon started/);
      }
      await assert.rejects(Deno.stat(join(work, "fresh")), Deno.errors.NotFound);
      assert.ok(queueDir.endsWith("fresh/spool"), queueDir);
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

// Before, a typo in smtpd_discard_ehlo_keywords ("pipelinig") was ignored
// without a word, and the keyword stayed offered.
Deno.test({
  name: "an unknown smtpd_discard_ehlo_keywords name: config --check warns, file:line",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("runtime-ehlo");
    const { configFile } = await writeConfig(
      work,
      'smtpd_discard_ehlo_keywords = ["etrn", "pipelinig"]',
    );
    const want = new RegExp(
      `warning: ${configFile.replaceAll(".", "\\.")}:5: smtpd_discard_ehlo_keywords: ` +
        `"pipelinig" is no EHLO keyword this server knows, ignored`,
    );
    try {
      const check = await run(
        Deno.execPath(),
        await smtpdArgs(["config", "--check", "-c", configFile]),
      );
      assert.equal(check.code, 0, check.stdout + check.stderr);
      assert.match(check.stderr, want);
      assert.doesNotMatch(check.stderr, /"etrn"/);
      // The summary counts it: it is logged as the runtime is built, not by the audit.
      assert.match(check.stdout, /configuration OK \(1 warnings\)/);
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

// Before, app.ts built the STARTTLS context to check the files, threw it
// away, and built it again for the listener: two reads of each file.
Deno.test({
  name: "serve reads the STARTTLS certificate and key once (strace)",
  ignore: !(await canTrace()),
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("runtime-tls");
    // A port already taken: serve builds its runtime, then cannot listen and exits.
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const port = (taken.addr as Deno.NetAddr).port;
      const { configFile } = await writeConfig(
        work,
        `smtpd_listen = ["127.0.0.1:${port}"]\n${await tlsCertConfig(work, "may")}`,
      );
      const trace = join(work, "strace.out");
      const r = await run(
        "strace",
        [
          "-f",
          "-qq",
          "-e",
          "trace=openat,open",
          "-o",
          trace,
          Deno.execPath(),
          ...await smtpdArgs(["serve", "-c", configFile]),
        ],
        { timeoutMs: 30_000 },
      );
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /cannot listen/);
      const lines = (await Deno.readTextFile(trace)).split("\n")
        .filter((l) => !l.includes("resumed>"));
      const opens = (name: string) => lines.filter((l) => l.includes(`/${name}"`)).length;
      assert.equal(opens("cert.pem"), 1, "the certificate is read once");
      assert.equal(opens("key.pem"), 1, "the key is read once");
    } finally {
      taken.close();
    }
  },
});

// Before, the line said only "cannot listen: Address already in use": with
// several smtpd_listen addresses the operator could not tell which one; then
// it named the address, but not the file and line that set it.
Deno.test({
  name: "serve on a port already in use: one line naming the address, exit 1",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("runtime-inuse");
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const port = (taken.addr as Deno.NetAddr).port;
      const { configFile } = await writeConfig(work, `smtpd_listen = ["127.0.0.1:${port}"]`);
      const r = await run(Deno.execPath(), await smtpdArgs(["serve", "-c", configFile]), {
        timeoutMs: 20_000,
      });
      assert.equal(r.code, 1, r.stderr);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      // With the parameter's file and line (before: none).
      assert.match(
        lines[0] ?? "",
        new RegExp(
          `error: ${configFile.replaceAll(".", "\\.")}:4: smtpd_listen: ` +
            `cannot listen on 127\\.0\\.0\\.1:${port}: Address already in use`,
        ),
      );
      // The TLS engine's port, the same way.
      const engine = await writeConfig(
        work,
        `${await tlsCertConfig(work, "may")}\nsmtpd_listen_threads = 1\n` +
          `smtpd_tls_loopback_listen = "127.0.0.1:${port}"`,
      );
      const e = await run(Deno.execPath(), await smtpdArgs(["serve", "-c", engine.configFile]), {
        timeoutMs: 20_000,
      });
      assert.equal(e.code, 1, e.stderr);
      const line = (await Deno.readTextFile(engine.configFile)).split("\n")
        .findIndex((l) => l.startsWith("smtpd_tls_loopback_listen")) + 1;
      assert.match(
        e.stderr,
        new RegExp(
          `error: ${
            engine.configFile.replaceAll(".", "\\.")
          }:${line}: smtpd_tls_loopback_listen: ` +
            `cannot listen on 127\\.0\\.0\\.1:${port}: Address already in use`,
        ),
      );
    } finally {
      taken.close();
      await Deno.remove(work, { recursive: true });
    }
  },
});

// Before, a queue directory that could not be made was reported without
// the file and line that named it ("error: cannot prepare queue directory
// ..."), and a port in use, an open relay or an unknown EHLO keyword set
// with -o was blamed on the file's line that the -o had replaced.
Deno.test({
  name:
    "serve and config --check name the -o that set a value, not the file's line it replaced; a queue that cannot be made, its line",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("runtime-place");
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const port = (taken.addr as Deno.NetAddr).port;
      const notDir = join(work, "file");
      await Deno.writeTextFile(notDir, "");
      const { configFile } = await writeConfig(
        work,
        'smtpd_recipient_restrictions = ["reject_unauth_destination"]\n' +
          'smtpd_discard_ehlo_keywords = ["dsn"]\n' +
          `queue_directory = "${notDir}"`,
      );
      const file = configFile.replaceAll(".", "\\.");
      const serve = async (args: string[]) =>
        run(Deno.execPath(), await smtpdArgs(["serve", "-c", configFile, ...args]), {
          timeoutMs: 20_000,
        });
      const queue = await serve([]);
      assert.equal(queue.code, 1, queue.stderr);
      assert.match(
        queue.stderr,
        new RegExp(`error: ${file}:6: cannot prepare queue directory ".*/file": Not a directory`),
      );
      // config --check stops on it too, at the same line, and makes nothing.
      const checkQueue = await run(
        Deno.execPath(),
        await smtpdArgs(["config", "--check", "-c", configFile]),
      );
      assert.equal(checkQueue.code, 1, checkQueue.stderr);
      assert.match(
        checkQueue.stderr,
        new RegExp(
          `fatal: ${file}:6: cannot prepare queue directory ".*/file": .*is not a directory`,
        ),
      );
      const checkBelow = await run(
        Deno.execPath(),
        await smtpdArgs([
          "config",
          "--check",
          "-c",
          configFile,
          "-o",
          `queue_directory=${notDir}/q`,
        ]),
      );
      assert.equal(checkBelow.code, 1, checkBelow.stderr);
      assert.match(
        checkBelow.stderr,
        new RegExp(
          `fatal: -o queue_directory=${notDir}/q: cannot prepare queue directory .*not a directory`,
        ),
      );
      const good = `queue_directory=${join(work, "spool")}`;
      const queueSet = await serve(["-o", `queue_directory=${notDir}/q`]);
      assert.match(
        queueSet.stderr,
        new RegExp(`error: -o queue_directory=${notDir}/q: cannot prepare queue directory`),
      );
      const listen = await serve(["-o", good, "-o", `smtpd_listen=127.0.0.1:${port}`]);
      assert.equal(listen.code, 1, listen.stderr);
      assert.match(
        listen.stderr,
        new RegExp(
          `error: -o smtpd_listen=127\\.0\\.0\\.1:${port}: smtpd_listen: cannot listen on ` +
            `127\\.0\\.0\\.1:${port}: Address already in use`,
        ),
      );
      const check = await run(
        Deno.execPath(),
        await smtpdArgs([
          "config",
          "--check",
          "-c",
          configFile,
          "-o",
          good,
          "-o",
          "smtpd_recipient_restrictions=permit",
          "-o",
          "smtpd_discard_ehlo_keywords=dns",
        ]),
      );
      assert.equal(check.code, 0, check.stderr);
      assert.match(
        check.stderr,
        /warning: -o smtpd_recipient_restrictions=permit: smtpd_recipient_restrictions: untrusted clients may relay/,
      );
      assert.match(
        check.stderr,
        /warning: -o smtpd_discard_ehlo_keywords=dns: smtpd_discard_ehlo_keywords: "dns" is no EHLO keyword/,
      );
      assert.doesNotMatch(check.stderr, new RegExp(`${file}:[45]:`));
    } finally {
      taken.close();
      await Deno.remove(work, { recursive: true });
    }
  },
});

// Before, a file saved as Latin-1 was read with U+FFFD in place of the
// byte: "configuration OK", and the banner said "caf\uFFFD".
Deno.test({
  name: "config --check and serve refuse a configuration file that is not UTF-8, at its line",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("runtime-latin1");
    try {
      const { configFile } = await writeConfig(work, 'smtpd_banner = "caf"');
      const path = join(ROOT, configFile);
      const text = await Deno.readTextFile(path);
      const at = text.indexOf('caf"') + 3;
      const bytes = new TextEncoder().encode(text);
      await Deno.writeFile(
        path,
        new Uint8Array([...bytes.subarray(0, at), 0xe9, ...bytes.subarray(at)]),
      );
      for (const command of [["config", "--check"], ["serve"]]) {
        const r = await run(Deno.execPath(), await smtpdArgs([...command, "-c", configFile]), {
          timeoutMs: 20_000,
        });
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(
          r.stderr,
          new RegExp(
            `fatal: ${configFile.replaceAll(".", "\\.")}:5: not UTF-8 \\(a TOML file is UTF-8`,
          ),
        );
        assert.doesNotMatch(r.stdout + r.stderr, /configuration OK|daemon started/);
      }
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

// Before, TOML's escapes put line ends into text values that Postfix's
// one-line main.cf cannot hold: mail_name = "x\r\nX-Injected: 1" was
// taken, and each queue file's Received: header was cut in two, the second
// line a header of its own; myhostname = "mx\r\nx.example" gave an EHLO
// line "250-x.example". Postfix also refuses a myhostname or mydomain that
// is no host name.
Deno.test({
  name:
    "stdin and config --check refuse a text value with a line end, and a myhostname that is no host name, at its line",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("runtime-oneline");
    try {
      const cases: [string, RegExp][] = [
        [
          'mail_name = "x\\r\\nX-Injected: 1"',
          /:5: mail_name: control character U\+000D in the text/,
        ],
        ['smtpd_banner = "a\\n250 b"', /:5: smtpd_banner: control character U\+000A in the text/],
        // writeConfig leaves its own myhostname line out: this one is line 4.
        ['myhostname = "mx example.com"', /:4: myhostname: bad parameter value "mx example\.com"/],
        [
          'mydomain = "example..com"',
          /:5: mydomain: bad parameter value "example\.\.com": misplaced dot/,
        ],
      ];
      for (const [line, want] of cases) {
        const { configFile, queueDir } = await writeConfig(work, line);
        const check = await run(
          Deno.execPath(),
          await smtpdArgs(["config", "--check", "-c", configFile]),
        );
        assert.equal(check.code, 1, `${line}: ${check.stdout}${check.stderr}`);
        assert.match(check.stderr, want);
        const session = await runStdin(
          configFile,
          "HELO me\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@mx.test.example>\r\nDATA\r\n" +
            "Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n",
        );
        assert.equal(session.code, 1, `${line}: ${session.stdout}${session.stderr}`);
        assert.match(session.stderr, want);
        assert.doesNotMatch(session.stdout, /^220/m);
        assert.deepEqual(await Array.fromAsync(Deno.readDir(queueDir)).catch(() => []), []);
      }
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

// Before, a FIFO named as a certificate, a /file of a list or an SNI
// chain kept config --check and the start reading for ever.
Deno.test({
  name:
    "config --check refuses a FIFO named as a certificate, a list file or an SNI chain, at once",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("runtime-fifo");
    try {
      const tls = await tlsCertConfig(work, "may");
      const cert = /^smtpd_tls_cert_file = "([^"]+)"/m.exec(tls)?.[1] as string;
      const fifo = join(work, "fifo");
      const networks = join(work, "networks");
      const sni = join(work, "sni");
      await Deno.writeTextFile(networks, "127.0.0.0/8\n");
      await Deno.writeTextFile(sni, `mx.test.example ${fifo}\n`);
      await Deno.writeTextFile(fifo, "");
      const cases: [string, string, RegExp][] = [
        [
          "certificate",
          tls.replace(cert, fifo),
          /smtpd_tls_cert_file: cannot read ".*\/fifo": a FIFO, not a regular file/,
        ],
        [
          "list file",
          `mynetworks = ["${fifo}"]`,
          /mynetworks: cannot read ".*\/fifo": a FIFO, not a regular file/,
        ],
        [
          "SNI chain",
          `${tls}\ntls_server_sni_maps = ["texthash:${sni}"]`,
          /tls_server_sni_maps: .*\/sni:1: mx\.test\.example: cannot read ".*\/fifo": a FIFO, not a regular file/,
        ],
      ];
      for (const [what, extra, want] of cases) {
        await Deno.remove(fifo).catch(() => {});
        await Deno.writeTextFile(fifo, "");
        const { configFile } = await writeConfig(work, extra);
        // The flags while it is a regular file: the derivation reads it too.
        const args = await smtpdArgs(["config", "--check", "-c", configFile]);
        await Deno.remove(fifo);
        assert.ok((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success);
        const r = await run(Deno.execPath(), args, { timeoutMs: 20_000 });
        assert.equal(r.code, 1, `${what}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, want, what);
      }
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});

// Before, an error at start that was no ConfigError was thrown on, reached
// the handler of unhandled rejections and the process exited 0: a service
// manager took the failed start for a clean stop (Restart=on-failure did
// not restart it). Seen with a systemd unit that forbade AF_NETLINK.
Deno.test({
  name:
    "an error no check foresees, at start or while a command runs, exits 1 with a fatal line, not 0",
  ...opts,
  fn: async () => {
    const work = await makeWorkDir("runtime-fault");
    const { configFile } = await writeConfig(work, "");
    const fault = join(import.meta.dirname ?? ".", "_start_fault.ts");
    const start = await run(
      Deno.execPath(),
      ["run", "-A", fault, "querySync", "serve", "-c", configFile],
      { timeoutMs: 20_000 },
    );
    assert.equal(start.code, 1, start.stderr);
    assert.match(start.stderr, /fatal: cannot start: permission query refused \(test\)/);
    // A command's output that cannot be written (as \`smtpd config\` into a
    // pipe whose reader has gone).
    const print = await run(
      Deno.execPath(),
      ["run", "-A", fault, "stdout", "config", "-c", configFile],
      { timeoutMs: 20_000 },
    );
    assert.equal(print.code, 1, print.stdout + print.stderr);
    assert.match(print.stderr, /fatal: output refused \(test\)/);
  },
});

// deno run opens its debugger at SIGUSR1; --quiet (a runtime flag) hides
// the runtime's "Debugger listening on ws://127.0.0.1:9229/..." line, so an
// open debugger left no trace in the log.
Deno.test({
  name: "SIGUSR1 is said in the log (the runtime's own debugger line is hidden by --quiet)",
  ...opts,
  fn: async () => {
    // Port 9229 held here, so that the debugger the signal asks for cannot
    // open on this shared host (held by another process, it cannot either).
    let held: Deno.Listener | undefined;
    try {
      held = Deno.listen({ hostname: "127.0.0.1", port: 9229 });
    } catch { /* in use */ }
    const d = await startDaemon();
    let c: RawClient | undefined;
    try {
      Deno.kill(d.pid, "SIGUSR1");
      await d.waitForLog(
        /postfix\/smtpd\[\d+\]: warning: received SIGUSR1: under deno run, the runtime opens its debugger on 127\.0\.0\.1:9229/,
        10000,
      );
      // And the daemon serves on.
      c = await RawClient.connect(d.port);
      assert.match(await c.reply(), /^220 /);
    } finally {
      c?.close();
      await d.stop();
      held?.close();
    }
  },
});
