import assert from "node:assert/strict";
import { type Config, PARAMS } from "../config/mod.ts";
import { Logger, MailLog } from "../log/mod.ts";
import type { DnsResolver, Policy } from "../policy/mod.ts";
import type { Transport } from "../transport/types.ts";
import { MemoryBudget } from "./memory_budget.ts";
import { runSession, type SessionDeps } from "./session.ts";

/** The defaults of every parameter. */
function defaults(): Config {
  return Object.fromEntries(
    Object.entries(PARAMS).map(([k, spec]) => [k, spec.default]),
  ) as unknown as Config;
}

/** Deps for a local session that only talks (no DNS, no queue files). */
function fakeDeps(): SessionDeps {
  const policy: Policy = {
    check: () => Promise.resolve({ kind: "dunno" }),
    sessionResolver: () => ({}) as DnsResolver,
  };
  return {
    config: { ...defaults(), notify_classes: [] },
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
    stressed: () => false,
    memory: MemoryBudget.create(1 << 20),
  };
}

/** A transport that gives `input` as fast as it is read and records each write's size. */
function scriptedTransport(input: Uint8Array, writes: number[]): Transport {
  let at = 0;
  return {
    peer: { kind: "local" },
    read(p) {
      if (at >= input.length) return Promise.resolve(null);
      const n = Math.min(p.length, input.length - at);
      p.set(input.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
    write(p) {
      writes.push(p.length);
      return Promise.resolve(p.length);
    },
    close() {},
  };
}

Deno.test("Session: a pipelined burst of short commands never queues more than a few KB of replies", async () => {
  const count = 16384; // 128 KiB of input, about 2.4 MB of EHLO replies
  const input = new TextEncoder().encode("EHLO x\r\n".repeat(count) + "QUIT\r\n");
  const writes: number[] = [];
  await runSession(scriptedTransport(input, writes), fakeDeps());
  const total = writes.reduce((a, b) => a + b, 0);
  const ehlo = "250-mx\r\n".length; // at least this much per EHLO reply
  assert.ok(total > count * ehlo, `every EHLO was answered (${total} bytes)`);
  const largest = Math.max(...writes);
  assert.ok(largest <= 8192, `largest write ${largest} bytes`);
});
