import assert from "node:assert/strict";
import { ConfigError, resolveConfigText } from "../../config/mod.ts";
import { context } from "../_policy_cases.ts";
import { fakeDns } from "../_fake_dns.ts";
import { compilePolicy } from "../compile.ts";
import { Trace } from "../trace.ts";

function policyOf(text: string) {
  const loaded = resolveConfigText(text, { systemHostname: "mx.example.com", file: "t.toml" });
  return compilePolicy(loaded, { dns: fakeDns({}), warn: () => {} });
}

const SLEEPY = 'smtpd_delay_reject = false\nsmtpd_client_restrictions = ["sleep 1", "reject"]';

Deno.test("sleep N pauses N seconds through the given sleep, then goes on to the next restriction", async () => {
  const slept: number[] = [];
  const trace = new Trace();
  const d = await policyOf(SLEEPY).check("client", context({}), {
    trace,
    sleep: (ms) => {
      slept.push(ms);
      return Promise.resolve();
    },
  });
  assert.deepEqual(slept, [1000]);
  assert.equal(d.kind, "reject", "the reject after sleep still decides");
  assert.ok(
    trace.events.some((e) => e.kind === "note" && e.text === "pause 1 seconds, then go on"),
  );
});

Deno.test("sleep waits for real on a timer without holding up another evaluation", async () => {
  const policy = policyOf(
    'smtpd_delay_reject = false\nsmtpd_client_restrictions = ["check_client_access", "inline:{ 192.0.2.7=permit }", "sleep 1", "permit"]',
  );
  const t0 = performance.now();
  const slow = policy.check("client", context({})).then(() => performance.now() - t0);
  const fast = policy.check("client", context({ client: "x[192.0.2.7]" })).then(() =>
    performance.now() - t0
  );
  // The other evaluation ends first, long before the sleep's second is
  // over (a loaded host may still delay it by a few hundred ms).
  const first = await Promise.race([slow.then(() => "slow"), fast.then(() => "fast")]);
  assert.equal(first, "fast");
  const [slowMs, fastMs] = await Promise.all([slow, fast]);
  assert.ok(slowMs >= 990, `sleep 1 took ${slowMs} ms`);
  assert.ok(fastMs < 900, `the other evaluation waited ${fastMs} ms`);
});

for (
  const [items, message] of [
    ['"sleep"', /restriction "sleep" needs a number of seconds argument/],
    ['"sleep", "x"', /restriction "sleep" needs a number of seconds, not "x"/],
    ['"sleep -1"', /restriction "sleep" needs a number of seconds, not "-1"/],
    ['"sleep 301"', /sleep 301: longer than smtpd_timeout \(300s\)/],
  ] as const
) {
  Deno.test(`sleep with ${items} stops the start with file:line`, () => {
    assert.throws(() => policyOf(`\n\nsmtpd_client_restrictions = [${items}]`), (e) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /^t\.toml:3: smtpd_client_restrictions: /);
      assert.match(e.message, message);
      return true;
    });
  });
}
