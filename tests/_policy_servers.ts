/**
 * Policy servers for the check_policy_service tests: Debian's postgrey on a
 * loopback port or a UNIX socket; Debian's policyd-spf (a spawn(8)-style
 * stdin/stdout program) behind a UNIX socket, one process per connection,
 * in a private mount namespace whose /etc/resolv.conf names a dnsmasq that
 * serves the test's SPF records; and a fake server that records requests
 * or misbehaves on purpose.
 *
 * @module
 */

import { join } from "node:path";
import { freePort } from "./_harness.ts";

const decoder = new TextDecoder();

/** A running postgrey. */
export interface Postgrey {
  readonly port: number;
  /** Connections postgrey accepted so far (from its log). */
  connections(): number;
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts postgrey with a private database directory and empty whitelists.
 * @param dir the work directory
 * @param options greylist delay in seconds, and a UNIX socket path instead of a port
 * @returns the handle
 */
export async function startPostgrey(
  dir: string,
  options: { delay: number; unix?: string },
): Promise<Postgrey> {
  const db = join(dir, "postgrey-db");
  await Deno.mkdir(db, { recursive: true });
  const empty = join(dir, "empty-whitelist");
  await Deno.writeTextFile(empty, "");
  const port = options.unix ? 0 : freePort();
  const child = new Deno.Command("postgrey", {
    args: [
      options.unix ? `--unix=${options.unix}` : `--inet=127.0.0.1:${port}`,
      `--dbdir=${db}`,
      `--delay=${options.delay}`,
      "--user=root",
      "--group=root",
      `--whitelist-clients=${empty}`,
      `--whitelist-recipients=${empty}`,
      "--auto-whitelist-clients=0",
      "--hostname=policy.test",
      "-v",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) text += decoder.decode(chunk);
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const deadline = Date.now() + 15000;
  for (;;) {
    try {
      const c = options.unix
        ? await Deno.connect({ transport: "unix", path: options.unix })
        : await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`postgrey did not start:\n${text}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  // The readiness probe above was one connection.
  const probe = 1;
  return {
    port,
    connections: () => (text.match(/CONNECT (TCP|UNIX)/g) ?? []).length - probe,
    log: () => text,
    async stop() {
      await stopProcess(child);
      await pumps.catch(() => {});
    },
  };
}

/**
 * Stops a process by its PID: SIGTERM, then SIGKILL if it is still there
 * after 5 s (postgrey once ignored a SIGTERM under load).
 */
async function stopProcess(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* gone */ }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), 5000));
  if (await Promise.race([child.status.then(() => "done" as const), late]) === "late") {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }
  clearTimeout(timer);
  await child.status;
}

/** policyd-spf behind a UNIX socket. */
export interface SpfPolicy {
  readonly socket: string;
  stop(): Promise<void>;
}

/**
 * Starts dnsmasq on port 53 of a private loopback address with the SPF
 * records, and a UNIX socket that runs one policyd-spf per connection
 * (as spawn(8) does) with that name server (root: mount namespace).
 * @param dir the work directory
 * @param records domain → SPF TXT record
 * @returns the handle
 */
export async function startSpfPolicy(
  dir: string,
  records: [string, string][],
): Promise<SpfPolicy> {
  const ns = `127.53.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
  const dns = new Deno.Command("dnsmasq", {
    args: [
      "--no-daemon",
      "--port=53",
      `--listen-address=${ns}`,
      "--bind-interfaces",
      "--no-resolv",
      "--no-hosts",
      "--conf-file=/dev/null",
      "--local=/#/",
      "--user=root",
      ...records.map(([d, t]) => `--txt-record=${d},${t}`),
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const resolv = join(dir, "resolv.conf");
  await Deno.writeTextFile(resolv, `nameserver ${ns}\n`);
  const conf = join(dir, "policyd-spf.conf");
  await Deno.writeTextFile(
    conf,
    [
      "debugLevel = 1",
      "TestOnly = 1",
      "HELO_reject = Fail",
      "Mail_From_reject = Fail",
      "PermError_reject = False",
      "TempError_Defer = False",
      // The default skips loopback clients; the tests' client is 127.0.0.1.
      "skip_addresses = 192.0.2.255/32",
      "",
    ].join("\n"),
  );
  const socket = join(dir, "spf.sock");
  const listener = Deno.listen({ transport: "unix", path: socket });
  const children = new Set<Deno.ChildProcess>();
  const serve = (async () => {
    for await (const conn of listener) {
      const child = new Deno.Command("unshare", {
        args: [
          "--mount",
          "sh",
          "-c",
          `mount --bind "$1" /etc/resolv.conf && exec policyd-spf "$2"`,
          "sh",
          resolv,
          conf,
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "null",
      }).spawn();
      children.add(child);
      // spawn(8): the socket is the program's stdin and stdout.
      conn.readable.pipeTo(child.stdin).catch(() => {});
      child.stdout.pipeTo(conn.writable).catch(() => {});
      child.status.then(() => children.delete(child));
    }
  })().catch(() => {});
  return {
    socket,
    async stop() {
      listener.close();
      await serve;
      for (const c of children) {
        try {
          c.kill("SIGKILL");
        } catch { /* gone */ }
        await c.status;
      }
      await stopProcess(dns);
    },
  };
}

/** How the fake server behaves. */
export type FakeMode =
  | "close"
  | "silent"
  | "flood"
  | "garbage"
  | { action: string | ((attrs: Map<string, string>) => string) };

/** A fake policy server. */
export interface FakeServer {
  readonly port: number;
  requests(): Map<string, string>[];
  /** Every byte received, as it came. */
  received(): Uint8Array;
  connections(): number;
  /** Bytes written by the flood mode. */
  written(): number;
  /** Connections open now (a client's close ends one). */
  open(): number;
  stop(): void;
}

/**
 * A policy server of our own on a loopback port.
 * @param mode what it does with a request
 * @returns the handle
 */
export async function fakePolicyServer(mode: FakeMode): Promise<FakeServer> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const requests: Map<string, string>[] = [];
  const received: number[] = [];
  const conns = new Set<Deno.Conn>();
  let connections = 0;
  let written = 0;
  const enc = new TextEncoder();
  const handle = async (conn: Deno.Conn) => {
    let buf = "";
    const chunk = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(chunk);
      if (n === null) return;
      received.push(...chunk.subarray(0, n));
      buf += decoder.decode(chunk.subarray(0, n));
      let end: number;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const attrs = new Map<string, string>();
        for (const line of buf.slice(0, end).split("\n")) {
          const eq = line.indexOf("=");
          attrs.set(line.slice(0, eq), line.slice(eq + 1));
        }
        buf = buf.slice(end + 2);
        requests.push(attrs);
        if (mode === "close") return;
        if (mode === "silent") continue;
        if (mode === "flood") {
          const block = enc.encode("action=" + "A".repeat(65536));
          for (let i = 0; i < 100000; i++) {
            await conn.write(block);
            written += block.length;
          }
          return;
        }
        if (mode === "garbage") {
          await conn.write(enc.encode("hello there\nno=action\n\n"));
          continue;
        }
        const action = typeof mode.action === "string" ? mode.action : mode.action(attrs);
        await conn.write(enc.encode(`action=${action}\n\n`));
      }
    }
  };
  (async () => {
    for await (const conn of listener) {
      connections++;
      conns.add(conn);
      handle(conn).catch(() => {}).finally(() => {
        conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
      });
    }
  })().catch(() => {});
  await Promise.resolve();
  return {
    port,
    requests: () => requests,
    received: () => Uint8Array.from(received),
    connections: () => connections,
    open: () => conns.size,
    written: () => written,
    stop() {
      try {
        listener.close();
      } catch { /* closed */ }
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}
