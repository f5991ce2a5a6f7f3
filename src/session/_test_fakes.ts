/**
 * Fakes for the session's unit tests (folder-private): deps for a session
 * that only talks (no DNS, no queue files), and a transport that gives a
 * script as fast as it is read.
 *
 * @module
 */

import { type Config, PARAMS } from "../config/mod.ts";
import { Logger, MailLog } from "../log/mod.ts";
import type { DnsResolver, Policy } from "../policy/mod.ts";
import { TlsHandshakeError, type Transport } from "../transport/types.ts";
import type { SessionDeps } from "./deps.ts";
import { MemoryBudget } from "./memory_budget.ts";

/**
 * The defaults of every parameter.
 * @returns the configuration
 */
export function defaultConfig(): Config {
  return Object.fromEntries(
    Object.entries(PARAMS).map(([k, spec]) => [k, spec.default]),
  ) as unknown as Config;
}

/**
 * Deps for a local session that only talks: every policy stage says dunno.
 * @param config parameters to change
 * @returns the deps
 */
export function fakeDeps(config: Partial<Config> = {}): SessionDeps {
  const policy: Policy = {
    check: () => Promise.resolve({ kind: "dunno" }),
    sessionResolver: () => ({}) as DnsResolver,
    runsNothing: () => false,
  };
  return {
    config: { ...defaultConfig(), notify_classes: [], ...config },
    policy,
    cleanup: {} as SessionDeps["cleanup"],
    log: new MailLog(new Logger({ tag: "test", host: "test", sinks: [] })),
    clock: () => new Date(),
    freeSpace: () => undefined,
    sleep: () => Promise.resolve(),
    queue: "incoming",
    flush: { request: () => Promise.resolve("started") },
    queued: () => {},
    debugPeer: () => Promise.resolve(false),
    forbiddenCommand: () => Promise.resolve(false),
    stressed: () => false,
    memory: MemoryBudget.create(1 << 20),
  };
}

/**
 * A local transport that gives `input` as fast as it is read.
 * @param input what the client sends
 * @param options writes: records each write; startTls: offer STARTTLS (the
 *   handshake always fails)
 * @returns the transport and what was written to it
 */
export function scriptedTransport(
  input: Uint8Array,
  options: { writes?: number[]; startTls?: boolean } = {},
): { transport: Transport; output: () => string } {
  let at = 0;
  const out: Uint8Array[] = [];
  const transport: Transport = {
    peer: { kind: "local" },
    read(p) {
      if (at >= input.length) return Promise.resolve(null);
      const n = Math.min(p.length, input.length - at);
      p.set(input.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
    write(p) {
      options.writes?.push(p.length);
      out.push(p.slice());
      return Promise.resolve(p.length);
    },
    close() {},
    ...(options.startTls
      ? { startTls: () => Promise.reject(new TlsHandshakeError("protocol", "not TLS")) }
      : {}),
  };
  const decoder = new TextDecoder();
  return { transport, output: () => out.map((b) => decoder.decode(b)).join("") };
}
