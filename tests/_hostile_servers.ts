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
export function hostileDns(seconds: number): Promise<HostileDns> {
  return startScript("_hostile_dns.py", [seconds]);
}

/**
 * Starts one of the tests' Python servers; it prints its port first.
 * @param script its file name, beside this module
 * @param args its arguments
 * @returns its port, and stop (by its PID)
 */
async function startScript(
  script: string,
  args: number[],
): Promise<{ port: number; stop(): Promise<void> }> {
  const child = new Deno.Command("python3", {
    args: [new URL(`./${script}`, import.meta.url).pathname, ...args.map(String)],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  const port = Number(new TextDecoder().decode(value).trim());
  if (!Number.isInteger(port) || port <= 0) {
    // It ended before printing its port (a bind that failed): say so here,
    // not as a daemon that cannot use port 0.
    try {
      child.kill("SIGKILL");
    } catch { /* ended */ }
    const status = await child.status;
    await child.stdout.cancel().catch(() => {});
    const why = await new Response(child.stderr).text();
    throw new Error(`${script} printed no port (exit code ${status.code}):\n${why}`);
  }
  return {
    port,
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      await child.stdout.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
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
  const server = await startScript("_fanout_dns.py", [seconds, count, addresses]);
  const nameServer = { ipAddr: "127.0.0.1", port: server.port };
  return {
    port: server.port,
    async asked() {
      const txt = await Deno.resolveDns("count.test.", "TXT", { nameServer });
      return Number(txt[0]?.join("")) - 1;
    },
    stop: server.stop,
  };
}

/**
 * Starts tests/_slow_dns.py: every query answered after `delay` seconds, an
 * A query with 192.0.2.1, others with no records (it exits by itself after
 * `seconds`).
 * @param seconds its time limit
 * @param delay how long each answer takes, in seconds
 * @returns its port, and stop
 */
export function slowDns(
  seconds: number,
  delay: number,
): Promise<{ port: number; stop(): Promise<void> }> {
  return startScript("_slow_dns.py", [seconds, delay]);
}
