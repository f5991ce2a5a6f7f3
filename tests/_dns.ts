/**
 * A real DNS server for tests: dnsmasq on a loopback port, serving only the
 * records a test gives it (every other name is NXDOMAIN), plus a "black
 * hole" UDP port that never answers (temporary failure).
 *
 * @module
 */

import { createSocket } from "node:dgram";

/** A running dnsmasq. */
export interface DnsServer {
  readonly port: number;
  stop(): Promise<void>;
}

/** Records to serve. */
export interface Zone {
  /** host → IPv4 address (A record and its PTR unless ptr is given). */
  a?: [string, string][];
  /** address → name (PTR only). */
  ptr?: [string, string][];
  /** domain → [mx host, preference]. */
  mx?: [string, string, number][];
  /** name → text. */
  txt?: [string, string][];
}

/** The name each test server answers with its own token (readiness, and that it is ours). */
const READY_NAME = "ready.deno-smtpd.test";

async function freeUdpPort(): Promise<number> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * Starts dnsmasq with the zone.
 * @param zone the records
 * @returns the server handle
 */
export async function startDns(zone: Zone): Promise<DnsServer> {
  // The free UDP port may be taken for TCP (dnsmasq binds both) by a test
  // running beside this one: dnsmasq then exits, and another port is tried.
  for (let attempt = 1;; attempt++) {
    const server = await startDnsOn(await freeUdpPort(), zone);
    if (server || attempt === 10) {
      if (!server) throw new Error("dnsmasq did not start on 10 ports in a row");
      return server;
    }
  }
}

/**
 * Starts dnsmasq with the zone on one port.
 * @param port the UDP and TCP port
 * @param zone the records
 * @returns the server, or null when it could not serve that port (another
 *   server answers there, or it did not come up)
 */
async function startDnsOn(port: number, zone: Zone): Promise<DnsServer | null> {
  const args = [
    "--no-daemon",
    `--port=${port}`,
    "--listen-address=127.0.0.1",
    "--bind-interfaces",
    "--no-resolv",
    "--no-hosts",
    "--conf-file=/dev/null",
    "--local=/#/",
    "--user=root",
  ];
  for (const [host, ip] of zone.a ?? []) args.push(`--host-record=${host},${ip}`);
  for (const [ip, name] of zone.ptr ?? []) {
    args.push(`--ptr-record=${ip.split(".").reverse().join(".")}.in-addr.arpa,${name}`);
  }
  for (const [domain, host, pref] of zone.mx ?? []) {
    args.push(`--mx-host=${domain},${host},${pref}`);
  }
  for (const [name, text] of zone.txt ?? []) args.push(`--txt-record=${name},${text}`);
  // A record of this server's own: the answer that says the server on the
  // port is this one (another test's dnsmasq may have taken the port first,
  // and answers every other name too).
  const token = crypto.randomUUID();
  args.push(`--txt-record=${READY_NAME},${token}`);
  const child = new Deno.Command("dnsmasq", { args, stdout: "null", stderr: "piped" }).spawn();
  let exited = false;
  child.status.then(() => exited = true);
  // Wait until it answers with its own token.
  const deadline = Date.now() + 5000;
  let ready = false;
  while (!ready && !exited && Date.now() < deadline) {
    try {
      // A query sent before dnsmasq has bound its port is lost, and the
      // resolver would wait 5 s for it: ask again after 250 ms instead.
      const answer = await Deno.resolveDns(READY_NAME, "TXT", {
        nameServer: { ipAddr: "127.0.0.1", port },
        signal: AbortSignal.timeout(250),
      });
      ready = answer.some((parts) => parts.join("") === token);
    } catch { /* not up yet, or not ours */ }
    if (!ready) await new Promise((r) => setTimeout(r, 50));
  }
  if (!ready) {
    // It could not take the port (another server answers there), or never came up.
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await child.stderr.cancel().catch(() => {});
    return null;
  }
  return {
    port,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      await child.stderr.cancel().catch(() => {});
    },
  };
}

/**
 * A UDP port that reads queries and never answers.
 * @returns the port and a stop function
 */
export async function startBlackHole(): Promise<{ port: number; stop(): void }> {
  const s = createSocket("udp4");
  s.on("message", () => {/* never answer */});
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  return { port: s.address().port, stop: () => s.close() };
}
