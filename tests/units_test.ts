/**
 * The service files in config/ are checked: `systemd-analyze verify` on the
 * daemon unit and the socket pair (in a private root with stand-in
 * binaries, so nothing is installed), and every command line in them and in
 * config/inetd.conf is one the program accepts: run against a test
 * configuration with the real program and the flags derived from it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  makeWorkDir,
  ROOT,
  run,
  smtpdArgs,
  spawnLogged,
  swaks,
  swaksRcptReply,
  tlsCertConfig,
  writeConfig,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const UNITS = ["smtpd.service", "smtpd.socket", "smtpd@.service"];
const hasAnalyze = (await run("sh", ["-c", "command -v systemd-analyze"])).code === 0;
const SYSTEM_UNITS = "/usr/lib/systemd/system";

/** systemd-analyze verify in a private root that holds the units and a stand-in binary. */
async function verify(units: Record<string, string>): Promise<{ code: number; output: string }> {
  const root = await makeWorkDir("units");
  await Deno.mkdir(join(root, "usr/local/bin"), { recursive: true });
  await Deno.writeTextFile(join(root, "usr/local/bin/smtpd"), "#!/bin/sh\n", { mode: 0o755 });
  // ExecReload's kill(1), as every system has it.
  await Deno.mkdir(join(root, "bin"), { recursive: true });
  await Deno.writeTextFile(join(root, "bin/kill"), "#!/bin/sh\n", { mode: 0o755 });
  await Deno.mkdir(join(root, "etc/systemd/system"), { recursive: true });
  // The targets and slices the units refer to, from the system's own set.
  await Deno.mkdir(join(root, "usr/lib/systemd"), { recursive: true });
  const cp = await run("cp", ["-r", SYSTEM_UNITS, join(root, "usr/lib/systemd/")]);
  assert.equal(cp.code, 0, cp.stderr);
  for (const [name, text] of Object.entries(units)) {
    await Deno.writeTextFile(join(root, "etc/systemd/system", name), text);
  }
  const r = await run("systemd-analyze", [
    "verify",
    "--man=no",
    `--root=${root}`,
    ...Object.keys(units).map((u) => u.replace("@.", "@1.")),
  ]);
  return { code: r.code, output: (r.stdout + r.stderr).trim() };
}

const unitText = async () =>
  Object.fromEntries(
    await Promise.all(
      UNITS.map(async (u) => [u, await Deno.readTextFile(join(ROOT, "config", u))] as const),
    ),
  );

Deno.test({
  name: "systemd-analyze verify finds nothing to say about smtpd.service and the socket pair",
  ignore: !hasAnalyze,
  ...opts,
  fn: async () => {
    const units = await unitText();
    // systemctl reload: SIGHUP to the daemon (tests/reload_test.ts).
    assert.match(units["smtpd.service"] as string, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    const ok = await verify(units);
    assert.equal(ok.output, "");
    assert.equal(ok.code, 0);
    // The check can fail: a misspelt setting and a missing binary are reported.
    const broken = await verify({
      ...units,
      "smtpd.service": (units["smtpd.service"] as string)
        .replace("ProtectSystem=strict", "ProtectSystem=strictly")
        .replace("ExecStart=/usr/local/bin/smtpd", "ExecStart=/usr/local/bin/smtpd-missing"),
    });
    assert.match(broken.output, /protect system value, ignoring: strictly/);
    assert.match(broken.output, /smtpd-missing/);
  },
});

/** The arguments after the binary in every command line of the service files. */
async function commandLines(): Promise<{ where: string; args: string[] }[]> {
  const out: { where: string; args: string[] }[] = [];
  for (const file of [...UNITS, "inetd.conf"]) {
    const text = await Deno.readTextFile(join(ROOT, "config", file));
    for (const line of text.split("\n")) {
      const m = /\/usr\/local\/bin\/smtpd\s+(?:smtpd\s+)?((?:serve|stdin|config)\b.*)$/.exec(line);
      if (!m) continue;
      out.push({ where: `${file}: ${line.trim()}`, args: (m[1] as string).trim().split(/\s+/) });
    }
    // xinetd's server_args line.
    for (const m of text.matchAll(/server_args\s*=\s*(.*)$/gm)) {
      out.push({ where: `${file}: ${m[0].trim()}`, args: (m[1] as string).trim().split(/\s+/) });
    }
  }
  return out;
}

Deno.test({
  name: "every smtpd command line in the units and inetd.conf runs: config --check, stdin, serve",
  ...opts,
  fn: async () => {
    const lines = await commandLines();
    const seen = new Set(lines.map((l) => l.args[0]));
    for (const verb of ["serve", "stdin", "config"]) {
      assert.ok(seen.has(verb), `${verb} in ${seen}`);
    }
    // A certificate, for the implicit-TLS line (smtpd_tls_wrappermode needs one).
    const work = await makeWorkDir("units");
    const { configFile } = await writeConfig(work, await tlsCertConfig(work, "may"));
    for (const { where, args } of lines) {
      assert.ok(args.includes("/etc/smtpd/smtpd.toml"), where);
      const local = args.map((a) => a === "/etc/smtpd/smtpd.toml" ? configFile : a);
      if (local[0] === "serve") {
        // Starts, then stops on SIGTERM.
        const child = new Deno.Command(Deno.execPath(), {
          args: await smtpdArgs(local),
          cwd: ROOT,
          stdin: "null",
          stdout: "null",
          stderr: "piped",
        }).spawn();
        const reader = child.stderr.getReader();
        let log = "";
        const end = Date.now() + 15000;
        while (!log.includes("daemon started") && Date.now() < end) {
          const { value, done } = await reader.read();
          if (done) break;
          log += new TextDecoder().decode(value);
        }
        child.kill("SIGTERM");
        reader.releaseLock();
        await child.stderr.cancel().catch(() => {});
        assert.equal((await child.status).code, 0, `${where}\n${log}`);
        assert.match(log, /daemon started/, where);
        continue;
      }
      if (local.includes("smtpd_tls_wrappermode=true")) {
        // Implicit TLS (port 465) is for a network client, as under tcpserver:
        // the session starts with the handshake, which plaintext fails.
        const r = await run(Deno.execPath(), await smtpdArgs(local), {
          stdin: "QUIT\r\n",
          env: { TCPREMOTEIP: "127.0.0.1", TCPREMOTEPORT: "4000" },
        });
        assert.equal(r.code, 0, `${where}\n${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /SSL_accept error from unknown\[127\.0\.0\.1\]/, where);
        assert.doesNotMatch(r.stdout, /^221 /m, where);
        continue;
      }
      const r = await run(Deno.execPath(), await smtpdArgs(local), { stdin: "QUIT\r\n" });
      assert.equal(r.code, 0, `${where}\n${r.stdout}${r.stderr}`);
      if (local[0] === "stdin") assert.match(r.stdout, /^221 /m, where);
      else assert.match(r.stdout, /configuration OK/, where);
    }
  },
});

/** The address families a unit's RestrictAddressFamilies= lets through. */
function allowedFamilies(unit: string): string[] {
  const m = /^RestrictAddressFamilies=(.*)$/m.exec(unit);
  assert.ok(m, "RestrictAddressFamilies= in the unit");
  return (m[1] as string).trim().split(/\s+/);
}

const canFilterFamilies = Deno.build.os === "linux" && Deno.build.arch === "x86_64" &&
  (await run("python3", ["-c", "import ctypes"])).code === 0;

Deno.test({
  name: "the units' RestrictAddressFamilies let mynetworks_style = subnet read the interfaces",
  ignore: !canFilterFamilies,
  ...opts,
  fn: async () => {
    // Deno.networkInterfaces() asks the kernel over an AF_NETLINK socket:
    // a unit that forbids that family stops such a configuration at start.
    const units = await unitText();
    const work = await makeWorkDir("units");
    const { configFile } = await writeConfig(
      work,
      'mynetworks_style = "subnet"\nsmtpd_relay_restrictions = ["permit_mynetworks", "reject"]',
    );
    const filter = join(ROOT, "tests", "_address_families.py");
    const dialog = "EHLO client.example\r\nMAIL FROM:<a@example.org>\r\n" +
      "RCPT TO:<u@elsewhere.example>\r\nQUIT\r\n";

    // Daemon mode, smtpd.service: starts, and relays for the loopback subnet.
    const daemonFamilies = allowedFamilies(units["smtpd.service"] as string).join(",");
    const daemon = spawnLogged("python3", [
      filter,
      daemonFamilies,
      Deno.execPath(),
      ...await smtpdArgs(["serve", "-c", configFile]),
    ]);
    try {
      const listening = await daemon.waitForLog(/listening on 127\.0\.0\.1:(\d+)/, 15000)
        .catch(() => undefined);
      assert.ok(listening, `smtpd.service (${daemonFamilies}):\n${daemon.log()}`);
      const r = await swaks(Number(listening[1]), [
        "--to",
        "u@elsewhere.example",
        "--from",
        "a@example.org",
        "--quit-after",
        "RCPT",
      ]);
      assert.match(swaksRcptReply(r.stdout), /^<- {2}250 2\.1\.5/, r.stdout);
    } finally {
      await daemon.stop();
    }

    // Stand-alone mode, smtpd@.service: one session for a network client.
    const sessionFamilies = allowedFamilies(units["smtpd@.service"] as string).join(",");
    const session = await run("python3", [
      filter,
      sessionFamilies,
      Deno.execPath(),
      ...await smtpdArgs(["stdin", "-c", configFile]),
    ], { stdin: dialog, env: { REMOTE_ADDR: "127.0.0.1", REMOTE_PORT: "4000" } });
    assert.match(
      session.stdout,
      /^250 2\.1\.5 /m,
      `smtpd@.service (${sessionFamilies}):\n${session.stdout}${session.stderr}`,
    );

    // Without AF_NETLINK the start stops with file and line, and exit status 1.
    const refused = await run("python3", [
      filter,
      "AF_UNIX,AF_INET,AF_INET6",
      Deno.execPath(),
      ...await smtpdArgs(["config", "--check", "-c", configFile]),
    ]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(
      refused.stderr,
      /^smtpd: fatal: \S+smtpd\.toml:\d+: mynetworks_style = "subnet": cannot list this host's network interfaces: .*AF_NETLINK/m,
    );
  },
});
