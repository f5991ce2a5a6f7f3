/**
 * The TLS engine (smtpd_tls_loopback_listen, src/transport/tls_engine.ts)
 * end to end: one engine port per listener thread, STARTTLS and wrapper
 * mode through it, TLS 1.2 facts in the log and Received:, the start-up
 * errors it has, and the permissions it derives. The TLS tests of
 * tls_test.ts and stalled_client_test.ts run through the engine too.
 */

import assert from "node:assert/strict";
import {
  assertConfigChecks,
  CONCURRENT_STARTTLS,
  makeTestCert,
  makeWorkDir,
  postcat,
  queueFiles,
  run,
  sh,
  smtpdArgs,
  startDaemon,
  swaks,
  tlsCertConfig,
  waitFor,
  writeConfig,
} from "./_harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A loopback port with the next `n - 1` ports free too. */
function freePorts(n: number): number {
  for (let i = 0; i < 50; i++) {
    const first = 20000 + Math.floor(Math.random() * 10000);
    const held: Deno.Listener[] = [];
    try {
      for (let k = 0; k < n; k++) {
        held.push(Deno.listen({ hostname: "127.0.0.1", port: first + k }));
      }
      return first;
    } catch {
      /* taken: another try */
    } finally {
      for (const l of held) l.close();
    }
  }
  throw new Error("no free run of ports");
}

Deno.test({
  name:
    "2 threads: engine ports P and P+1 listen; 16 concurrent smtplib STARTTLS sessions all encrypt",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("tls-engine");
    const p = freePorts(2);
    const tls = await tlsCertConfig(dir, "may");
    const d = await startDaemon(
      `smtpd_listen_threads = 2\nsmtpd_tls_loopback_listen = "127.0.0.1:${p}"\n${tls}`,
      { dir },
    );
    try {
      await d.waitForLog(/listening on .*\(2 threads\)/);
      const listening = await sh(`ss -Hltn 'sport >= :${p} and sport <= :${p + 1}'`);
      assert.match(listening, new RegExp(`127\\.0\\.0\\.1:${p}\\b`), listening);
      assert.match(listening, new RegExp(`127\\.0\\.0\\.1:${p + 1}\\b`), listening);
      const r = await run("python3", ["-c", CONCURRENT_STARTTLS, String(d.port), "16"]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split("\n"), Array(16).fill("ok TLSv1.3"), r.stdout);
      await waitFor(
        "16 queue files",
        async () => (await queueFiles(d.queueDir)).length === 16,
        5000,
      );
      // The threads write their log lines every 20 ms: waited for, not read at once.
      const established = () =>
        d.log().match(/Anonymous TLS connection established .*TLSv1\.3 with cipher TLS_/g)?.length;
      await waitFor("16 TLS lines", () => Promise.resolve(established() === 16), 10000)
        .catch(() => {});
      assert.equal(established(), 16, d.log());
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "through the engine: TLS 1.2 facts in the log and Received:, and wrapper mode (swaks)",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("tls-engine");
    const wrapper = freePorts(1);
    const tls = await tlsCertConfig(dir, "may", { engine: true });
    const d = await startDaemon(
      `smtpd_tls_wrappermode_listen = ["127.0.0.1:${wrapper}"]\n${tls}`,
      { dir },
    );
    try {
      const r12 = await swaks(d.port, [
        "--tls",
        "--tls-protocol",
        "tlsv1_2",
        "--to",
        "u@example.com",
      ]);
      assert.equal(r12.code, 0, r12.stdout + r12.stderr);
      assert.match(r12.stdout, /TLS started with cipher TLSv1\.2:ECDHE-RSA-AES256-GCM-SHA384/);
      await d.waitForLog(
        /TLS connection established from .*: TLSv1\.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 \(256\/256 bits\)/,
      );
      const [f] = await queueFiles(d.queueDir);
      assert.match(
        await postcat(f as string),
        /\(using TLSv1\.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 \(256\/256 bits\)\)/,
      );
      const w = await swaks(wrapper, ["--tls-on-connect", "--to", "u@example.com"]);
      assert.equal(w.code, 0, w.stdout + w.stderr);
      assert.match(w.stdout, /TLS started with cipher TLSv1\.3:/);
      assert.match(w.stdout, /250 2\.0\.0 Ok: queued as/);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "smtpd_tls_loopback_listen: what the engine cannot do stops the start with file and line",
  ...opts,
  fn: async () => {
    const check = async (lines: string) => {
      const dir = await makeWorkDir("tls-engine");
      const { configFile } = await writeConfig(dir, `${await tlsCertConfig(dir, "may")}\n${lines}`);
      const r = await run(
        Deno.execPath(),
        await smtpdArgs(["config", "--check", "-c", configFile]),
      );
      assert.equal(r.code, 1, r.stdout + r.stderr);
      return r.stderr;
    };
    assert.match(
      await check('smtpd_tls_loopback_listen = "0.0.0.0:10465"'),
      /smtpd\.toml:\d+: smtpd_tls_loopback_listen: cannot use "0\.0\.0\.0:10465": expected a loopback address/,
    );
    assert.match(
      await check(
        'smtpd_tls_loopback_listen = "127.0.0.1:10465"\nsmtpd_tls_protocols = ">=TLSv1.3"',
      ),
      /smtpd\.toml:\d+: smtpd_tls_loopback_listen: the TLS engine speaks TLSv1\.2 and TLSv1\.3/,
    );
    assert.match(
      await check(
        'smtpd_tls_loopback_listen = "127.0.0.1:10465"\ntls_server_sni_maps = ["inline:{ a.example = /x }"]',
      ),
      /smtpd_tls_loopback_listen: cannot be used with tls_server_sni_maps/,
    );
    // One port per listener thread (8 counted with smtpd_listen_threads = 0) must fit.
    assert.match(
      await check('smtpd_tls_loopback_listen = "127.0.0.1:65530"'),
      /smtpd\.toml:\d+: smtpd_tls_loopback_listen: port 65530: the listener threads \(and an ECDSA chain\) need the ports up to port \+ 7/,
    );
    assert.match(
      await check(
        'smtpd_tls_eccert_file = "/etc/ssl/ec.pem"\nsmtpd_tls_eckey_file = "/etc/ssl/ec.key"',
      ),
      /smtpd\.toml:\d+: smtpd_tls_eccert_file: a second chain needs the TLS engine \(smtpd_tls_loopback_listen\)/,
    );
    assert.match(
      await check(
        'smtpd_tls_loopback_listen = "127.0.0.1:10465"\nsmtpd_tls_eckey_file = "/x.pem"',
      ),
      /smtpd\.toml:\d+: smtpd_tls_eccert_file is required with smtpd_tls_eckey_file/,
    );
  },
});

Deno.test({
  name:
    "smtpd_tls_loopback_listen on a port in use: the start stops, and says to pick a port below the local port range",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("tls-engine-inuse");
    const p = freePorts(1);
    const taken = Deno.listen({ hostname: "127.0.0.1", port: p });
    try {
      const { configFile } = await writeConfig(
        dir,
        `${await tlsCertConfig(dir, "may")}\nsmtpd_listen_threads = 1\n` +
          `smtpd_tls_loopback_listen = "127.0.0.1:${p}"`,
      );
      const r = await run(Deno.execPath(), await smtpdArgs(["serve", "-c", configFile]), {
        timeoutMs: 15_000,
      });
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `smtpd_tls_loopback_listen: cannot listen on 127\\.0\\.0\\.1:${p}: Address already in use.*` +
            "choose ports below net\\.ipv4\\.ip_local_port_range",
        ),
      );
    } finally {
      taken.close();
    }
  },
});

Deno.test({
  name: "smtpd permissions: one loopback port per listener thread for the engine, no more",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("tls-engine");
    const { configFile } = await writeConfig(
      dir,
      `${await tlsCertConfig(dir, "may")}\nsmtpd_listen_threads = 3\n` +
        `smtpd_tls_loopback_listen = "127.0.0.1:10465"`,
    );
    const r = await run(Deno.execPath(), await smtpdArgs(["permissions", "-c", configFile]));
    assert.equal(r.code, 0, r.stderr);
    const net = /^--allow-net=(.*)$/m.exec(r.stdout)?.[1] ?? "";
    const engine = net.split(",").filter((t) => /^127\.0\.0\.1:1046\d$/.test(t));
    assert.deepEqual(engine, ["127.0.0.1:10465", "127.0.0.1:10466", "127.0.0.1:10467"], net);
    // With an ECDSA chain, the next run of ports serves it.
    const { configFile: withEc } = await writeConfig(
      dir,
      `${await tlsCertConfig(dir, "may")}\nsmtpd_listen_threads = 3\n` +
        `smtpd_tls_loopback_listen = "127.0.0.1:10465"\n` +
        `smtpd_tls_eccert_file = "${dir}/cert.pem"\nsmtpd_tls_eckey_file = "${dir}/key.pem"`,
    );
    const r2 = await run(Deno.execPath(), await smtpdArgs(["permissions", "-c", withEc]));
    assert.equal(r2.code, 0, r2.stderr);
    const net2 = /^--allow-net=(.*)$/m.exec(r2.stdout)?.[1] ?? "";
    assert.deepEqual(
      net2.split(",").filter((t) => /^127\.0\.0\.1:104\d\d$/.test(t)),
      [10465, 10466, 10467, 10468, 10469, 10470].map((p) => `127.0.0.1:${p}`),
      net2,
    );
  },
});

Deno.test({
  name:
    "smtpd_tls_eccert_file: an ECDSA client gets the ECDSA chain, an RSA-only client (schemes, the key's curve, or TLS 1.2 suites) the RSA one (openssl s_client -sigalgs, -cipher)",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("tls-engine");
    // A fixed port, as in production: the permissions name P (RSA) and P+1 (ECDSA).
    const p = freePorts(2);
    const rsa = `${await tlsCertConfig(dir, "may")}\nsmtpd_listen_threads = 1\n` +
      `smtpd_tls_loopback_listen = "127.0.0.1:${p}"`;
    const ec = await makeTestCert(dir, { ecdsa: true });
    const d = await startDaemon(
      `${rsa}\nsmtpd_tls_eccert_file = "${ec.cert}"\nsmtpd_tls_eckey_file = "${ec.key}"`,
      { dir },
    );
    try {
      const keyOf = async (sigalgs: string, extra: string[] = []) => {
        const r = await sh(
          `echo QUIT | timeout 10 openssl s_client -starttls smtp -connect 127.0.0.1:${d.port} ` +
            `-sigalgs '${sigalgs}' ${extra.join(" ")} 2>&1`,
        );
        return /Server public key is (\d+) bit/.exec(r)?.[1] ?? r;
      };
      assert.equal(await keyOf("ECDSA+SHA256:RSA-PSS+SHA256"), "256");
      assert.equal(await keyOf("RSA-PSS+SHA256:RSA+SHA256"), "2048");
      assert.equal(await keyOf("RSA+SHA256", ["-tls1_2"]), "2048");
      assert.equal(await keyOf("ECDSA+SHA256", ["-tls1_2"]), "256");
      // TLS 1.2 with OpenSSL's default schemes (ECDSA ones among them) but
      // only ECDHE_RSA suites: the RSA chain, as Postfix serves it (the
      // ECDSA chain failed the handshake: no suite in common).
      const both = "ECDSA+SHA256:RSA-PSS+SHA256:RSA+SHA256";
      assert.equal(
        await keyOf(both, ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"]),
        "2048",
      );
      assert.equal(
        await keyOf(both, ["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"]),
        "2048",
      );
      assert.equal(
        await keyOf(both, ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"]),
        "256",
      );
      // A client that lists ECDSA schemes of another curve only (P-384
      // here) cannot verify the P-256 key (rustls signs with its own scheme
      // only): the RSA chain, as from OpenSSL; the ECDSA chain failed the
      // handshake (no signature scheme in common), TLS 1.3 and 1.2 alike.
      assert.equal(await keyOf("ECDSA+SHA384:RSA-PSS+SHA256"), "2048");
      assert.equal(await keyOf("ECDSA+SHA384:RSA+SHA256", ["-tls1_2"]), "2048");
      const listening = await sh(`ss -Hltn 'sport >= :${p} and sport <= :${p + 1}'`);
      assert.match(listening, new RegExp(`127\\.0\\.0\\.1:${p + 1}\\b`), listening);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "keys and certificates rustls cannot serve (RSA-PSS, Ed448; X.509 v1 with the engine; a second chain not ECDSA) fail the check and a reload",
  ...opts,
  fn: async () => {
    const dir = await makeWorkDir("tls-engine");
    const { key } = await makeTestCert(dir);
    // OpenSSL's x509 -req without extensions writes an X.509 version 1 certificate.
    await sh(
      `cd ${dir} && openssl req -new -key key.pem -subj /CN=mx.test.example -out v1.csr 2>&1 && ` +
        `openssl x509 -req -in v1.csr -signkey key.pem -days 2 -out v1.pem 2>&1 && ` +
        `openssl req -x509 -newkey rsa-pss -pkeyopt rsa_keygen_bits:2048 -nodes -keyout pss.key ` +
        `-out pss.pem -days 2 -subj /CN=x 2>&1 && ` +
        `openssl req -x509 -newkey ed448 -nodes -keyout ed448.key -out ed448.pem -days 2 -subj /CN=x 2>&1`,
    );
    const check = async (lines: string) => {
      const { configFile } = await writeConfig(dir, `smtpd_tls_security_level = "may"\n${lines}`);
      return await run(Deno.execPath(), await smtpdArgs(["config", "--check", "-c", configFile]));
    };
    for (const k of ["pss", "ed448"]) {
      const r = await check(
        `smtpd_tls_cert_file = "${dir}/${k}.pem"\nsmtpd_tls_key_file = "${dir}/${k}.key"`,
      );
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `smtpd\\.toml:\\d+: smtpd_tls_cert_file/smtpd_tls_key_file: the private key is of type ${
            k.replace("pss", "rsa-pss")
          }: the TLS library \\(rustls\\) signs with`,
        ),
      );
    }
    const engine = 'smtpd_tls_loopback_listen = "127.0.0.1:0"';
    // A second chain whose key is not ECDSA: the engine would give it to
    // every client that lists an ECDSA scheme, and their handshakes fail
    // (openssl s_client -sigalgs ECDSA+SHA256:RSA-PSS+SHA256 against Ed25519).
    await sh(
      `cd ${dir} && openssl req -x509 -newkey ed25519 -nodes -keyout ed.key -out ed.pem ` +
        `-days 2 -subj /CN=x -addext basicConstraints=CA:FALSE 2>&1`,
    );
    const second = await check(
      `smtpd_tls_cert_file = "${dir}/cert.pem"\nsmtpd_tls_key_file = "${key}"\n` +
        `smtpd_tls_eccert_file = "${dir}/ed.pem"\nsmtpd_tls_eckey_file = "${dir}/ed.key"\n${engine}`,
    );
    assert.equal(second.code, 1, second.stdout + second.stderr);
    assert.match(
      second.stderr,
      /smtpd\.toml:\d+: smtpd_tls_eccert_file\/smtpd_tls_eckey_file: the private key is of type ed25519, not ECDSA/,
    );
    const v1 = `smtpd_tls_cert_file = "${dir}/v1.pem"\nsmtpd_tls_key_file = "${key}"`;
    const r = await check(`${v1}\n${engine}`);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /smtpd\.toml:\d+: smtpd_tls_cert_file\/smtpd_tls_key_file: the certificate is X\.509 version 1: the TLS engine \(rustls\) serves version 3/,
    );
    // node:tls serves it.
    assert.equal((await check(v1)).code, 0);
    // A reload that brings it keeps the running chain and says so.
    await Deno.copyFile(`${dir}/cert.pem`, `${dir}/live.pem`);
    const d = await startDaemon(
      `smtpd_tls_security_level = "may"\nsmtpd_tls_cert_file = "${dir}/live.pem"\n` +
        `smtpd_tls_key_file = "${key}"\n${engine}`,
      { dir },
    );
    try {
      await Deno.copyFile(`${dir}/v1.pem`, `${dir}/live.pem`);
      Deno.kill(d.pid, "SIGHUP");
      // A reload builds the TLS contexts anew: room for a loaded host.
      await d.waitForLog(
        /warning: reload failed: .*smtpd\.toml:\d+: .*X\.509 version 1.*; keeping the running configuration/,
        20000,
      );
      assert.doesNotMatch(d.log(), /reload: configuration and tables re-read/);
      const s = await swaks(d.port, ["--to", "u@example.com", "--tls"]);
      assert.equal(s.code, 0, s.stdout + s.stderr);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name:
    "an ECDSA-only server (smtpd_tls_eccert_file alone, as Postfix allows) serves that chain, with and without the engine",
  ...opts,
  fn: async () => {
    for (const engine of [false, true]) {
      const dir = await makeWorkDir("tls-engine");
      const ec = await makeTestCert(dir, { ecdsa: true });
      const lines = [
        'smtpd_tls_security_level = "may"',
        `smtpd_tls_eccert_file = "${ec.cert}"`,
        `smtpd_tls_eckey_file = "${ec.key}"`,
        ...(engine ? ['smtpd_tls_loopback_listen = "127.0.0.1:0"'] : []),
      ].join("\n");
      await assertConfigChecks(dir, lines);
      const d = await startDaemon(lines, { dir });
      try {
        const r = await sh(
          `echo QUIT | timeout 10 openssl s_client -starttls smtp -connect 127.0.0.1:${d.port} 2>&1`,
        );
        assert.match(r, /Server public key is 256 bit/, r);
        const s = await swaks(d.port, ["--to", "u@example.com", "--tls"]);
        assert.equal(s.code, 0, s.stdout + s.stderr);
        assert.match(s.stdout, /TLS started with cipher TLSv1\.3:/);
      } finally {
        await d.stop();
      }
    }
  },
});

Deno.test({
  name:
    "a reload that removes the ECDSA chain says it needs a restart, and keeps the running chains",
  ...opts,
  fn: async () => {
    // (One that adds it needs read permission for files the start was not given.)
    const dir = await makeWorkDir("tls-engine");
    const rsa = `${await tlsCertConfig(dir, "may")}\nsmtpd_listen_threads = 1\n` +
      `smtpd_tls_loopback_listen = "127.0.0.1:0"`;
    const ec = await makeTestCert(dir, { ecdsa: true });
    const d = await startDaemon(
      `${rsa}\nsmtpd_tls_eccert_file = "${ec.cert}"\nsmtpd_tls_eckey_file = "${ec.key}"`,
      { dir },
    );
    const keyOf = async () => {
      const r = await sh(
        `echo QUIT | timeout 10 openssl s_client -starttls smtp -connect 127.0.0.1:${d.port} ` +
          `-sigalgs 'ECDSA+SHA256:RSA-PSS+SHA256' 2>&1`,
      );
      return /Server public key is (\d+) bit/.exec(r)?.[1] ?? r;
    };
    try {
      assert.equal(await keyOf(), "256");
      await writeConfig(dir, rsa);
      Deno.kill(d.pid, "SIGHUP");
      await d.waitForLog(/reload: configuration and tables re-read/, 20000);
      for (const k of ["smtpd_tls_eccert_file", "smtpd_tls_eckey_file"]) {
        assert.match(
          d.log(),
          new RegExp(
            `warning: reload: ${k} changed .*but takes effect only after a restart; still "`,
          ),
        );
      }
      // What the log says is what is served.
      assert.equal(await keyOf(), "256");
    } finally {
      await d.stop();
    }
  },
});
