import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError } from "../config/mod.ts";
import { compileNetworks, styleNetworks } from "./relay.ts";
import { formatIp } from "../protocol/ip.ts";

const text = (nets: ReturnType<typeof compileNetworks>) =>
  nets.map((n) => `${formatIp(n.base)}/${n.family === 4 ? n.bits - 96 : n.bits}`);

Deno.test("compileNetworks() takes /file, cidr: and texthash: entries", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "nets"), `# trusted\n10.0.0.0/8, cidr:${dir}/t.cidr\n`);
    await Deno.writeTextFile(join(dir, "t.cidr"), "192.0.2.0/24 OK\n# c\n198.51.100.0/28 x\n");
    await Deno.writeTextFile(join(dir, "t.hash"), "203.0.113.7 OK\nnot-an-ip OK\n");
    const nets = compileNetworks(
      [`${dir}/nets`, `texthash:${dir}/t.hash`, "face::/16"],
      "mynetworks",
    );
    assert.deepEqual(text(nets), [
      "10.0.0.0/8",
      "192.0.2.0/24",
      "198.51.100.0/28",
      "203.0.113.7/32",
      "face::/16",
    ]);
    assert.throws(
      () => compileNetworks([`pcre:${dir}/x`], "mynetworks"),
      (e: Error) => e instanceof ConfigError && /only cidr: and texthash:/.test(e.message),
    );
    assert.throws(
      () => compileNetworks([`${dir}/missing`], "mynetworks"),
      (e: Error) => e instanceof ConfigError && /mynetworks: cannot read/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("styleNetworks(): subnet is each interface's network, class its class A/B/C network", () => {
  const ifs = [
    { family: "IPv4", address: "10.1.2.3", cidr: "10.1.2.3/24" },
    { family: "IPv4", address: "172.16.5.9", cidr: "172.16.5.9/28" },
    { family: "IPv6", address: "2001:db8::5", cidr: "2001:db8::5/64" },
  ];
  assert.deepEqual(styleNetworks("subnet", ifs), [
    "10.1.2.0/24",
    "172.16.5.0/28",
    "[2001:db8::]/64",
  ]);
  assert.deepEqual(styleNetworks("class", ifs), ["10.0.0.0/8", "172.16.0.0/16", "[2001:db8::]/64"]);
});
