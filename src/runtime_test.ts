import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "./config/mod.ts";
import { buildRuntime } from "./runtime.ts";
import { checkQueueRoom, configWarnings } from "./runtime_checks.ts";

async function loaded(text: string) {
  const dir = await Deno.makeTempDir({ prefix: "runtime_test_" });
  const file = `${dir}/smtpd.toml`;
  await Deno.writeTextFile(file, `queue_directory = "${dir}/spool"\n${text}`);
  return { dir, file, loaded: await loadConfig(file, { systemHostname: "mx.example" }) };
}

/**
 * Asserts that buildRuntime refuses a configuration with a ConfigError.
 * @param text the configuration (after queue_directory, so its first line is line 2)
 * @param start what the message starts with, given the file's path
 */
async function assertRefused(text: string, start: (file: string) => string): Promise<void> {
  const { dir, file, loaded: l } = await loaded(text);
  try {
    await assert.rejects(buildRuntime(l, { verbose: 0, mode: "check" }), (e) => {
      assert.ok(e instanceof ConfigError);
      assert.ok(e.message.startsWith(start(file)), e.message);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Asserts that buildRuntime takes a configuration. */
async function assertAccepted(text: string): Promise<void> {
  const { dir, loaded: l } = await loaded(text);
  try {
    await buildRuntime(l, { verbose: 0, mode: "check" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("buildRuntime: one frozen runtime; the session's dependencies are its own parts", async () => {
  const { dir, loaded: l } = await loaded(
    'smtpd_client_event_limit_exceptions = ["192.0.2.0/24"]\n',
  );
  try {
    const rt = await buildRuntime(l, { verbose: 0, mode: "check" });
    assert.ok(Object.isFrozen(rt) && Object.isFrozen(rt.deps) && Object.isFrozen(rt.shares));
    assert.throws(() => {
      (rt as { logger: unknown }).logger = undefined;
    });
    assert.equal(rt.deps.config, rt.config);
    assert.equal(rt.deps.buffers, rt.buffers);
    assert.equal(rt.deps.memory, rt.memory);
    assert.equal(rt.deps.flush, rt.flush);
    assert.equal(rt.limitExempt("192.0.2.9"), true);
    assert.equal(rt.limitExempt("198.51.100.1"), false);
    assert.equal(rt.tls, undefined);
    assert.equal(rt.queue, "incoming");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A non-loopback IPv4 address of this host's interfaces, if it has one. */
const lanAddress = Deno.networkInterfaces().find((i) =>
  i.family === "IPv4" && !i.address.startsWith("127.")
)?.address;

Deno.test({
  name:
    "buildRuntime: smtpd_client_event_limit_exceptions left at $mynetworks exempts mynetworks_style's interface networks, as permit_mynetworks trusts them",
  ignore: lanAddress === undefined,
  fn: async () => {
    const { dir, loaded: l } = await loaded('mynetworks_style = "subnet"\n');
    try {
      const rt = await buildRuntime(l, { verbose: 0, mode: "check" });
      // Postfix expands $mynetworks to the networks mynetworks_style gives
      // when mynetworks is unset; the default's text names loopback only.
      assert.equal(rt.limitExempt(lanAddress as string), true, `${lanAddress} not exempt`);
      assert.equal(rt.limitExempt("127.0.0.1"), true);
      assert.equal(rt.limitExempt("198.51.100.1"), false);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    // With mynetworks_style = "host" (the default) the LAN is not trusted.
    const host = await loaded("");
    try {
      const rt = await buildRuntime(host.loaded, { verbose: 0, mode: "check" });
      assert.equal(rt.limitExempt(lanAddress as string), false);
      assert.equal(rt.limitExempt("127.0.0.1"), true);
    } finally {
      await Deno.remove(host.dir, { recursive: true });
    }
  },
});

Deno.test("buildRuntime: a listener thread's runtime adopts the main thread's shared cells", async () => {
  const { dir, loaded: l } = await loaded("");
  try {
    const main = await buildRuntime(l, { verbose: 0, mode: "serve" });
    const thread = await buildRuntime(l, { verbose: 0, mode: "serve", thread: main.shares });
    assert.equal(thread.shares.poolLock, main.shares.poolLock);
    assert.equal(thread.shares.triggerClock, main.shares.triggerClock);
    assert.equal(thread.shares.freeSpace, main.shares.freeSpace);
    assert.equal(thread.shares.memory, main.shares.memory);
    // Its own thread-local state.
    assert.notEqual(thread.buffers, main.buffers);
    assert.notEqual(thread.store, main.store);
    assert.notEqual(thread.stderr, main.stderr);
    const other = await buildRuntime(l, { verbose: 0, mode: "serve" });
    assert.notEqual(other.shares.poolLock, main.shares.poolLock);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("buildRuntime: errors found while building name file and line", async () => {
  const cases: [string, string][] = [
    [
      'smtpd_client_event_limit_exceptions = ["nonsense/40"]\n',
      "smtpd_client_event_limit_exceptions",
    ],
    ['mynetworks = ["10.0.0.0/33"]\n', "mynetworks"],
    ['smtpd_upstream_proxy_networks = ["x"]\n', "smtpd_upstream_proxy_networks"],
    [
      'smtpd_discard_ehlo_keyword_address_maps = ["texthash:/nonexistent/ehlo"]\n',
      "smtpd_discard_ehlo_keyword_address_maps",
    ],
  ];
  for (const [text, key] of cases) {
    const { dir, file, loaded: l } = await loaded(text);
    try {
      await assert.rejects(buildRuntime(l, { verbose: 0, mode: "check" }), (e) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(e.file, file);
        assert.equal(e.line, 2, e.message);
        assert.ok(e.message.startsWith(`${file}:2: ${key}: `), e.message);
        return true;
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("buildRuntime: an address in smtpd_listen twice, or also in smtpd_tls_wrappermode_listen, is refused", async () => {
  // With listener threads both would be bound (SO_REUSEPORT) and the kernel
  // would hand each connection to either: plain SMTP or implicit TLS at random.
  const cases: [string, string, string][] = [
    [
      'smtpd_listen = ["127.0.0.1:2525"]\nsmtpd_tls_wrappermode_listen = ["127.0.0.1:2525"]\n',
      "smtpd_tls_wrappermode_listen",
      '"127.0.0.1:2525" is also in smtpd_listen',
    ],
    [
      'smtpd_listen = ["127.0.0.1:2525", "[::1]:2526", "[::1]:2526"]\n',
      "smtpd_listen",
      '"[::1]:2526" is listed twice in smtpd_listen',
    ],
  ];
  for (const [text, key, why] of cases) {
    const line = text.split("\n").findIndex((t) => t.startsWith(`${key} =`)) + 3;
    await assertRefused(
      `smtpd_listen_threads = 2\n${text}`,
      (file) => `${file}:${line}: ${key}: ${why}: `,
    );
  }
  // Port 0 is a new port each time: two of them are two addresses.
  await assertAccepted('smtpd_listen = ["127.0.0.1:0", "127.0.0.1:0"]\n');
});

Deno.test("buildRuntime: a udp:// syslog_server with a host name is refused (its lines could never be sent)", async () => {
  await assertRefused(
    'syslog_server = "udp://localhost:514"\n',
    (file) => `${file}:2: syslog_server: "udp://localhost:514": udp:// takes an IP address`,
  );
  // An address, or tcp:// with a name, is taken.
  for (const ok of ['"udp://127.0.0.1:514"', '"udp://[::1]:514"', '"tcp://localhost:514"']) {
    await assertAccepted(`syslog_server = ${ok}\n`);
  }
});

Deno.test("buildRuntime: a dns_server given as a host name is refused (every query would fail)", async () => {
  await assertRefused(
    'dns_server = "localhost:53"\n',
    (file) => `${file}:2: dns_server: "localhost:53": expected an IP address`,
  );
  for (const ok of ['"127.0.0.1:53"', '"[::1]:5353"', '"192.0.2.53"']) {
    await assertAccepted(`dns_server = ${ok}\n`);
  }
});

Deno.test("checkQueueRoom: more room than the queue file system holds stops the start; more than is free warns", async () => {
  // A file system of 1 GB with 100 MB free (4 KiB blocks).
  const statfs = () => ({ blocks: 262144, bavail: 25600, bsize: 4096 });
  const room = async (text: string) => {
    const { dir, file, loaded: l } = await loaded(text);
    const warnings: string[] = [];
    try {
      checkQueueRoom(l, (w) => warnings.push(w), statfs);
      return { file, warnings };
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      return { file, error: e.message };
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  };
  // 1.5 x 800 MB is more than the whole 1 GB: every MAIL would get 452.
  const big = await room("message_size_limit = 800000000");
  assert.match(
    big.error ?? "",
    new RegExp(
      `^${big.file}:2: message_size_limit: MAIL needs room for 1\\.5 messages .*` +
        "more than the queue file system of .* holds \\(1073741824 bytes\\)",
    ),
  );
  const minfree = await room("queue_minfree = 2000000000");
  assert.match(minfree.error ?? "", new RegExp(`^${minfree.file}:2: queue_minfree: `));
  // 1.5 x 100 MB fits the file system, not what is free now: a warning.
  const full = await room("message_size_limit = 100000000");
  assert.equal(full.error, undefined);
  assert.equal(full.warnings.length, 1);
  assert.match(
    full.warnings[0] ?? "",
    new RegExp(`^${full.file}:2: message_size_limit: .* has 104857600 bytes free: MAIL gets 452`),
  );
  // The default fits.
  assert.deepEqual((await room("")).warnings, []);
});

Deno.test("checkQueueRoom: before queue_directory is made, its nearest existing parent is measured", async () => {
  const { dir, loaded: l } = await loaded("message_size_limit = 800000000");
  try {
    // 1 GB in all; only the work directory exists (spool does not yet).
    const asked: string[] = [];
    const notFound = (at: string) => {
      asked.push(at);
      if (at !== dir) throw Object.assign(new Error(`ENOENT: ${at}`), { code: "ENOENT" });
      return { blocks: 262144, bavail: 262144, bsize: 4096 };
    };
    assert.throws(() => checkQueueRoom(l, () => {}, notFound), ConfigError);
    assert.deepEqual(asked, [`${dir}/spool`, dir]);
    // A parent that cannot be asked (no permission): no figure, MAIL measures.
    const denied = (at: string) => {
      if (at === dir) throw new Deno.errors.NotCapable(`Requires read access to "${at}"`);
      throw new Deno.errors.NotFound(at);
    };
    checkQueueRoom(l, () => assert.fail("no warning"), denied);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("configWarnings: each unknown name in smtpd_discard_ehlo_keywords, at its own line", async () => {
  const { dir, file, loaded: l } = await loaded(
    'smtpd_discard_ehlo_keywords = [\n  "DSN",\n  "pipelinig",\n  "silent-discard, bogus",\n]',
  );
  try {
    const w = configWarnings(l);
    assert.equal(w.length, 2, w.join("\n"));
    assert.match(
      w[0] ?? "",
      new RegExp(
        `^${file}:4: smtpd_discard_ehlo_keywords: "pipelinig" is no EHLO keyword .*` +
          "ignored \\(known: 8bitmime, auth, .*pipelining",
      ),
    );
    assert.match(w[1] ?? "", new RegExp(`^${file}:5: smtpd_discard_ehlo_keywords: "bogus" `));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const known = await loaded('smtpd_discard_ehlo_keywords = "etrn, VRFY silent-discard"');
  assert.deepEqual(configWarnings(known.loaded), []);
  await Deno.remove(known.dir, { recursive: true });
});
