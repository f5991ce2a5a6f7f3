import assert from "node:assert/strict";
import { loadConfig } from "../config/mod.ts";
import { buildRuntime } from "../runtime.ts";
import {
  keptWarning,
  pinRestartOnly,
  reloadRuntime,
  RESTART_ONLY,
  restartOnlyValues,
} from "./reload.ts";

async function workDir() {
  const dir = await Deno.makeTempDir({ prefix: "reload_test_" });
  const file = `${dir}/smtpd.toml`;
  const write = (text: string) =>
    Deno.writeTextFile(file, `queue_directory = "${dir}/spool"\n${text}`);
  return { dir, file, write };
}

const load = (file: string) => loadConfig(file, { systemHostname: "mx.example" });

Deno.test("pinRestartOnly: restart-only parameters keep their running values and are named; others change", async () => {
  const { dir, file, write } = await workDir();
  try {
    await write('smtpd_listen = ["127.0.0.1:2525"]\nmyhostname = "a.example"\n');
    const running = await load(file);
    await write(
      'smtpd_listen = ["127.0.0.1:2626"]\nmyhostname = "b.example"\nsmtpd_listen_threads = 4\n',
    );
    const next = await load(file);
    const { loaded, kept } = pinRestartOnly(restartOnlyValues(running.config), next);
    assert.deepEqual(kept, ["smtpd_listen", "smtpd_listen_threads"]);
    assert.deepEqual(loaded.config.smtpd_listen, ["127.0.0.1:2525"]);
    assert.equal(loaded.config.smtpd_listen_threads, running.config.smtpd_listen_threads);
    assert.equal(loaded.config.myhostname, "b.example");
    assert.equal(loaded.file, next.file);
    assert.equal(loaded.lineOf("myhostname"), next.lineOf("myhostname"));
    // Nothing restart-only changed: the new configuration as it is.
    const same = pinRestartOnly(restartOnlyValues(running.config), running);
    assert.deepEqual(same.kept, []);
    assert.equal(same.loaded, running);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keptWarning names each parameter and what holds it", () => {
  assert.equal(keptWarning([]), undefined);
  assert.equal(
    keptWarning(["queue_directory"]),
    "reload: queue_directory changed but needs a restart (the queue store and triggers); " +
      "the running value stays in effect until then",
  );
  assert.match(
    keptWarning(["syslog_name", "syslog_server"]) ?? "",
    /syslog_name, syslog_server changed but need a restart \(the logger\)/,
  );
  for (const reason of Object.values(RESTART_ONLY)) assert.ok(reason);
});

Deno.test("reloadRuntime: a new policy on the running runtime's open parts; shared state kept, not reset", async () => {
  const { dir, file, write } = await workDir();
  try {
    await write("smtpd_helo_required = false\nsmtpd_client_message_rate_limit = 5\n");
    const running = await buildRuntime(await load(file), { verbose: 0, mode: "serve" });
    assert.ok(running.memory.take(3));
    await write("smtpd_helo_required = true\nsmtpd_client_message_rate_limit = 7\n");
    const r = await reloadRuntime(running, { file, overrides: [], verbose: 0 });
    assert.ok(r.ok);
    const next = r.runtime;
    assert.equal(next.config.smtpd_helo_required, true);
    assert.equal(running.config.smtpd_helo_required, false, "the running runtime is unchanged");
    assert.notEqual(next.policy, running.policy);
    assert.notEqual(next.deps, running.deps);
    assert.notEqual(next.cleanup, running.cleanup);
    // What holds files, timers and the cells shared with the other threads: the same.
    for (const part of ["store", "stderr", "logger", "wake", "flush", "space", "memory"] as const) {
      assert.equal(next[part], running[part], part);
    }
    assert.equal(next.shares, running.shares);
    assert.equal(next.shares.rates, running.shares.rates);
    assert.equal(next.memory.used, running.memory.used, "the memory budget is not reset");
    assert.ok(next.memory.used > 0);
    // The rate counters go on: a client's events before the reload still count.
    // The rate counters go on: the 5 messages counted before the reload still count
    // under the new limit of 7 (with counters reset, the 8th would pass).
    const send = (rt: typeof running) => rt.deps.overRate?.("message", "192.0.2.1");
    for (let i = 0; i < 5; i++) assert.equal(send(running), undefined);
    assert.equal(send(next), undefined);
    assert.equal(send(next), undefined);
    assert.match(send(next)?.text ?? "", /too much mail from 192\.0\.2\.1/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reloadRuntime: a bad configuration or a missing permission leaves nothing built", async () => {
  const { dir, file, write } = await workDir();
  try {
    await write("");
    const running = await buildRuntime(await load(file), { verbose: 0, mode: "serve" });
    await write('smtpd_recipient_restrictions = ["no_such_restriction"]\n');
    const bad = await reloadRuntime(running, { file, overrides: [], verbose: 0 });
    assert.equal(bad.ok, false);
    assert.match(!bad.ok ? bad.error : "", new RegExp(`^${file}:2: .*no_such_restriction`));
    await write("");
    const denied = await reloadRuntime(running, {
      file,
      overrides: [],
      verbose: 0,
      permissions: () => "needs --allow-read=/x",
    });
    assert.deepEqual(denied, { ok: false, error: "needs --allow-read=/x" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
