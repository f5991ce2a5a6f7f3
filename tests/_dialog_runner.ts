/**
 * Plays a dialog (tests/_dialog.ts) in this process: `runSession` over a
 * scripted in-memory transport, with the product's own configuration
 * loader, semantic checks, policy compiler, session dependencies
 * (src/runtime.ts) and a real Cleanup writing queue files into a temporary
 * queue directory. Only what a test must control is fake: the DNS (zones
 * from the dialog), the clock, the tarpit's sleep (recorded, not slept),
 * the pickup wakeup (counted: there is no pickup daemon) and the ETRN
 * trigger's once-a-second coalescing (off, so no timer outlives a dialog).
 *
 * {@linkcode dialogDeps} is the one place that builds the dependencies.
 *
 * @module
 */

import { join } from "node:path";
import { resolveConfigText } from "../src/config/mod.ts";
import { qmgrFlushTrigger, TriggerClock } from "../src/flush/mod.ts";
import { Logger, MailLog } from "../src/log/mod.ts";
import { makeWorkDir, tlsCertConfig } from "./_harness.ts";
import {
  compilePeerList,
  compilePolicy,
  type DnsResolver,
  type DnsType,
  reverseName,
} from "../src/policy/mod.ts";
import { fakeDns, type Zone } from "../src/policy/_fake_dns.ts";
import { readQueueFile } from "../src/queue/mod.ts";
import type { QueueStore } from "../src/queue/mod.ts";
import { buildRuntime } from "../src/runtime.ts";
import { saslSettings, sessionSasl } from "../src/sasl/mod.ts";
import { FakeSaslServer } from "./_fake_sasl.ts";
import { runSession, type SessionDeps } from "../src/session/mod.ts";
import { peerFromEnv } from "../src/transport/stdio.ts";
import { type PeerInfo, TlsHandshakeError, type Transport } from "../src/transport/types.ts";
import { type Dialog, splitReplies } from "./_dialog.ts";
import { postcat, queueFiles } from "./_harness.ts";

/** The fake clock's time: every queue file and header says this. */
export const DIALOG_TIME = new Date("2026-01-02T03:04:05Z");

/** What a dialog's world records while it plays. */
export interface DialogWorld {
  /** The temporary queue directory. */
  readonly queueDir: string;
  /** The fake DNS's records. */
  readonly zone: Zone;
  /** Queries ("TYPE name") for which the fake DNS throws. */
  readonly crash?: ReadonlySet<string>;
  /** Receives every log line. */
  log(line: string): void;
  /** Receives every tarpit sleep, in milliseconds. */
  sleep(ms: number): void;
  /** Told after each committed queue file. */
  queued(): void;
  /** AUTH users for a fake authentication server ("# sasl:"). */
  readonly sasl?: ReadonlyMap<string, string>;
  /** The free bytes sessions measure on the queue file system ("# free:"). */
  readonly free?: number;
}

/**
 * Builds a session's dependencies for a dialog, as stand-alone mode does
 * (maildrop/), from configuration lines.
 * @param configLines TOML lines ("# config:"), over a base that sets the
 *   queue directory, myhostname and smtpd_error_sleep_time = 0 (as the
 *   subprocess runner's base does)
 * @param world the fakes and the queue directory
 * @returns the dependencies and the queue store (prepare() it before use)
 * @throws {ConfigError} for a configuration the product would refuse
 */
export async function dialogDeps(
  configLines: readonly string[],
  world: DialogWorld,
): Promise<{ deps: SessionDeps; store: QueueStore }> {
  const extra = configLines.join("\n");
  const base = [
    `queue_directory = ${JSON.stringify(world.queueDir)}`,
    `myhostname = "mx.test.example"`,
    `smtpd_error_sleep_time = 0`,
  ].filter((line) => !new RegExp(`^${line.split(" ")[0]}\\s*=`, "m").test(extra));
  const loaded = resolveConfigText(`${base.join("\n")}\n${extra}\n`, {
    file: "dialog.toml",
    systemHostname: "mx.test.example",
  });
  // The product's runtime (checks, queue store, cleanup, budget); the
  // policy and the log are replaced by ones on the fake DNS and the dialog's log.
  const runtime = await buildRuntime(loaded, { verbose: 0, mode: "stdin" });
  const config = loaded.config;
  const logger = new Logger({
    tag: `${config.syslog_name}/smtpd`,
    host: config.myhostname,
    sinks: [(line) => world.log(line)],
  });
  const zone = fakeDns(world.zone);
  const dns: DnsResolver = {
    query(name, type) {
      const key = `${type} ${name.toLowerCase().replace(/\.$/, "")}`;
      if (world.crash?.has(key)) throw new Error(`fake DNS crash on ${key}`);
      return zone.query(name, type);
    },
  };
  const policy = compilePolicy(loaded, {
    dns,
    warn: (text) => logger.warning(text),
  });
  const { deps, store } = runtime;
  // AUTH is daemon mode only; a "# sasl:" dialog gets it as a daemon would.
  const sasl = world.sasl
    ? sessionSasl(
      saslSettings(config),
      new FakeSaslServer(world.sasl),
      compilePeerList(config.smtpd_sasl_exceptions_networks, "smtpd_sasl_exceptions_networks"),
    )
    : undefined;
  return {
    deps: {
      ...deps,
      ...(sasl ? { sasl } : {}),
      ...(world.free !== undefined ? { freeSpace: () => world.free } : {}),
      policy,
      log: new MailLog(logger),
      clock: () => new Date(DIALOG_TIME),
      sleep: (ms) => {
        world.sleep(ms);
        return Promise.resolve();
      },
      queued: () => world.queued(),
      flush: qmgrFlushTrigger(config.queue_directory, {
        clock: new TriggerClock(),
        intervalMs: 0,
      }),
    },
    store,
  };
}

/** What one play of a dialog produced. */
export interface Played {
  /** Everything the server wrote. */
  readonly output: string;
  /** The output as whole replies. */
  readonly replies: string[];
  /** Every log line. */
  readonly log: string[];
  /** The complete queue files (every one read back complete by our reader). */
  readonly queued: number;
  /** postcat's output for each queued file (when asked for). */
  readonly postcat: string[];
  /** Total tarpit sleep asked for, in milliseconds. */
  readonly slept: number;
  /** Committed messages the wakeup was told of. */
  readonly wakeups: number;
  /** Bytes that reached public/qmgr. */
  readonly qmgr: string;
}

const decoder = new TextDecoder();

/**
 * Where the temporary queue directories go: /dev/shm (tmpfs) when there is
 * one, because fsync and removal on a disk cost a dialog 10-20 ms, the
 * rest of it about 1 ms. Durability itself is tested on disk elsewhere
 * (tests/stdin_test.ts, src/queue/).
 */
const TEMP_BASE = (() => {
  try {
    return Deno.statSync("/dev/shm").isDirectory ? "/dev/shm" : undefined;
  } catch {
    return undefined;
  }
})();

/**
 * Plays a dialog once over a scripted transport.
 * @param dialog the dialog
 * @param chunks the client's input, one entry per read (see {@linkcode chunkings})
 * @param options run postcat on each queued file
 * @returns what happened
 */
export async function playDialog(
  dialog: Dialog,
  chunks: Uint8Array[],
  options: { postcat?: boolean } = {},
): Promise<Played> {
  const queueDir = await Deno.makeTempDir({ prefix: "dialog-", dir: TEMP_BASE });
  const log: string[] = [];
  let slept = 0;
  let wakeups = 0;
  let qmgr = "";
  let listener: Deno.Listener | undefined;
  let accepting: Promise<void> | undefined;
  try {
    // A dialog that needs TLS gets a real certificate, made once per run.
    const tlsLines = dialog.tls ? [await dialogCert()] : [];
    const { deps, store } = await dialogDeps([...tlsLines, ...dialog.config], {
      queueDir,
      zone: zoneOf(dialog),
      ...(dialog.sasl ? { sasl: dialog.sasl } : {}),
      ...(dialog.free !== undefined ? { free: dialog.free } : {}),
      crash: new Set(
        dialog.dns.filter((r) => r.values === "crash")
          .map((r) => `${r.type} ${r.name.toLowerCase().replace(/\.$/, "")}`),
      ),
      log: (line) => log.push(line),
      sleep: (ms) => slept += ms,
      queued: () => wakeups++,
    });
    await store.prepare();
    if (dialog.fault === "maildrop-is-a-file") {
      await Deno.remove(join(queueDir, "maildrop"), { recursive: true });
      await Deno.writeTextFile(join(queueDir, "maildrop"), "");
    }
    if (dialog.qmgr) {
      listener = Deno.listen({ transport: "unix", path: join(queueDir, "public", "qmgr") });
      accepting = (async () => {
        for await (const conn of listener as Deno.Listener) {
          for await (const b of conn.readable) qmgr += decoder.decode(b);
        }
      })().catch(() => {});
    }
    const out: Uint8Array[] = [];
    await runSession(scriptedTransport(dialog, chunks, out), deps);
    listener?.close();
    listener = undefined;
    await accepting;
    const files = dialog.fault ? [] : await queueFiles(queueDir, "maildrop");
    for (const f of files) {
      const entry = await readQueueFile(f, "maildrop");
      if (!entry.complete) throw new Error(`${f}: ${entry.problem}`);
    }
    const printed = options.postcat ? await Promise.all(files.map((f) => postcat(f))) : [];
    const output = decoder.decode(concat(out));
    return {
      output,
      replies: splitReplies(output),
      log,
      queued: files.length,
      postcat: printed,
      slept,
      wakeups,
      qmgr,
    };
  } finally {
    listener?.close();
    await Deno.remove(queueDir, { recursive: true });
  }
}

/** The fake DNS zone of a dialog: its "# dns:" records and its peer's confirmed name. */
function zoneOf(dialog: Dialog): Zone {
  const zone: Zone = {};
  const add = (name: string, type: DnsType, values: string[] | "tempfail" | "crash") => {
    if (values === "crash") return;
    const at = zone[name.toLowerCase().replace(/\.$/, "")] ??= {};
    const had = at[type];
    at[type] = values === "tempfail" || had === undefined || had === "tempfail"
      ? values
      : [...had, ...values];
  };
  const peer = dialog.peer;
  if (peer?.name) {
    add(reverseName(peer.address) as string, "PTR", [peer.name]);
    add(peer.name, peer.address.includes(":") ? "AAAA" : "A", [peer.address]);
  }
  for (const r of dialog.dns) add(r.name, r.type as DnsType, r.values);
  return zone;
}

/** The session's peer: "# peer:", else "# env:" read as stand-alone mode reads it. */
function peerOf(dialog: Dialog): PeerInfo {
  if (dialog.peer) {
    return { kind: "network", address: dialog.peer.address, port: "54321", name: "unknown" };
  }
  const p = peerFromEnv((name) => dialog.env[name]);
  if (p.kind === "invalid") throw new Error(`${dialog.name}: # env: ${p.reason}`);
  return p;
}

/**
 * An in-memory transport: each read hands out (at most) the next chunk,
 * then EOF, or nothing ever with "# hang". With "# tls: fake", STARTTLS's
 * handshake returns the same stream marked as encrypted.
 */
function scriptedTransport(dialog: Dialog, chunks: Uint8Array[], out: Uint8Array[]): Transport {
  const queue = [...chunks];
  const read = (p: Uint8Array): Promise<number | null> => {
    const c = queue.shift();
    if (c === undefined) return dialog.hang ? new Promise(() => {}) : Promise.resolve(null);
    if (c.length > p.length) queue.unshift(c.subarray(p.length));
    const n = Math.min(c.length, p.length);
    p.set(c.subarray(0, n));
    return Promise.resolve(n);
  };
  const write = (p: Uint8Array): Promise<number> => {
    out.push(p.slice());
    return Promise.resolve(p.length);
  };
  const peer = peerOf(dialog);
  const secure: Transport = {
    peer,
    tls: { protocol: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384", bits: 256 },
    read,
    write,
    close() {},
  };
  return {
    peer,
    read,
    write,
    close() {},
    ...(dialog.tls === "fake" ? { startTls: () => Promise.resolve(secure) } : {}),
    ...(dialog.tls === "fail"
      ? {
        startTls: () => Promise.reject(new TlsHandshakeError("protocol", "fake handshake failure")),
      }
      : {}),
  };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

/**
 * The ways a dialog's input is cut into reads: as written (one read per
 * group), whole, one byte per read, and random cuts (fixed seeds). With
 * "# tls: fake" no cut crosses the end of a group that ends in STARTTLS
 * (a client waits for the handshake there). A dialog marked
 * "# chunks: as-written" gets only the first.
 * @param dialog the dialog
 * @returns labelled chunk lists
 */
export function chunkings(dialog: Dialog): [string, Uint8Array[]][] {
  const asWritten: [string, Uint8Array[]] = ["as written", dialog.groups];
  if (dialog.asWritten !== undefined) return [asWritten];
  const segments: Uint8Array[] = [];
  let cur: Uint8Array[] = [];
  for (const g of dialog.groups) {
    cur.push(g);
    if (dialog.tls && /(^|\n)STARTTLS\r\n$/i.test(decoder.decode(g))) {
      segments.push(concat(cur));
      cur = [];
    }
  }
  if (cur.length > 0) segments.push(concat(cur));
  const out: [string, Uint8Array[]][] = [
    asWritten,
    ["whole", segments],
    ["byte by byte", segments.flatMap((s) => Array.from(s, (b) => new Uint8Array([b])))],
  ];
  for (const seed of [1, 2, 3]) {
    const next = mulberry32(seed);
    const cuts: Uint8Array[] = [];
    for (const s of segments) {
      for (let at = 0; at < s.length;) {
        const n = 1 + Math.floor(next() * 40);
        cuts.push(s.subarray(at, at + n));
        at += n;
      }
    }
    out.push([`random cuts (seed ${seed})`, cuts]);
  }
  return out;
}

/** A small seeded PRNG (mulberry32): the same cuts on every run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let certLines: Promise<string> | undefined;

/** smtpd_tls_cert_file and _key_file lines for a certificate made once per test run. */
function dialogCert(): Promise<string> {
  certLines ??= (async () => {
    const dir = await makeWorkDir("dialog-cert");
    const text = await tlsCertConfig(dir);
    return text.split("\n").filter((l) => /^smtpd_tls_(cert|key)_file/.test(l)).join("\n");
  })();
  return certLines;
}
