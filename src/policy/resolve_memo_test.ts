import assert from "node:assert/strict";
import { resolveConfigText } from "../config/mod.ts";
import { fakeDns } from "./_fake_dns.ts";
import { context, type Params, toml } from "./_policy_cases.ts";
import { compilePolicy } from "./compile.ts";
import { NO_DESTINATIONS } from "./destinations.ts";
import { compileDomainList } from "./domain_list.ts";
import { resolveAddress } from "./resolve_address.ts";
import { RESOLVE_MEMO_LIMIT, ResolveMemo } from "./resolve_memo.ts";
import type { EvalEnv } from "./restriction.ts";
import type { LookupResult, LookupTable } from "./tables/mod.ts";
import { Trace } from "./trace.ts";

/** A mydestination table that counts its lookups and answers from a map (or throws). */
function countingTable(answers: Record<string, LookupResult | Error>) {
  const asked: string[] = [];
  const table: LookupTable = {
    name: "counting:mydestination",
    values: undefined,
    lookup(key: string): Promise<LookupResult> {
      asked.push(key);
      const a = answers[key] ?? { kind: "notFound" };
      return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
    },
  };
  const destinations = {
    ...NO_DESTINATIONS,
    local: compileDomainList(["counting:mydestination"], {
      table: () => table,
      readFile: () => "",
    }, false),
  };
  return { asked, destinations };
}

function evalEnv(memo: ResolveMemo | undefined, trace?: Trace): EvalEnv {
  return {
    ctx: context({}),
    stage: "recipient",
    dns: fakeDns({}),
    trace,
    warn: () => {},
    deferIfPermit: undefined,
    depth: 0,
    ...(memo ? { resolved: memo } : {}),
  };
}

const FOUND: LookupResult = { kind: "found", value: "ours" };
const ROUTED = { local: "user%inner.example", domain: "outer.example" };

Deno.test("resolveAddress() resolves an address once per memo, and traces the same steps each time", async () => {
  const { asked, destinations } = countingTable({
    "outer.example": FOUND,
    "inner.example": FOUND,
  });
  const trace = new Trace();
  const env = evalEnv(new ResolveMemo(), trace);
  const options = { myorigin: "origin.example", destinations, env };
  const first = await resolveAddress(ROUTED, options);
  const steps = trace.events.length;
  const second = await resolveAddress(ROUTED, options);
  assert.deepEqual(first, { local: "user", domain: "inner.example" });
  assert.deepEqual(second, first);
  assert.deepEqual(asked, ["outer.example", "inner.example"]);
  assert.equal(steps, 2);
  assert.deepEqual(trace.events.slice(steps), trace.events.slice(0, steps));
  // Without a memo every call asks the tables, as before.
  const plain = { myorigin: "origin.example", destinations, env: evalEnv(undefined) };
  await resolveAddress(ROUTED, plain);
  await resolveAddress(ROUTED, plain);
  assert.equal(asked.length, 6);
});

Deno.test("resolveAddress() keys the memo on the address, $myorigin and the destinations", async () => {
  const a = countingTable({ "origin.example": FOUND, "other-origin.example": FOUND });
  const b = countingTable({ "origin.example": FOUND });
  const env = evalEnv(new ResolveMemo());
  const at = (local: string, myorigin: string, d = a.destinations) =>
    resolveAddress({ local, domain: "" }, { myorigin, destinations: d, env });
  const count = (asked: string[], key: string) => asked.filter((k) => k === key).length;
  assert.deepEqual(await at("x", "origin.example"), { local: "x", domain: "origin.example" });
  assert.deepEqual(await at("x", "origin.example"), { local: "x", domain: "origin.example" });
  assert.equal(count(a.asked, "origin.example"), 1);
  assert.deepEqual(await at("x", "other-origin.example"), {
    local: "x",
    domain: "other-origin.example",
  });
  assert.equal(count(a.asked, "other-origin.example"), 1);
  await at("x", "origin.example", b.destinations);
  assert.deepEqual(b.asked, ["origin.example"]);
  // The local part is part of the key, in its case.
  assert.deepEqual(await at("X", "origin.example"), { local: "X", domain: "origin.example" });
  assert.equal(count(a.asked, "origin.example"), 2);
});

Deno.test("resolveAddress() keeps no resolution that met a temporary failure or an exception", async () => {
  const { asked, destinations } = countingTable({
    "outer.example": { kind: "tempfail", reason: "down" },
    "broken.example": new Error("table bug"),
  });
  const trace = new Trace();
  const env = evalEnv(new ResolveMemo(), trace);
  const options = { myorigin: "origin.example", destinations, env };
  for (let i = 0; i < 2; i++) {
    // The table failed: the resolution stops there, and the next one asks again.
    assert.deepEqual(await resolveAddress(ROUTED, options), ROUTED);
  }
  assert.deepEqual(asked, ["outer.example", "outer.example"]);
  assert.equal(trace.events.length, 2);
  const broken = { local: "u", domain: "broken.example" };
  for (let i = 0; i < 2; i++) {
    await assert.rejects(resolveAddress(broken, options), /table bug/);
  }
  assert.equal(asked.filter((k) => k === "broken.example").length, 2);
  assert.equal(env.resolved?.size, 0);
});

Deno.test("ResolveMemo keeps at most RESOLVE_MEMO_LIMIT resolutions, the newest", async () => {
  const { asked, destinations } = countingTable({});
  const memo = new ResolveMemo();
  const env = evalEnv(memo);
  const options = { myorigin: "origin.example", destinations, env };
  for (let i = 0; i < RESOLVE_MEMO_LIMIT * 4; i++) {
    await resolveAddress({ local: `u${i}`, domain: "d.example" }, options);
  }
  assert.equal(memo.size, RESOLVE_MEMO_LIMIT);
  const newest = { local: `u${RESOLVE_MEMO_LIMIT * 4 - 1}`, domain: "d.example" };
  await resolveAddress(newest, options);
  await resolveAddress({ local: "u0", domain: "d.example" }, options);
  assert.equal(asked.length, RESOLVE_MEMO_LIMIT * 4 + 1);
});

/**
 * A socketmap server on loopback for mydestination: answers OK for the
 * domains given, TEMP for those given as "TEMP", and counts each query.
 */
function socketmap(answers: Record<string, string>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const asked: string[] = [];
  const conns = new Set<Deno.Conn>();
  const enc = new TextEncoder();
  const served = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      void (async () => {
        let buf = "";
        const chunk = new Uint8Array(1024);
        for (;;) {
          const n = await conn.read(chunk).catch(() => null);
          if (n === null) break;
          buf += new TextDecoder().decode(chunk.subarray(0, n));
          let m: RegExpExecArray | null;
          while ((m = /^(\d+):/.exec(buf)) && buf.length > m[0].length + Number(m[1])) {
            const query = buf.slice(m[0].length, m[0].length + Number(m[1]));
            buf = buf.slice(m[0].length + Number(m[1]) + 1);
            const key = query.slice(query.indexOf(" ") + 1);
            asked.push(key);
            const v = answers[key];
            const text = v === undefined ? "NOTFOUND " : v === "TEMP" ? "TEMP down" : `OK ${v}`;
            await conn.write(enc.encode(`${enc.encode(text).length}:${text},`));
          }
        }
        conns.delete(conn);
        conn.close();
      })().catch(() => {});
    }
  })().catch(() => {});
  return {
    spec: `socketmap:inet:127.0.0.1:${(listener.addr as Deno.NetAddr).port}:domains`,
    asked,
    async stop() {
      listener.close();
      for (const c of conns) c.close();
      await served;
    },
  };
}

function policyFor(params: Params) {
  const loaded = resolveConfigText(toml(params), {
    systemHostname: "mx.example.com",
    file: "test.toml",
  });
  return compilePolicy(loaded, { dns: fakeDns({}), warn: () => {} });
}

// user%inner.example@outer.example resolves to user@inner.example: only
// the resolution looks outer.example up, so its lookups count resolutions.
const RCPT = { to: "user%inner.example@outer.example", from: "sender@elsewhere.example" };

Deno.test("Policy.check() resolves the recipient once per RCPT stage (reject_unauth_destination, check_recipient_access, reject_unlisted_recipient)", async () => {
  const server = socketmap({ "outer.example": "ours", "inner.example": "ours" });
  try {
    const policy = policyFor({
      mydestination: [server.spec],
      "local_recipient_maps": ["inline:{ user=ok }"],
      "smtpd_recipient_restrictions": [
        "permit_mynetworks",
        "reject_unauth_destination",
        "check_recipient_access inline:{ nobody@inner.example=REJECT }",
        "reject_unlisted_recipient",
      ],
    });
    const resolutions = () => server.asked.filter((k) => k === "outer.example").length;
    const d = await policy.check("recipient", context(RCPT));
    assert.equal(d.kind, "permit");
    assert.equal(resolutions(), 1);
    // The next RCPT is a new stage: resolved again (nothing crosses stages).
    await policy.check("recipient", context(RCPT));
    assert.equal(resolutions(), 2);
  } finally {
    await server.stop();
  }
});

Deno.test("Policy.check() asks again a table that failed in an earlier resolution of the stage", async () => {
  const server = socketmap({ "outer.example": "TEMP" });
  try {
    const policy = policyFor({
      mydestination: [server.spec],
      "smtpd_relay_restrictions": [],
      "smtpd_reject_unlisted_recipient": false,
      "smtpd_recipient_restrictions": [
        "check_recipient_access inline:{ a@b.example=REJECT }",
        "check_recipient_access inline:{ c@d.example=REJECT }",
      ],
    });
    const d = await policy.check("recipient", context(RCPT));
    assert.equal(d.kind, "permit");
    assert.equal(server.asked.filter((k) => k === "outer.example").length, 2);
  } finally {
    await server.stop();
  }
});
