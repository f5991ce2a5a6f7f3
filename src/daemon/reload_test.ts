import assert from "node:assert/strict";
import { buildRuntime } from "../runtime.ts";
import { permissionsError, reloadedMessage, reloadFromText, resolveSource } from "./reload.ts";
import { pinRestartOnly, restartOnlyValues } from "./serve.ts";

async function workDir() {
  const dir = await Deno.makeTempDir({ prefix: "reload_test_" });
  const source = { file: `${dir}/smtpd.toml`, overrides: [] };
  const text = (more: string) => `queue_directory = "${dir}/spool"\n${more}`;
  return { dir, source, text };
}

Deno.test("a listener thread started after a reload keeps the restart-only values in force", async () => {
  const { dir, source, text } = await workDir();
  try {
    const running = await buildRuntime(
      resolveSource(text('smtpd_listen_threads = 2\nmyhostname = "a.example"\n'), source),
      { verbose: 0, mode: "check" },
    );
    const values = restartOnlyValues(running);
    assert.equal(values.smtpd_listen_threads, 2);
    assert.ok(!("myhostname" in values), "only the restart-only parameters");
    // The text now in force says otherwise for a restart-only parameter.
    const next = resolveSource(
      'queue_directory = "/elsewhere"\nsmtpd_listen_threads = 4\nmyhostname = "b.example"\n',
      source,
    );
    const pinned = pinRestartOnly(next, values);
    assert.equal(pinned.config.smtpd_listen_threads, 2);
    assert.equal(pinned.config.queue_directory, running.config.queue_directory);
    assert.equal(pinned.config.myhostname, "b.example", "the rest as the text says");
    assert.equal(pinned.lineOf("myhostname"), next.lineOf("myhostname"));
    assert.equal(pinRestartOnly(running.loaded, values), running.loaded, "nothing to pin");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a listener thread started after a reload that kept TLS on serves TLS as the others do", async () => {
  const { dir, source, text } = await workDir();
  try {
    const made = await new Deno.Command("openssl", {
      args: ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${dir}/key.pem`]
        .concat(["-out", `${dir}/cert.pem`, "-days", "2", "-subj", "/CN=mx.test.example"]),
      stdout: "null",
      stderr: "null",
    }).output();
    assert.ok(made.success);
    const tls = `smtpd_tls_cert_file = "${dir}/cert.pem"\nsmtpd_tls_key_file = "${dir}/key.pem"\n`;
    const running = await buildRuntime(
      resolveSource(text(`smtpd_tls_security_level = "may"\n${tls}`), source),
      { verbose: 0, mode: "check" },
    );
    // STARTTLS turned off, and the certificate lines gone with it: TLS stays on.
    const r = await reloadFromText(running, text('smtpd_tls_security_level = "none"\n'), source);
    assert.ok(r.ok, r.ok ? "" : r.error);
    assert.equal(r.runtime.config.smtpd_tls_security_level, "may");
    assert.equal(r.runtime.config.smtpd_tls_cert_file, `${dir}/cert.pem`);
    assert.ok(r.runtime.tls);
    // A thread started now gets that text with the values in force.
    const pinned = pinRestartOnly(resolveSource(r.text, source), restartOnlyValues(r.runtime));
    assert.equal(pinned.config.smtpd_tls_security_level, "may");
    assert.equal(pinned.config.smtpd_tls_key_file, `${dir}/key.pem`);
    const thread = await buildRuntime(pinned, { verbose: 0, mode: "check" });
    assert.ok(thread.tls, "the new thread offers STARTTLS as the running ones do");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a reload builds on the running runtime: store, logger and shared counters kept, not reset", async () => {
  const { dir, source, text } = await workDir();
  try {
    const running = await buildRuntime(
      resolveSource(text("smtpd_client_message_rate_limit = 5\n"), source),
      { verbose: 0, mode: "serve" },
    );
    assert.ok(running.memory.take(3));
    const r = await reloadFromText(
      running,
      text("smtpd_client_message_rate_limit = 7\nsmtpd_helo_required = true\n"),
      source,
    );
    assert.ok(r.ok);
    const next = r.runtime;
    assert.equal(next.config.smtpd_helo_required, true);
    assert.equal(running.config.smtpd_helo_required, false, "the running runtime is unchanged");
    assert.notEqual(next.policy, running.policy);
    assert.notEqual(next.deps, running.deps);
    for (const part of ["store", "stderr", "logger", "memory", "buffers", "shares"] as const) {
      assert.equal(next[part], running[part], part);
    }
    assert.ok(next.memory.used > 0, "the memory in use carries over");
    // The 5 messages counted before the reload still count under the new
    // limit of 7: the 8th is over it (with counters reset it would pass).
    const send = (rt: typeof running) => rt.deps.overRate?.("message", "192.0.2.1");
    for (let i = 0; i < 5; i++) assert.equal(send(running), undefined);
    assert.equal(send(next), undefined);
    assert.equal(send(next), undefined);
    assert.match(send(next)?.text ?? "", /too much mail from 192\.0\.2\.1/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reloadedMessage counts the threads that reloaded", () => {
  const base =
    "reload: configuration and tables re-read from /etc/smtpd/smtpd.toml; new sessions use them";
  assert.equal(reloadedMessage("/etc/smtpd/smtpd.toml", 1, 0), base);
  assert.equal(reloadedMessage("/etc/smtpd/smtpd.toml", 3, 1), `${base} (2 of 3 threads)`);
});

Deno.test("permissionsError: the start-up check's lines as one log line", () => {
  assert.equal(
    permissionsError([
      "this configuration needs permissions this program was not given:",
      "  --allow-read=/etc/smtpd/a  (table texthash:)",
      "  --allow-net=192.0.2.53:53  (DNS server)",
      "run it with the flags it needs: deno task smtpd COMMAND -c /etc/smtpd/smtpd.toml",
    ]),
    "this configuration needs permissions this program was not given: " +
      "--allow-read=/etc/smtpd/a (table texthash:), --allow-net=192.0.2.53:53 (DNS server); " +
      "a reload cannot add permissions: restart, and run it with the flags it needs: " +
      "deno task smtpd COMMAND -c /etc/smtpd/smtpd.toml",
  );
});
