import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

/** Whether this host can run a process in a network namespace of its own (root, unshare). */
async function canUnshare(): Promise<boolean> {
  if (Deno.uid() !== 0) return false;
  try {
    const out = await new Deno.Command("unshare", { args: ["-n", "true"], stderr: "null" })
      .output();
    return out.success;
  } catch {
    return false;
  }
}

/**
 * Run in a network namespace whose loopback is down, as on a host with IPv6
 * turned off: the UDP socket for udp://[::1] cannot be bound. Sends 100
 * batches of 1000 lines of 1 KB, a pause after each, and prints how much
 * memory the lines still hold.
 */
const SCRIPT = `
import { syslogSink } from ${
  JSON.stringify(fileURLToPath(new URL("./syslog_sink.ts", import.meta.url)))
};
const warnings = [];
const sink = syslogSink({ transport: "udp", host: "::1", port: 514 }, "mail", (m) => warnings.push(m));
const line = "x".repeat(1000) + "\\n";
// The first line tries the bind; the lines are measured once it has failed
// (a loaded host may take longer to try it than the batches take to send,
// and lines sent meanwhile wait for it). A bind that never settles fails here.
sink(line, 6);
for (let i = 0; i < 2000 && warnings.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
if (warnings.length === 0) throw new Error("the bind did not fail within 10 s");
const before = Deno.memoryUsage();
for (let batch = 0; batch < 100; batch++) {
  for (let i = 0; i < 1000; i++) sink(line, 6);
  await new Promise((r) => setTimeout(r, 5));
}
const after = Deno.memoryUsage();
const grown = after.heapUsed + after.external - before.heapUsed - before.external;
console.log(JSON.stringify({ grown, warnings }));
Deno.exit(0);
`;

Deno.test({
  name:
    "syslogSink: udp:// whose socket cannot be bound drops the lines, it does not keep each one in memory",
  ignore: !(await canUnshare()),
  fn: async () => {
    const script = await Deno.makeTempFile({ suffix: ".ts" });
    try {
      await Deno.writeTextFile(script, SCRIPT);
      const out = await new Deno.Command("unshare", {
        args: ["-n", Deno.execPath(), "run", "-A", "--no-lock", script],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      const { grown, warnings } = JSON.parse(text) as { grown: number; warnings: string[] };
      assert.equal(warnings.length, 1, String(warnings));
      assert.match(warnings[0] as string, /cannot send log lines/);
      // 100,000 lines of 1 KB: about 100 MB if each is kept.
      assert.ok(grown < 30e6, `${Math.round(grown / 1e6)} MB held after 100,000 dropped lines`);
    } finally {
      await Deno.remove(script);
    }
  },
});

Deno.test({
  name:
    "syslogSink: tcp:// to a server that takes each connection and closes it warns at most twice a minute, not twice a line",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { syslogSink } = await import("./syslog_sink.ts");
    const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (server.addr as Deno.NetAddr).port;
    let accepts = 0;
    const serving = (async () => {
      for await (const c of server) {
        accepts++;
        c.close();
      }
    })().catch(() => {});
    const warnings: string[] = [];
    const sink = syslogSink(
      { transport: "tcp", host: "127.0.0.1", port },
      "mail",
      (m) => warnings.push(m),
    );
    try {
      for (let i = 0; i < 60; i++) {
        sink(`line ${i}\n`, 6);
        await new Promise((r) => setTimeout(r, 10));
      }
      // The sink did connect again and again (the case this is about).
      assert.ok(accepts >= 5, `${accepts} connections`);
      assert.ok(warnings.length >= 1 && warnings.length <= 2, warnings.join("\n"));
      assert.match(warnings[0] as string, /cannot send log lines/);
    } finally {
      server.close();
      await serving;
    }
  },
});

/**
 * A TCP syslog server that accepts, reads nothing until a line comes on its
 * stdin, then prints what it reads until the line given as its argument.
 * Its receive buffer is small, so the sender's socket fills soon.
 */
const STALLING_SERVER = `
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind(("127.0.0.1", 0))
s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
sys.stdin.readline()
c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
last = sys.argv[1].encode() + b"\\n"
c.settimeout(30)
parts, tail = [], b""
while not tail.endswith(last):
    d = c.recv(65536)
    if not d:
        break
    parts.append(d)
    tail = (tail + d)[-len(last):]
sys.stdout.write(b"".join(parts).decode())
`;

Deno.test({
  name:
    "syslogSink: tcp:// to a server that stalls sends each line it keeps once and whole, and says how many it dropped",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { syslogSink } = await import("./syslog_sink.ts");
    // 12 MB: more than the kernel's socket buffers (4 MB at most) and the backlog.
    const total = 12_000;
    const text = (i: number) => `line ${i} ${"x".repeat(1000)}`;
    const server = new Deno.Command("python3", {
      args: ["-c", STALLING_SERVER, text(total - 1)],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const lines = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    try {
      let out = "";
      while (!out.includes("\n")) {
        const r = await lines.read();
        if (r.done) throw new Error("the server did not start");
        out += r.value;
      }
      const port = Number(out.slice(0, out.indexOf("\n")));
      out = out.slice(out.indexOf("\n") + 1);
      const warnings: string[] = [];
      const sink = syslogSink(
        { transport: "tcp", host: "127.0.0.1", port },
        "mail",
        (m) => warnings.push(m),
      );
      for (let i = 0; i < total; i++) {
        sink(`${text(i)}\n`, 6);
        // Lets the writer run: the lines go out until the socket is full.
        if (i % 200 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      const go = server.stdin.getWriter();
      await go.write(new TextEncoder().encode("go\n"));
      await go.close();
      for (let r = await lines.read(); !r.done; r = await lines.read()) out += r.value;
      await sink.settled(10_000);
      const got = out.split("\n").filter((l) => l !== "");
      const whole = /^<22>line (\d+) x{1000}$/;
      assert.deepEqual(got.filter((l) => !whole.test(l)), [], "cut or foreign lines");
      const numbers = got.map((l) => Number(whole.exec(l)?.[1]));
      assert.equal(new Set(numbers).size, numbers.length, "a line sent twice");
      assert.equal(numbers.at(-1), total - 1, "the newest line did not arrive");
      const said = warnings.map((w) => /: (\d+) log lines were dropped$/.exec(w)?.[1])
        .filter((n) => n !== undefined);
      assert.equal(said.length, 1, warnings.join("\n"));
      assert.ok(numbers.length < total, `no line dropped: ${numbers.length}`);
      assert.equal(Number(said[0]), total - numbers.length, warnings.join("\n"));
      assert.match(warnings[0] as string, /slower than they come; past 1000 waiting/);
    } finally {
      await server.status;
    }
  },
});
