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
