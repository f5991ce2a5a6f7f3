/**
 * Misbehaving dependencies for the hostile-dependency tests, on loopback.
 *
 * @module
 */

/** A running tests/_hostile_dns.py. */
export interface HostileDns {
  /** Its port: UDP answers NXDOMAIN; TCP never completes a connect. */
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * Starts tests/_hostile_dns.py (it exits by itself after `seconds`).
 * @param seconds its time limit
 * @returns the handle
 */
export async function hostileDns(seconds: number): Promise<HostileDns> {
  const child = new Deno.Command("python3", {
    args: [new URL("./_hostile_dns.py", import.meta.url).pathname, String(seconds)],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  const port = Number(new TextDecoder().decode(value).trim());
  return {
    port,
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}

/**
 * Sockets of a process in SYN-SENT (connects still under way), from ss.
 * @param pid the process
 * @returns how many
 */
export function synSent(pid: number): number {
  const out = new Deno.Command("ss", { args: ["-tanp", "state", "syn-sent"] }).outputSync();
  return new TextDecoder().decode(out.stdout).split("\n")
    .filter((l) => l.includes(`pid=${pid},`)).length;
}

/** A running tests/_fanout_dns.py. */
export interface FanoutDns {
  readonly port: number;
  /** Queries it has answered so far (asked of it, not counting this one). */
  asked(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Starts tests/_fanout_dns.py: MX answers of `count` hosts for names under
 * many.example, each host with `addresses` A records (it exits by itself
 * after `seconds`).
 * @param seconds its time limit
 * @param count MX records per answer
 * @param addresses A records per host
 * @returns the handle
 */
export async function fanoutDns(
  seconds: number,
  count: number,
  addresses = 0,
): Promise<FanoutDns> {
  const child = new Deno.Command("python3", {
    args: [
      new URL("./_fanout_dns.py", import.meta.url).pathname,
      String(seconds),
      String(count),
      String(addresses),
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  const port = Number(new TextDecoder().decode(value).trim());
  const nameServer = { ipAddr: "127.0.0.1", port };
  return {
    port,
    async asked() {
      const txt = await Deno.resolveDns("count.test.", "TXT", { nameServer });
      return Number(txt[0]?.join("")) - 1;
    },
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}
