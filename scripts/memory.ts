/**
 * `deno task memory`: measures what issue 6 asks of memory, on the real
 * program with the production flags: peak RSS while a 50 MiB message passes
 * through against a 4 KiB one, and the cost of 100 idle connections.
 * Memory is measured here, by a benchmark, never by a timed test.
 *
 * @module
 */

import { join } from "node:path";
import { flagsForArgs } from "./permissions.ts";

const root = new URL("..", import.meta.url).pathname;
const work = join(root, "var", "bench", `memory-${Date.now()}`);
await Deno.mkdir(work, { recursive: true });
const rel = work.slice(root.length);
await Deno.writeTextFile(
  join(work, "smtpd.toml"),
  `queue_directory = "${rel}/spool"\nsmtpd_listen = ["127.0.0.1:0"]\nsmtpd_peername_lookup = false\n` +
    `message_size_limit = 60000000\nsmtpd_listen_threads = 1\n`,
);
const out = (s: string) => Deno.stdout.writeSync(new TextEncoder().encode(s + "\n"));

const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    ...await flagsForArgs(["-c", `${rel}/smtpd.toml`]),
    "mod.ts",
    "serve",
    "-c",
    `${rel}/smtpd.toml`,
  ],
  cwd: root,
  stdout: "null",
  stderr: "piped",
}).spawn();

function rssKiB(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${child.pid}/status`));
  return m ? Number(m[1]) : 0;
}

async function withPeak<T>(fn: () => Promise<T>): Promise<{ value: T; peak: number }> {
  let peak = rssKiB();
  let on = true;
  const sampler = (async () => {
    while (on) {
      peak = Math.max(peak, rssKiB());
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    return { value: await fn(), peak };
  } finally {
    on = false;
    await sampler;
    peak = Math.max(peak, rssKiB());
  }
}

async function sendMessage(port: number, bodyBytes: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const enc = new TextEncoder();
  const buf = new Uint8Array(4096);
  const read = async () => new TextDecoder().decode(buf.subarray(0, (await conn.read(buf)) ?? 0));
  await read();
  await conn.write(
    enc.encode("EHLO m\r\nMAIL FROM:<m@example.org>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n"),
  );
  let got = "";
  while (!got.includes("354")) got += await read();
  const line = enc.encode("x".repeat(1022) + "\r\n");
  const chunk = new Uint8Array(line.length * 64);
  for (let i = 0; i < 64; i++) chunk.set(line, i * line.length);
  let sent = 0;
  while (sent + chunk.length <= bodyBytes) {
    await conn.write(chunk);
    sent += chunk.length;
  }
  while (sent < bodyBytes) {
    await conn.write(line);
    sent += line.length;
  }
  await conn.write(enc.encode(".\r\nQUIT\r\n"));
  let reply = "";
  while (!/\n221 /.test(reply) && !/^221 /.test(reply)) {
    const r = await read();
    if (!r) break;
    reply += r;
  }
  conn.close();
  return reply.split("\r\n")[0] ?? "";
}

try {
  let text = "";
  const reader = child.stderr.getReader();
  let port = 0;
  const deadline = Date.now() + 15000;
  while (!port && Date.now() < deadline) {
    const { value } = await reader.read();
    text += new TextDecoder().decode(value);
    port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(text)?.[1] ?? 0);
  }
  void (async () => {
    while (!(await reader.read()).done) { /* drain the log */ }
  })();
  await sendMessage(port, 4096); // warm up
  const before = rssKiB();
  const conns: Deno.TcpConn[] = [];
  for (let i = 0; i < 100; i++) {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    await c.read(new Uint8Array(512)); // the greeting: the session exists
    conns.push(c);
  }
  await new Promise((r) => setTimeout(r, 500));
  const after = rssKiB();
  out(
    `100 idle connections: RSS ${(before / 1024).toFixed(1)} -> ${
      (after / 1024).toFixed(1)
    } MiB, ` +
      `${((after - before) / 100).toFixed(1)} KiB each (target: at most 64 KiB)`,
  );
  for (const c of conns) c.close();
  await new Promise((r) => setTimeout(r, 500));
  const small = await withPeak(() => sendMessage(port, 4096));
  const big = await withPeak(() => sendMessage(port, 50 * 1024 * 1024));
  out(`4 KiB message:  ${small.value}; peak RSS ${(small.peak / 1024).toFixed(1)} MiB`);
  out(`50 MiB message: ${big.value}; peak RSS ${(big.peak / 1024).toFixed(1)} MiB`);
  out(
    `50 MiB minus 4 KiB peak: ${
      ((big.peak - small.peak) / 1024).toFixed(1)
    } MiB (target: at most 16 MiB)`,
  );
} finally {
  try {
    child.kill("SIGKILL");
  } catch { /* gone */ }
  await child.status;
  await Deno.remove(work, { recursive: true }).catch(() => {});
}
