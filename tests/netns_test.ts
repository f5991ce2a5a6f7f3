/**
 * A production layout, end to end, in a network namespace the test creates
 * (addresses from 192.0.2.0/24, which exist only inside it):
 *
 *   192.0.2.25:25  our server, as root with mail_owner = postfix, started
 *                  with exactly the flags `smtpd permissions` prints inside
 *                  the namespace; its queue is the queue of
 *   (no address)   a stock Postfix (Debian package, private configuration
 *                  directory) whose local(8) delivers to a mailbox file
 *   192.0.2.53:53  dnsmasq, named by the namespace's /etc/resolv.conf (which
 *                  `ip netns exec` bind-mounts): dns_server is empty, so every
 *                  lookup takes the system resolver path
 *   192.0.2.10     a client outside mynetworks
 *   192.0.2.66     a client listed in the DNSBL bl.test.example
 *
 * swaks delivers to a local user (the mailbox has it), a relay attempt is
 * refused, the DNSBL-listed client is refused, STARTTLS works. Namespace,
 * its /etc/netns directory and every process are removed in `finally`, and
 * leftovers of a killed run are removed at the next start. Needs root.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { makeTestCert, makeWorkDir, readOrEmpty, ROOT, run, sh, waitFor } from "./_harness.ts";
import { makePostfixDirs, POSTFIX_LOCAL_MASTER_CF, postfixLocalMainCf } from "./_postfix.ts";

const NS = `smtpd-test-${Deno.pid}`;
const have = async (cmd: string) => (await run("sh", ["-c", `command -v ${cmd}`])).code === 0;
const tools = ["ip", "postfix", "dnsmasq", "swaks", "openssl"];
const missing = [];
for (const t of tools) if (!await have(t)) missing.push(t);
const skipWhy = Deno.uid() !== 0
  ? "needs root (network namespaces, port 25, Postfix)"
  : missing.length
  ? `needs ${missing.join(", ")}`
  : undefined;
if (skipWhy) {
  // deno-lint-ignore no-console
  console.log(`netns_test.ts skipped: ${skipWhy}`);
}

/** Runs a command inside the namespace. */
function inNs(cmd: string, args: string[], timeoutMs = 60000) {
  return run("ip", ["netns", "exec", NS, cmd, ...args], { timeoutMs });
}

/** Removes namespaces a killed run of this test left (their process is gone). */
async function removeStale(): Promise<void> {
  const list = await run("ip", ["netns", "list"]);
  for (const line of list.stdout.split("\n")) {
    const m = /^(smtpd-test-(\d+))\b/.exec(line);
    if (!m || (await Deno.stat(`/proc/${m[2]}`).then(() => true, () => false))) continue;
    await removeNamespace(m[1] as string);
  }
}

async function removeNamespace(name: string): Promise<void> {
  // Processes still inside (a server, dnsmasq, Postfix), each by its PID.
  const pids = await run("ip", ["netns", "pids", name]);
  for (const pid of pids.stdout.split("\n").filter((p) => /^\d+$/.test(p))) {
    try {
      Deno.kill(Number(pid), "SIGKILL");
    } catch { /* gone */ }
  }
  await run("ip", ["netns", "del", name]);
  await Deno.remove(`/etc/netns/${name}`, { recursive: true }).catch(() => {});
  await Deno.remove("/etc/netns").catch(() => {}); // only when empty
}

/** A long-running process inside the namespace, its stderr collected. */
function spawnInNs(cmd: string, args: string[]): { child: Deno.ChildProcess; log: () => string } {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", NS, cmd, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stderr) text += dec.decode(chunk, { stream: true });
  })().catch(() => {});
  return { child, log: () => text };
}

async function stop(p: { child: Deno.ChildProcess } | undefined): Promise<void> {
  if (!p) return;
  try {
    p.child.kill("SIGTERM");
  } catch { /* gone */ }
  const timer = setTimeout(() => {
    try {
      p.child.kill("SIGKILL");
    } catch { /* gone */ }
  }, 5000);
  await p.child.status;
  clearTimeout(timer);
}

function swaks(from: string, args: string[]) {
  return inNs("swaks", [
    "--server",
    "192.0.2.25:25",
    "--local-interface",
    from,
    "--from",
    "sender@example.org",
    "--timeout",
    "20",
    ...args,
  ]);
}

Deno.test({
  name: "a production layout in a network namespace: delivery, relay and DNSBL refusals, STARTTLS",
  ignore: skipWhy !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    await removeStale();
    const dir = await makeWorkDir("netns");
    let dnsmasq: ReturnType<typeof spawnInNs> | undefined;
    let server: ReturnType<typeof spawnInNs> | undefined;
    let postfixUp = false;
    const conf = join(dir, "postfix");
    try {
      // The network: the documentation addresses, on the namespace's own loopback.
      await sh(`ip netns add ${NS}`);
      await sh(`ip -n ${NS} link set lo up`);
      for (const a of ["25", "53", "10", "66"]) {
        await sh(`ip -n ${NS} addr add 192.0.2.${a}/24 dev lo`);
      }
      // The namespace's /etc/resolv.conf (ip netns exec bind-mounts it).
      await Deno.mkdir(`/etc/netns/${NS}`, { recursive: true });
      await Deno.writeTextFile(
        `/etc/netns/${NS}/resolv.conf`,
        "nameserver 192.0.2.53\noptions timeout:1 attempts:1\n",
      );
      assert.match((await inNs("cat", ["/etc/resolv.conf"])).stdout, /^nameserver 192\.0\.2\.53$/m);

      dnsmasq = spawnInNs("dnsmasq", [
        "--no-daemon",
        "--port=53",
        "--listen-address=192.0.2.53",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--conf-file=/dev/null",
        "--local=/#/",
        "--user=root",
        "--log-queries",
        "--log-facility=-",
        // RFC 5782 test entry, and the listed client.
        "--host-record=2.0.0.127.bl.test.example,127.0.0.2",
        "--host-record=66.2.0.192.bl.test.example,127.0.0.2",
        "--txt-record=66.2.0.192.bl.test.example,listed for testing",
        "--ptr-record=10.2.0.192.in-addr.arpa,client.test.example",
        "--host-record=client.test.example,192.0.2.10",
      ]);

      // Postfix: private configuration, queue, mailbox spool under dir.
      await makePostfixDirs(dir, { conf, mail: "mail", mailMode: "1777" });
      await Deno.writeTextFile(join(conf, "main.cf"), postfixLocalMainCf(dir, "netns"));
      await Deno.writeTextFile(join(conf, "master.cf"), POSTFIX_LOCAL_MASTER_CF);
      const check = await inNs("postfix", ["-c", conf, "check"]);
      assert.equal(check.code, 0, check.stderr);
      const start = await inNs("postfix", ["-c", conf, "start"]);
      assert.equal(start.code, 0, start.stderr);
      postfixUp = true;

      // Our server: TLS certificate, access table, configuration with absolute paths.
      const tls = await makeTestCert(dir);
      const access = join(dir, "access");
      await Deno.writeTextFile(access, "# clients refused by name or address\n192.0.2.99 REJECT\n");
      const configFile = join(dir, "smtpd.toml");
      await Deno.writeTextFile(
        configFile,
        [
          `queue_directory = "${dir}/queue"`,
          `smtpd_listen = ["192.0.2.25:25"]`,
          `myhostname = "mx.test.example"`,
          `mydestination = ["mx.test.example"]`,
          `mynetworks = ["127.0.0.0/8"]`,
          `mail_owner = "postfix"`,
          `smtpd_error_sleep_time = 0`,
          `dns_timeout = 3`,
          `smtpd_client_restrictions = ["reject_rbl_client", "bl.test.example"]`,
          `smtpd_recipient_restrictions = ["permit_mynetworks", "reject_unauth_destination", ` +
          `"check_client_access", "texthash:${access}"]`,
          `smtpd_tls_security_level = "may"`,
          `smtpd_tls_cert_file = "${tls.cert}"`,
          `smtpd_tls_key_file = "${tls.key}"`,
        ].join("\n") + "\n",
      );

      // The flags, from `smtpd permissions` inside the namespace.
      const perms = await inNs(Deno.execPath(), [
        "task",
        "-q",
        "smtpd",
        "permissions",
        "-c",
        configFile,
      ]);
      assert.equal(perms.code, 0, perms.stderr);
      const flags = perms.stdout.trim().split("\n");
      // deno-lint-ignore no-console
      console.log(`smtpd permissions inside the namespace:\n${perms.stdout}`);
      const net = flags.find((f) => f.startsWith("--allow-net=")) ?? "";
      assert.match(net, /^--allow-net=192\.0\.2\.25:25,192\.0\.2\.53:53,unix:/);
      const read = flags.find((f) => f.startsWith("--allow-read=")) ?? "";
      for (const p of [configFile, access, tls.cert, "/etc/passwd", "/etc/resolv.conf"]) {
        assert.ok(read.split(/[=,]/).includes(p), `${p} in ${read}`);
      }

      server = spawnInNs(Deno.execPath(), ["run", ...flags, "mod.ts", "serve", "-c", configFile]);
      await waitFor("our server", () => Promise.resolve(server!.log().includes("listening on")));
      await waitFor("dnsmasq", () => Promise.resolve(dnsmasq!.log().includes("started")));

      await t.step("config --check says the system resolver answers", async () => {
        const r = await inNs(Deno.execPath(), [
          "run",
          ...flags,
          "mod.ts",
          "config",
          "--check",
          "-c",
          configFile,
        ]);
        // deno-lint-ignore no-console
        console.log(r.stdout + r.stderr);
        assert.equal(r.code, 0, r.stderr);
        assert.match(
          r.stdout,
          /^DNS: the system resolver \(192\.0\.2\.53:53\) answers \(2\.0\.0\.127\.bl\.test\.example A\)$/m,
        );
      });

      await t.step("swaks delivers to a local user; the mailbox has it", async () => {
        const r = await swaks("192.0.2.10", [
          "--to",
          "nobody@mx.test.example",
          "--header",
          "Subject: netns delivery",
          "--body",
          "delivered through the namespace",
        ]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const id = /<[-~] +250 2\.0\.0 Ok: queued as (\w+)/.exec(r.stdout)?.[1];
        assert.ok(id, r.stdout);
        const box = join(dir, "mail", "nobody");
        await waitFor(
          "the mailbox",
          async () => (await readOrEmpty(box)).includes("netns delivery"),
        );
        const text = await Deno.readTextFile(box);
        // deno-lint-ignore no-console
        console.log(`mailbox ${box.slice(dir.length + 1)}:\n${text}`);
        assert.match(text, /^Subject: netns delivery$/m);
        assert.match(text, /^delivered through the namespace$/m);
        assert.match(
          text,
          new RegExp(
            `^Received: from \\S+ \\(client\\.test\\.example \\[192\\.0\\.2\\.10\\]\\)\\n` +
              `\\tby mx\\.test\\.example \\(deno-smtpd\\) with ESMTP id ${id}$`,
            "m",
          ),
        );
      });

      await t.step("a relay attempt is refused", async () => {
        const r = await swaks("192.0.2.10", ["--to", "someone@elsewhere.example"]);
        // deno-lint-ignore no-console
        console.log(r.stdout.split("\n").filter((l) => /RCPT TO|<\*\* /.test(l)).join("\n"));
        assert.match(
          r.stdout,
          /<\*\* 554 5\.7\.1 <someone@elsewhere\.example>: Relay access denied/,
        );
      });

      await t.step("a DNSBL-listed client is refused through the system resolver", async () => {
        const r = await swaks("192.0.2.66", ["--to", "nobody@mx.test.example"]);
        // deno-lint-ignore no-console
        console.log(r.stdout.split("\n").filter((l) => /RCPT TO|<\*\* /.test(l)).join("\n"));
        assert.match(
          r.stdout,
          /<\*\* 554 5\.7\.1 Service unavailable; Client host \[192\.0\.2\.66\] blocked using bl\.test\.example/,
        );
        // The answer came from dnsmasq, found through the namespace's resolv.conf.
        assert.match(
          dnsmasq!.log(),
          /query\[A\] 66\.2\.0\.192\.bl\.test\.example from 192\.0\.2\.25/,
        );
      });

      await t.step("STARTTLS works", async () => {
        const r = await swaks("192.0.2.10", [
          "--tls",
          "--to",
          "nobody@mx.test.example",
          "--header",
          "Subject: netns over TLS",
        ]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /<~ +250 2\.0\.0 Ok: queued as \w+/);
        const box = join(dir, "mail", "nobody");
        await waitFor(
          "the TLS message in the mailbox",
          async () => (await readOrEmpty(box)).includes("netns over TLS"),
        );
        // RFC 3848's "ESMTPS": the message came over TLS (the cipher comment is
        // smtpd_tls_received_header's, off by default as in Postfix).
        assert.match(await Deno.readTextFile(box), /with ESMTPS id /);
      });

      await t.step(
        "with the name server gone, the listed client is never refused with 5xx (as Postfix, the list counts as not listed)",
        async () => {
          await stop(dnsmasq);
          dnsmasq = undefined;
          const r = await swaks("192.0.2.66", ["--to", "nobody@mx.test.example"]);
          // deno-lint-ignore no-console
          console.log(r.stdout.split("\n").filter((l) => /RCPT TO|<\*\* /.test(l)).join("\n"));
          assert.doesNotMatch(r.stdout, /<\*\* 5\d\d /);
          await waitFor(
            "the logged lookup error",
            () =>
              Promise.resolve(
                /66\.2\.0\.192\.bl\.test\.example: RBL lookup error/.test(server!.log()),
              ),
          );
        },
      );

      // The access table changes, SIGHUP goes to the server's PID, and the
      // next session from 192.0.2.10 is refused by the new entry.
      await t.step(
        "kill -HUP with a changed access table changes the next session's answer",
        async () => {
          await Deno.writeTextFile(access, "192.0.2.10 REJECT Changed by the reload test\n");
          Deno.kill(server!.child.pid, "SIGHUP");
          await waitFor(
            "the reload",
            () => Promise.resolve(/reload: configuration and tables re-read/.test(server!.log())),
          );
          const r = await swaks("192.0.2.10", ["--to", "nobody@mx.test.example"]);
          // deno-lint-ignore no-console
          console.log(r.stdout.split("\n").filter((l) => /RCPT TO|<\*\* /.test(l)).join("\n"));
          assert.match(r.stdout, /<\*\* 554 5\.7\.1 .*Changed by the reload test/);
        },
      );
      // deno-lint-ignore no-console
      console.log(`server log:\n${server.log()}`);
    } finally {
      await stop(server);
      if (postfixUp) await inNs("postfix", ["-c", conf, "stop"]).catch(() => {});
      await stop(dnsmasq);
      await removeNamespace(NS);
    }
  },
});
