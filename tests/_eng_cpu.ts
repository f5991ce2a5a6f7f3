import { makeWorkDir, run, startDaemon, tlsCertConfig } from "./_harness.ts";
function cpu(pid: number): number {
  const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) * 10; // ms
}
for (const engine of Deno.args[0] === "plain" ? [] : [Deno.args[0] === "engine"]) {
  const dir = await makeWorkDir("tls");
  const extra = `smtpd_peername_lookup = false\nsmtpd_tls_security_level = "may"\nsmtpd_tls_cert_file = "/tmp/hs/rsa.pem"\nsmtpd_tls_key_file = "/tmp/hs/rsa.key"\n` +
    `${engine ? 'smtpd_tls_loopback_listen = "127.0.0.1:0"' : ""}`;
  const d = await startDaemon(extra, { dir });
  const args = ["run", "-A", "scripts/bench/tls_source.ts", "-s", "20", "-m", Deno.args[1] ?? "1000", "--ca", "/tmp/hs/ca.pem", "--name", "localhost", `127.0.0.1:${d.port}`];
  await run(Deno.execPath(), [...args.slice(0, 5), "-m", "100", ...args.slice(7)]);
  const c0 = cpu(d.pid);
  const r = await run(Deno.execPath(), args);
  const c1 = cpu(d.pid);
  console.log(engine ? "engine" : "node", r.stdout.trim(), r.stderr.slice(0, 300), "server ms/msg", (c1 - c0) / Number(Deno.args[1] ?? 1000));
  await d.stop();
}
if (Deno.args[0] === "plain") {
  const dir = await makeWorkDir("tls");
  const d = await startDaemon(`smtpd_peername_lookup = false\n`, { dir });
  const c0 = cpu(d.pid);
  const r = await run("smtp-source", ["-s", "20", "-m", "1000", "-l", "4096", "-f", "from@bench.example", "-t", "to@bench.example", "-M", "bench.localdomain", `127.0.0.1:${d.port}`]);
  const c1 = cpu(d.pid);
  console.log("plain", r.code, r.stderr.slice(0, 300), "server ms/msg", (c1 - c0) / 1000);
  await d.stop();
}
